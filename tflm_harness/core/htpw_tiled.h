/* The tiled strategy (docs/synthesis.md section 3, hyper_tinypw_tf/generators.py's tiled): the
 * kernel in b x b tiles, one code per tile, each tile's b * b values the micro-MLP's h times the
 * shared W2 (d_h, b * b), cropped to (c_out, c_in), then each row finished as every strategy's
 * is (htpw_channel_quantize_row with the row's sign bit). tests/test_c_core.py holds it to
 * hyper_tinypw_tf/synthesis.py byte for byte.
 */
#ifndef HTPW_TILED_H_
#define HTPW_TILED_H_

#include <stdint.h>

#include "htpw_synthesis.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of (4-byte aligned) scratch htpw_tiled_synthesize needs; -1 if the sizes are invalid
 * or the total does not fit in int32. */
int32_t htpw_tiled_scratch_bytes(const htpw_mlp* mlp, int32_t tile, int32_t c_in);
/* codes: (tiles, d_z), tiles row-major over the tile grid; w2: (d_h, tile * tile). */
htpw_status htpw_tiled_synthesize(const htpw_mlp* mlp, const htpw_tensor* w2, int32_t tile,
                                  const htpw_tensor* codes, const htpw_requant* requant,
                                  const htpw_signs* signs, int32_t c_out, int32_t c_in,
                                  void* scratch, int32_t scratch_bytes, int8_t* kernel);

#ifdef __cplusplus
}
#endif

#endif /* HTPW_TILED_H_ */
