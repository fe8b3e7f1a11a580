/* The low_rank strategy (docs/synthesis.md section 3, hyper_tinypw_tf/low_rank.py): K = U . V.
 *
 * U is (c_out, rank) at code_bits, V is (rank, c_in) at weight_bits, both row-major; nothing is
 * shared and there is no micro-MLP. acc[o][i] = sum_r U[o][r] * V[r][i] in int32 (exact for
 * rank <= HTPW_MAX_DENSE_TERMS), then each row is finished as every strategy's is
 * (htpw_channel_quantize_row with the row's sign bit). tests/test_c_op.py (core_lib's file and edge
 * ops) holds it to the numpy reference; tests/test_low_rank.py checks its own argument checks.
 */
#ifndef HTPW_LOW_RANK_H_
#define HTPW_LOW_RANK_H_

#include <stdint.h>

#include "htpw_synthesis.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of (4-byte aligned) scratch htpw_low_rank_synthesize needs; -1 if the sizes are invalid
 * or the total does not fit in int32. */
int32_t htpw_low_rank_scratch_bytes(int32_t rank, int32_t c_in);
htpw_status htpw_low_rank_synthesize(const htpw_tensor* u, const htpw_tensor* v, int32_t rank,
                                     const htpw_signs* signs, int32_t c_out, int32_t c_in, void* scratch,
                                     int32_t scratch_bytes, int8_t* kernel);

#ifdef __cplusplus
}
#endif

#endif /* HTPW_LOW_RANK_H_ */
