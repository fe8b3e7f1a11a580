/* The paper strategies (docs/synthesis.md section 3, hyper_tinypw_tf/generators.py's paper):
 * one code per layer through the micro-MLP, then a head maps h to the whole kernel, either
 * dense (H: d_h x c_out * c_in, "paper_dense") or factorized (A_l: c_out x d_h times the shared
 * B: d_h x C_in_max, "paper_factorized"); each row finished as every strategy's is
 * (htpw_channel_quantize_row with the row's sign bit). tests/test_c_core.py holds both to
 * hyper_tinypw_tf/synthesis.py byte for byte.
 */
#ifndef HTPW_PAPER_H_
#define HTPW_PAPER_H_

#include <stdint.h>

#include "htpw_synthesis.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { HTPW_HEAD_DENSE = 0, HTPW_HEAD_FACTORIZED = 1 } htpw_head_kind;

/* Bytes of (4-byte aligned) scratch htpw_paper_synthesize needs; -1 if the sizes are invalid
 * or the total does not fit in int32. */
int32_t htpw_paper_scratch_bytes(const htpw_mlp* mlp, htpw_head_kind kind, int32_t c_in);
/* head: dense (d_h, c_out*c_in) or factorized A_l (c_out, d_h); b_shared: (d_h, b_cols), factorized only. */
htpw_status htpw_paper_synthesize(const htpw_mlp* mlp, htpw_head_kind kind, const htpw_tensor* head,
                                  const htpw_tensor* b_shared, int32_t b_cols, const htpw_tensor* code,
                                  const htpw_requant* requant, const htpw_signs* signs,
                                  int32_t c_out, int32_t c_in, void* scratch, int32_t scratch_bytes,
                                  int8_t* kernel);

#ifdef __cplusplus
}
#endif

#endif /* HTPW_PAPER_H_ */
