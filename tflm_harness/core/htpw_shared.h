/* What the strategy files (htpw_tiled.c, htpw_paper.c, htpw_low_rank.c) share besides the
 * primitives of htpw_synthesis.h: the DSP intrinsics switch, the saturating add and clamp of the
 * micro-MLP's ReLU, the int16 pair products (SMLAD blocks), the hidden step and the argument
 * checks. The functions live in htpw_synthesis.c, so a strategy file holds only what is its own:
 * its scratch plan, its loop and its htpw_strategy record. Not part of the op's API: the TFLM
 * kernel and the runners include htpw_op.h only.
 */
#ifndef HTPW_SHARED_H_
#define HTPW_SHARED_H_

#include <stdint.h>

#include "htpw_synthesis.h"

/* The DSP extension's intrinsics (SMLAD, QADD, USAT) where the core has it; HTPW_NO_DSP keeps
 * the portable C, to compare. */
#if defined(__ARM_FEATURE_DSP) && !defined(HTPW_NO_DSP)
#include <arm_acle.h>
#define HTPW_SMLAD_INTRINSIC 1
#endif

#ifdef __cplusplus
extern "C" {
#endif

static inline int64_t htpw_ceil_div64(int64_t a, int64_t b) { return (a + b - 1) / b; }

static inline int64_t htpw_align4(int64_t x) { return (x + 3) & ~(int64_t)3; }
/* The one C check of the tile-size limit (docs/synthesis.md section 5) on the tiled functions' arguments. */
static inline int htpw_tile_size_ok(int32_t tile) { return tile > 0 && tile <= HTPW_MAX_TILE_SIZE; }

/* Two int16 halves in one word (low first), the operand of one SMLAD. */
static inline uint32_t htpw_pair(int32_t low, int32_t high) {
  return ((uint32_t)low & 0xFFFFu) | ((uint32_t)high << 16);
}

/* saturate_int32(a + b) without 64-bit arithmetic: QADD on cores with the DSP extension. */
#if defined(HTPW_SMLAD_INTRINSIC)
static inline int32_t htpw_add_saturated(int32_t a, int32_t b) { return __qadd(a, b); }
#else
static inline int32_t htpw_add_saturated(int32_t a, int32_t b) {
  const int32_t sum = (int32_t)((uint32_t)a + (uint32_t)b);
  if (((a ^ sum) & (b ^ sum)) < 0) return a < 0 ? INT32_MIN : INT32_MAX;
  return sum;
}
#endif

static inline int8_t htpw_clamp_0_127(int32_t v) { return (int8_t)(v < 0 ? 0 : (v > 127 ? 127 : v)); }

/* --- checks: HTPW_OK, or the status of the first problem --------------------------- */
/* The tensor is usable and holds at least `count` elements. */
htpw_status htpw_check_tensor(const htpw_tensor* t, int64_t count);
/* The sign bits hold at least c_out bits. */
htpw_status htpw_check_signs(const htpw_signs* signs, int32_t c_out);
/* Sizes in range, W1 holds d_z * d_h elements and b1 d_h int32. */
htpw_status htpw_check_mlp(const htpw_mlp* mlp);
/* What every micro-MLP strategy checks after its own tensors, in this order (the status is the contract's):
   the requantization, the sign bits, the scratch and kernel pointers, the scratch's alignment and size
   (`needed`: the strategy's own scratch_bytes, negative when the sizes overflow). */
htpw_status htpw_check_mlp_finish(const htpw_requant* requant, const htpw_signs* signs, int32_t c_out,
                                  const void* scratch, int32_t scratch_bytes, int32_t needed, const int8_t* kernel);

/* --- int16 pair products ----------------------------------------------------------- */
/* Where output (i, j) of a pair product goes: dst[i * seg + (j / seg) * ld + j % seg]. A plain
 * row-major (m, n) result is seg = n; the tiled band puts tile i's value (r, c) at row r, column
 * i * b + c of a (b, ld) matrix (seg = b), so each kernel row ends up contiguous. */
typedef struct {
  int32_t seg, ld;
} htpw_pairs_out;

/* The first `used` columns of a (k, n) tensor, transposed, as interleaved pair words. */
void htpw_transpose_pairs(const htpw_tensor* t, int32_t k, int32_t n, int32_t used, uint32_t* out);
/* dst (placed as `o` says) = row i of a . row j of b over kw pair words (SMLAD blocks). */
void htpw_mat_mult_pairs_to(const uint32_t* a, const uint32_t* b, int32_t m, int32_t kw, int32_t n,
                            htpw_pairs_out o, int32_t* dst);
/* As htpw_mat_mult_pairs_to into a row-major (m, n) dst. */
void htpw_mat_mult_pairs(const uint32_t* a, const uint32_t* b, int32_t m, int32_t kw, int32_t n, int32_t* dst);

/* --- the micro-MLP's step 1 after its product --------------------------------------- */
/* b1 decoded into d_h int32. */
void htpw_decode_bias(const htpw_mlp* mlp, int32_t* bias);
/* h = relu_int8(acc1 + bias) for `count` codes of d_h, as int8 rows. */
void htpw_hidden(int32_t d_h, const int32_t* bias, int32_t count, const htpw_requant* requant, const int32_t* acc1,
                 int8_t* h);

#ifdef __cplusplus
}
#endif

#endif /* HTPW_SHARED_H_ */
