/* Integer kernel synthesis of docs/synthesis.md, for the device.
 *
 * C99, no heap, no TFLM headers. Function names and step order follow
 * hyper_tinypw_tf/synthesis.py; tests/test_c_core.py holds the two to the same bytes.
 * Every entry point checks its arguments and returns a distinct htpw_status per failure,
 * so the failure is identifiable even when error strings are stripped.
 */
#ifndef HTPW_SYNTHESIS_H_
#define HTPW_SYNTHESIS_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  HTPW_OK = 0,
  HTPW_ERR_NULL = 1,          /* a required pointer is NULL */
  HTPW_ERR_DIMENSION = 2,     /* a dimension is <= 0 or above its bound */
  HTPW_ERR_BITS = 3,          /* a tensor's bit width is not 4 or 8 */
  HTPW_ERR_SHIFT = 4,         /* requantization shift outside [-31, 30] */
  HTPW_ERR_MULTIPLIER = 5,    /* requantization multiplier outside [2^30, 2^31) */
  HTPW_ERR_SCRATCH = 6,       /* scratch buffer smaller than htpw_*_scratch_bytes() */
  HTPW_ERR_HEAD = 7           /* unknown paper head kind */
} htpw_status;

/* A stored integer tensor: int8 values, or int4 packed two per byte (low nibble first). */
typedef struct {
  const void* data;
  int32_t bits;
} htpw_tensor;

/* Shared micro-MLP: h = relu_int8(z . W1 + b1), W1 is (d_z, d_h) row-major. */
typedef struct {
  htpw_tensor w1;
  const int32_t* b1;
  int32_t code_dim;
  int32_t hidden_dim;
} htpw_mlp;

/* Per-layer fixed-point multiplier of the hidden activation. */
typedef struct {
  int32_t multiplier;
  int32_t shift;
} htpw_requant;

#define HTPW_MAX_DENSE_TERMS 65535
#define HTPW_MAX_FACTOR_RANK 1024

/* --- primitives (docs/synthesis.md section 2) --------------------------------------- */
int8_t htpw_tensor_get(const htpw_tensor* t, int32_t index);
int32_t htpw_requantize(int32_t acc, int32_t multiplier, int32_t shift);
int8_t htpw_relu_int8(int32_t acc, int32_t multiplier, int32_t shift);
/* acc[j] = bias[j] + sum_i x[i] * w[i, j]; w is (n_in, n_out) row-major; bias may be NULL. */
void htpw_dense(const int8_t* x, int32_t n_in, const htpw_tensor* w, int32_t w_offset_rows,
                const int32_t* bias, int32_t n_out, int32_t* acc);
/* One output row: out[i] = round_half_away(127 * acc[i] / max|acc|), then the row's sign. */
void htpw_channel_quantize_row(const int32_t* acc, int32_t cols, int negate, int8_t* out);
int htpw_sign_bit(const uint8_t* packed_signs, int32_t channel);

/* --- strategies (section 3); kernel is (c_out, c_in) row-major int8 ------------------ */
htpw_status htpw_validate_requant(const htpw_requant* requant);

/* Bytes of scratch htpw_tiled_synthesize needs. */
int32_t htpw_tiled_scratch_bytes(const htpw_mlp* mlp, int32_t tile, int32_t c_in);
htpw_status htpw_tiled_synthesize(const htpw_mlp* mlp, const htpw_tensor* w2, int32_t tile,
                                  const htpw_tensor* codes, const htpw_requant* requant,
                                  const uint8_t* packed_signs, int32_t c_out, int32_t c_in,
                                  void* scratch, int32_t scratch_bytes, int8_t* kernel);

typedef enum { HTPW_HEAD_DENSE = 0, HTPW_HEAD_FACTORIZED = 1 } htpw_head_kind;

/* head: dense (d_h, c_out*c_in) or factorized A_l (c_out, d_h); b_shared: (d_h, b_cols), factorized only. */
int32_t htpw_paper_scratch_bytes(const htpw_mlp* mlp, int32_t c_in);
htpw_status htpw_paper_synthesize(const htpw_mlp* mlp, htpw_head_kind kind, const htpw_tensor* head,
                                  const htpw_tensor* b_shared, int32_t b_cols, const htpw_tensor* code,
                                  const htpw_requant* requant, const uint8_t* packed_signs,
                                  int32_t c_out, int32_t c_in, void* scratch, int32_t scratch_bytes,
                                  int8_t* kernel);

#ifdef __cplusplus
}
#endif

#endif /* HTPW_SYNTHESIS_H_ */
