/* Integer kernel synthesis of docs/synthesis.md; see htpw_synthesis.h.
 *
 * Bounds: every function that reads a tensor first checks, in 64-bit arithmetic, that the last
 * element it will read lies inside the tensor's `bytes`; the loops after that check index
 * within those extents only. Weights are unpacked (int4 -> int8) and transposed once per call
 * into scratch, so the products run over contiguous rows and every int32 sum is exact (the
 * limits of htpw_synthesis.h).
 *
 * Speed on Cortex-M4 (bench/bench_synthesis_m4.py): the tiled strategy's tile values (most of
 * its multiply-accumulates) and the factorized head run on int16 pair words with SMLAD (ACLE
 * __smlad, 2 x 2 outputs in registers); the small dense steps use CMSIS-NN's
 * arm_nn_mat_mult_nt_t_s8_s32 in TFLM's CMSIS-NN builds (for the tile values it measured slower:
 * it re-reads and re-writes each int32 output every 8 terms). HTPW_NO_DSP and HTPW_NO_CMSIS_NN select the portable C, which tests hold to the numpy
 * reference on the host; the bench checks that all builds make the same bytes on the M4.
 */
#include "htpw_synthesis.h"

#include <stddef.h>
#include <string.h>

/* TFLM's CMSIS-NN builds define CMSIS_NN (OPTIMIZED_KERNEL_DIR=cmsis_nn): use its product there
 * when the core has the DSP extension; HTPW_NO_CMSIS_NN keeps the portable loops, to compare. */
#if !defined(HTPW_USE_CMSIS_NN) && !defined(HTPW_NO_CMSIS_NN) && defined(CMSIS_NN) && defined(__ARM_FEATURE_DSP)
#define HTPW_USE_CMSIS_NN 1
#endif
#if defined(HTPW_USE_CMSIS_NN)
#include "arm_nnsupportfunctions.h"
#endif
#if defined(__ARM_FEATURE_DSP) && !defined(HTPW_NO_DSP)
#include <arm_acle.h>
#define HTPW_SMLAD_INTRINSIC 1
#endif

static int32_t saturate_int32(int64_t x) {
  if (x > INT32_MAX) return INT32_MAX;
  if (x < INT32_MIN) return INT32_MIN;
  return (int32_t)x;
}

static int64_t ceil_div64(int64_t a, int64_t b) { return (a + b - 1) / b; }

static int64_t align4(int64_t x) { return (x + 3) & ~(int64_t)3; }

int64_t htpw_tensor_capacity(const htpw_tensor* t) {
  if (t == NULL || t->data == NULL || t->bytes < 0) return 0;
  if (t->bits == 8) return t->bytes;
  if (t->bits == 4) return 2 * (int64_t)t->bytes;
  return 0;
}

/* Element `index` of a tensor whose capacity the caller has checked. */
static int8_t get_unchecked(const htpw_tensor* t, int64_t index) {
  if (t->bits == 8) return ((const int8_t*)t->data)[index];
  {
    const uint8_t byte = ((const uint8_t*)t->data)[index >> 1];
    const int32_t nibble = (index & 1) ? (byte >> 4) : (byte & 0x0F);
    return (int8_t)(nibble > 7 ? nibble - 16 : nibble);
  }
}

htpw_status htpw_tensor_unpack(const htpw_tensor* t, int64_t start, int32_t count, int8_t* out) {
  int32_t k;
  if (t == NULL || t->data == NULL || out == NULL) return HTPW_ERR_NULL;
  if (t->bits != 8 && t->bits != 4) return HTPW_ERR_BITS;
  if (start < 0 || count < 0 || start + count > htpw_tensor_capacity(t)) return HTPW_ERR_INPUT_BYTES;
  if (t->bits == 8) {
    memcpy(out, (const int8_t*)t->data + start, (size_t)count);
    return HTPW_OK;
  }
  for (k = 0; k < count; ++k) out[k] = get_unchecked(t, start + k);
  return HTPW_OK;
}

htpw_status htpw_tensor_unpack_transposed(const htpw_tensor* t, int32_t rows, int32_t cols, int32_t used_cols,
                                          int8_t* out) {
  int32_t r, c;
  if (t == NULL || t->data == NULL || out == NULL) return HTPW_ERR_NULL;
  if (t->bits != 8 && t->bits != 4) return HTPW_ERR_BITS;
  if (rows < 0 || cols < 0 || used_cols < 0 || used_cols > cols) return HTPW_ERR_DIMENSION;
  if ((int64_t)rows * cols > htpw_tensor_capacity(t)) return HTPW_ERR_INPUT_BYTES;
  for (r = 0; r < rows; ++r) {
    const int64_t base = (int64_t)r * cols;
    for (c = 0; c < used_cols; ++c) out[(size_t)c * (size_t)rows + (size_t)r] = get_unchecked(t, base + c);
  }
  return HTPW_OK;
}

int32_t htpw_read_i32(const void* data, int32_t index) {
  const uint8_t* p = (const uint8_t*)data + 4 * (size_t)index;
  const uint32_t u = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
  return (u & 0x80000000u) ? -(int32_t)(~u) - 1 : (int32_t)u;
}

/* Single-rounding fixed-point multiply (section 2): round_half_up(acc * M / 2^(31 - shift)),
 * saturated. |acc * M| < 2^62, so adding the rounding term cannot overflow int64. Right shifts
 * of negatives are arithmetic on every compiler this targets (GCC, Clang, Arm Compiler); shift
 * is validated to [-31, 30] by the callers. */
int32_t htpw_requantize(int32_t acc, int32_t multiplier, int32_t shift) {
  const int32_t total_shift = 31 - shift;
  const int64_t product = (int64_t)acc * (int64_t)multiplier;
  return saturate_int32((product + ((int64_t)1 << (total_shift - 1))) >> total_shift);
}

int8_t htpw_relu_int8(int32_t acc, int32_t multiplier, int32_t shift) {
  const int32_t v = htpw_requantize(acc, multiplier, shift);
  return (int8_t)(v < 0 ? 0 : (v > 127 ? 127 : v));
}

#if defined(HTPW_USE_CMSIS_NN)
/* CMSIS-NN: dst must be zeroed; lhs_offset 0; consecutive outputs (dst_idx_offset 1). Its DSP
 * path sums with SMLAD in int32, which is exact under the same bound as the C below. */
void htpw_mat_mult_s32(const int8_t* lhs, const int8_t* rhs_t, int32_t m, int32_t k, int32_t n, int32_t* dst) {
  memset(dst, 0, (size_t)m * (size_t)n * sizeof(int32_t));
  (void)arm_nn_mat_mult_nt_t_s8_s32(lhs, rhs_t, dst, m, k, n, 0, 1);
}
#else
/* Portable reference: plain dot products of contiguous int8 rows, summed in int32. */
void htpw_mat_mult_s32(const int8_t* lhs, const int8_t* rhs_t, int32_t m, int32_t k, int32_t n, int32_t* dst) {
  int32_t r, j, i;
  for (r = 0; r < m; ++r) {
    const int8_t* a = lhs + (size_t)r * (size_t)k;
    for (j = 0; j < n; ++j) {
      const int8_t* b = rhs_t + (size_t)j * (size_t)k;
      int32_t sum = 0;
      for (i = 0; i < k; ++i) sum += (int32_t)a[i] * b[i];
      dst[(size_t)r * (size_t)n + (size_t)j] = sum;
    }
  }
}
#endif

/* ---- int16 pair products (tiled tile values, factorized head) -------------------------
 * A row of k int8 values is kept as ceil(k / 2) words, each holding two int16 (element 2i in
 * the low half, 2i + 1 in the high half, a missing last element 0), so one SMLAD (Cortex-M4
 * DSP extension) multiplies and adds two terms. Elsewhere smlad() is the same sum in C. The
 * bound of htpw_mat_mult_s32 holds for every partial sum, so SMLAD's 32-bit wrap never occurs. */
#if defined(HTPW_SMLAD_INTRINSIC)
static int32_t smlad(uint32_t a, uint32_t b, int32_t acc) { return __smlad((int16x2_t)a, (int16x2_t)b, acc); }
#else
/* The halves as int16: the conversions wrap and the shift is arithmetic on every compiler this
 * targets (GCC, Clang, Arm Compiler), as htpw_requantize already assumes. */
static int32_t smlad(uint32_t a, uint32_t b, int32_t acc) {
  return acc + (int32_t)(int16_t)a * (int16_t)b + ((int32_t)a >> 16) * ((int32_t)b >> 16);
}
#endif

static uint32_t pair(int32_t low, int32_t high) { return ((uint32_t)low & 0xFFFFu) | ((uint32_t)high << 16); }

/* Rows as pair words, two rows interleaved word by word (row 2q word i at [2i], row 2q + 1 at
 * [2i + 1]), so that the same word of both rows is loaded from adjacent addresses. */
static void interleave_pairs(const int8_t* x, int32_t rows, int32_t k, uint32_t* out) {
  const int32_t kw = (k + 1) / 2;
  int32_t r, i;
  for (r = 0; r < rows; ++r) {
    const int8_t* row = x + (size_t)r * (size_t)k;
    uint32_t* o = out + (size_t)(r / 2) * 2u * (size_t)kw + (size_t)(r & 1);
    for (i = 0; i + 1 < k; i += 2) o[i] = pair(row[i], row[i + 1]); /* word i/2 sits at [2 * (i/2)] */
    if (k & 1) o[2 * (kw - 1)] = pair(row[k - 1], 0);
  }
  if (rows & 1) { /* the partner of an odd last row: zeros, computed and dropped */
    uint32_t* o = out + (size_t)(rows / 2) * 2u * (size_t)kw + 1u;
    for (i = 0; i < kw; ++i) o[2 * i] = 0;
  }
}

/* The first `used` columns of a (k, n) row-major tensor, transposed and as interleaved pair words
 * (interleave_pairs): column j becomes row j, word i = (t[2i][j], t[2i + 1][j]); a padding row
 * is zeros. The caller has checked that the tensor holds k * n elements. */
static void transpose_pairs(const htpw_tensor* t, int32_t k, int32_t n, int32_t used, uint32_t* out) {
  const int32_t kw = (k + 1) / 2;
  int32_t j, i;
  for (j = 0; j < used + (used & 1); ++j) {
    uint32_t* o = out + (size_t)(j / 2) * 2u * (size_t)kw + (size_t)(j & 1);
    for (i = 0; i < kw; ++i) {
      const int64_t k0 = 2 * (int64_t)i;
      o[2 * i] = j >= used ? 0u
                           : pair(get_unchecked(t, k0 * n + j), k0 + 1 < k ? get_unchecked(t, (k0 + 1) * n + j) : 0);
    }
  }
}

/* dst[r * n + j] = sum over the kw pair words of row r of a and row j of b (both interleaved by
 * interleave_pairs): two by two outputs at a time, each loaded word feeding two SMLADs. */
static void mat_mult_pairs(const uint32_t* a, const uint32_t* b, int32_t m, int32_t kw, int32_t n, int32_t* dst) {
  int32_t r, j;
  for (r = 0; r < m; r += 2) {
    const uint32_t* ab = a + (size_t)r * (size_t)kw;
    int32_t* d0 = dst + (size_t)r * (size_t)n;
    int32_t* d1 = r + 1 < m ? d0 + n : NULL;
    for (j = 0; j < n; j += 2) {
      const uint32_t* bb = b + (size_t)j * (size_t)kw;
      const uint32_t* x = ab;
      const uint32_t* y = bb;
      const uint32_t* x_end = ab + 2 * (size_t)(kw & ~1);
      int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0;
      for (; x != x_end; x += 4, y += 4) { /* two words per pass: 8 loads, 8 SMLADs, one branch */
        s00 = smlad(x[0], y[0], s00);
        s01 = smlad(x[0], y[1], s01);
        s10 = smlad(x[1], y[0], s10);
        s11 = smlad(x[1], y[1], s11);
        s00 = smlad(x[2], y[2], s00);
        s01 = smlad(x[2], y[3], s01);
        s10 = smlad(x[3], y[2], s10);
        s11 = smlad(x[3], y[3], s11);
      }
      if (kw & 1) {
        s00 = smlad(x[0], y[0], s00);
        s01 = smlad(x[0], y[1], s01);
        s10 = smlad(x[1], y[0], s10);
        s11 = smlad(x[1], y[1], s11);
      }
      d0[j] = s00;
      if (j + 1 < n) d0[j + 1] = s01;
      if (d1 != NULL) {
        d1[j] = s10;
        if (j + 1 < n) d1[j + 1] = s11;
      }
    }
  }
}

int htpw_sign_bit(const htpw_signs* signs, int32_t channel) {
  if (signs == NULL || signs->data == NULL || channel < 0 || (channel >> 3) >= signs->bytes) return 0;
  return (signs->data[channel >> 3] >> (channel & 7)) & 1;
}

static uint32_t magnitude_of(int32_t v) { return v < 0 ? 0u - (uint32_t)v : (uint32_t)v; }

/* channel_quantize + apply_signs of one kernel row of `cols` values stored as segments of
 * `seg` consecutive int32 (the last one shorter), `stride` apart: the tiled band keeps a row as
 * ceil(C_in / b) pieces of b values, a paper row is one piece.
 *
 * docs/synthesis.md: k = sign(a) floor((254 |a| + peak) / (2 peak)), negated if the row's sign
 * bit is set. With c = -254 for a negated row (else 254) and t = c a, that is the truncating
 * division (t + sign(t) peak) / (2 peak). When peak < 2^23 every term fits in int32, so one
 * SDIV per value (Cortex-M4) gives the 64-bit formula's integer; larger peaks take the 64-bit
 * path. */
static void quantize_row(const int32_t* acc, int32_t seg, size_t stride, int32_t cols, int negate, int8_t* out) {
  uint32_t peak = 0;
  const int32_t* v;
  int32_t left, i;
  for (v = acc, left = cols; left > 0; v += stride, left -= seg) {
    const int32_t n = left < seg ? left : seg;
    for (i = 0; i < n; ++i) {
      const uint32_t a = magnitude_of(v[i]);
      peak = a > peak ? a : peak;
    }
  }
  if (peak == 0) {
    memset(out, 0, (size_t)cols);
    return;
  }
  if (peak < (1u << 23)) {
    const int32_t p = (int32_t)peak, divisor = 2 * (int32_t)peak, c = negate ? -254 : 254;
    for (v = acc, left = cols; left > 0; v += stride, left -= seg, out += seg) {
      const int32_t n = left < seg ? left : seg;
      for (i = 0; i < n; ++i) {
        const int32_t t = c * v[i];
        const int32_t s = t >> 31; /* -1 if t < 0: arithmetic on every compiler this targets */
        out[i] = (int8_t)((t + ((p ^ s) - s)) / divisor);
      }
    }
  } else {
    const uint64_t divisor = 2u * (uint64_t)peak;
    for (v = acc, left = cols; left > 0; v += stride, left -= seg, out += seg) {
      const int32_t n = left < seg ? left : seg;
      for (i = 0; i < n; ++i) {
        const int32_t m = (int32_t)((254u * (uint64_t)magnitude_of(v[i]) + peak) / divisor);
        const int32_t flip = -(int32_t)((v[i] < 0) ^ (negate != 0)); /* -1: output negative */
        out[i] = (int8_t)((m ^ flip) - flip);
      }
    }
  }
}

void htpw_channel_quantize_row(const int32_t* acc, int32_t cols, int negate, int8_t* out) {
  if (cols > 0) quantize_row(acc, cols, 0, cols, negate, out);
}

htpw_status htpw_validate_requant(const htpw_requant* requant) {
  if (requant == NULL) return HTPW_ERR_NULL;
  if (requant->shift < -31 || requant->shift > 30) return HTPW_ERR_SHIFT;
  if (requant->multiplier < (1 << 30)) return HTPW_ERR_MULTIPLIER;
  return HTPW_OK;
}

/* The tensor is usable and holds at least `count` elements. */
static htpw_status check_tensor(const htpw_tensor* t, int64_t count) {
  if (t == NULL || t->data == NULL) return HTPW_ERR_NULL;
  if (t->bits != 8 && t->bits != 4) return HTPW_ERR_BITS;
  if (t->bytes < 0 || htpw_tensor_capacity(t) < count) return HTPW_ERR_INPUT_BYTES;
  return HTPW_OK;
}

static htpw_status check_signs(const htpw_signs* signs, int32_t c_out) {
  if (signs == NULL || signs->data == NULL) return HTPW_ERR_NULL;
  if (signs->bytes < ceil_div64(c_out, 8)) return HTPW_ERR_INPUT_BYTES;
  return HTPW_OK;
}

static htpw_status check_mlp(const htpw_mlp* mlp) {
  htpw_status status;
  if (mlp == NULL || mlp->b1 == NULL) return HTPW_ERR_NULL;
  if (mlp->code_dim <= 0 || mlp->code_dim > HTPW_MAX_DENSE_TERMS) return HTPW_ERR_DIMENSION;
  if (mlp->hidden_dim <= 0 || mlp->hidden_dim > HTPW_MAX_DENSE_TERMS) return HTPW_ERR_DIMENSION;
  if ((status = check_tensor(&mlp->w1, (int64_t)mlp->code_dim * mlp->hidden_dim)) != HTPW_OK) return status;
  if ((int64_t)mlp->b1_bytes < 4 * (int64_t)mlp->hidden_dim) return HTPW_ERR_INPUT_BYTES;
  return HTPW_OK;
}

/* saturate_int32(a + b) without 64-bit arithmetic: QADD on cores with the DSP extension. */
#if defined(HTPW_SMLAD_INTRINSIC)
static int32_t add_saturated(int32_t a, int32_t b) { return __qadd(a, b); }
#else
static int32_t add_saturated(int32_t a, int32_t b) {
  const int32_t sum = (int32_t)((uint32_t)a + (uint32_t)b);
  if (((a ^ sum) & (b ^ sum)) < 0) return a < 0 ? INT32_MIN : INT32_MAX;
  return sum;
}
#endif

static int8_t clamp_0_127(int32_t v) { return (int8_t)(v < 0 ? 0 : (v > 127 ? 127 : v)); }

/* Step 1 of both strategies for `count` codes, after the product: h = relu_int8(acc1 + b1) with
 * acc1 = z . W1 (count x d_h) and b1 decoded in bias. The dense step saturates only when the bias is added
 * (the product itself is exact in int32), as dense() of the reference does. relu_int8 clamps to
 * [0, 127], so requantize's own saturation to int32 cannot change the result and is skipped.
 * When t = 31 - n > 32 (multiplier below 0.25), floor((x M + 2^(t-1)) / 2^t) equals
 * (floor(x M / 2^32) + 2^(t-33)) >> (t - 32): the high word of one SMULL, an add and a shift. */
static void hidden(int32_t d_h, const int32_t* bias, int32_t count, const htpw_requant* requant, const int32_t* acc1,
                   int8_t* h) {
  const int32_t total_shift = 31 - requant->shift, multiplier = requant->multiplier;
  int32_t t, j;
  for (t = 0; t < count; ++t) {
    const int32_t* a = acc1 + (size_t)t * (size_t)d_h;
    int8_t* out = h + (size_t)t * (size_t)d_h;
    if (total_shift > 32) {
      const int32_t high_shift = total_shift - 32, half = (int32_t)1 << (high_shift - 1);
      for (j = 0; j < d_h; ++j) {
        const int32_t high = (int32_t)(((int64_t)add_saturated(a[j], bias[j]) * (int64_t)multiplier) >> 32);
        out[j] = clamp_0_127((high + half) >> high_shift); /* |high| < 2^30, half <= 2^29 */
      }
    } else {
      const int64_t round = (int64_t)1 << (total_shift - 1);
      for (j = 0; j < d_h; ++j) {
        const int64_t v = (round + (int64_t)add_saturated(a[j], bias[j]) * (int64_t)multiplier) >> total_shift;
        out[j] = (int8_t)(v < 0 ? 0 : (v > 127 ? 127 : v));
      }
    }
  }
}

static void decode_bias(const htpw_mlp* mlp, int32_t* bias) {
  int32_t j;
  for (j = 0; j < mlp->hidden_dim; ++j) bias[j] = htpw_read_i32(mlp->b1, j);
}

/* Scratch of the tiled strategy, as byte offsets (int32 parts first, each 4-aligned). The band
 * holds one tile row: first the hidden accumulators of its tiles (cols x d_h), then, once those
 * are turned into h, the tile values (cols x b*b); so it is sized for the larger of the two. */
typedef struct {
  int64_t band, bias, w2p, hp, w1t, z, h, total;
} tiled_layout;

static tiled_layout tiled_plan(const htpw_mlp* mlp, int32_t tile, int32_t c_in) {
  tiled_layout l;
  const int64_t cols = ceil_div64(c_in, tile), tt = (int64_t)tile * tile;
  const int64_t d_z = mlp->code_dim, d_h = mlp->hidden_dim, kw = (d_h + 1) / 2;
  l.band = 0;                                         /* int32 [cols][max(b*b, d_h)] */
  l.bias = l.band + 4 * cols * (tt > d_h ? tt : d_h); /* int32 [d_h] */
  l.w2p = l.bias + 4 * d_h;                  /* pair words, W2 transposed: [b*b rounded up to even][kw] */
  l.hp = l.w2p + 4 * (tt + (tt & 1)) * kw;   /* pair words, h of the band: [cols rounded up to even][kw] */
  l.w1t = l.hp + 4 * (cols + (cols & 1)) * kw; /* int8 [d_h][d_z] */
  l.z = align4(l.w1t + d_h * d_z);           /* int8 [cols][d_z] */
  l.h = align4(l.z + cols * d_z);            /* int8 [cols][d_h] */
  l.total = align4(l.h + cols * d_h);
  return l;
}

int32_t htpw_tiled_scratch_bytes(const htpw_mlp* mlp, int32_t tile, int32_t c_in) {
  tiled_layout l;
  if (mlp == NULL || mlp->code_dim <= 0 || mlp->code_dim > HTPW_MAX_DENSE_TERMS || mlp->hidden_dim <= 0 ||
      mlp->hidden_dim > HTPW_MAX_DENSE_TERMS || tile <= 0 || tile > HTPW_MAX_TILE_SIZE || c_in <= 0) {
    return -1;
  }
  l = tiled_plan(mlp, tile, c_in);
  return l.total > INT32_MAX ? -1 : (int32_t)l.total;
}

htpw_status htpw_tiled_synthesize(const htpw_mlp* mlp, const htpw_tensor* w2, int32_t tile,
                                  const htpw_tensor* codes, const htpw_requant* requant,
                                  const htpw_signs* signs, int32_t c_out, int32_t c_in,
                                  void* scratch, int32_t scratch_bytes, int8_t* kernel) {
  htpw_status status;
  int32_t rows, cols, tt, d_h, to, r;
  int32_t needed;
  tiled_layout l;
  uint8_t* base;
  int32_t *band, *bias;
  uint32_t *w2p, *hp;
  int8_t *w1t, *z, *h;
  int32_t kw;
  if ((status = check_mlp(mlp)) != HTPW_OK) return status;
  if (tile <= 0 || tile > HTPW_MAX_TILE_SIZE || c_out <= 0 || c_in <= 0) return HTPW_ERR_DIMENSION;
  d_h = mlp->hidden_dim;
  rows = (int32_t)ceil_div64(c_out, tile);
  cols = (int32_t)ceil_div64(c_in, tile);
  tt = tile * tile;
  if ((status = check_tensor(w2, (int64_t)d_h * tt)) != HTPW_OK) return status;
  if ((status = check_tensor(codes, (int64_t)rows * cols * mlp->code_dim)) != HTPW_OK) return status;
  if ((status = htpw_validate_requant(requant)) != HTPW_OK) return status;
  if ((status = check_signs(signs, c_out)) != HTPW_OK) return status;
  if (scratch == NULL || kernel == NULL) return HTPW_ERR_NULL;
  if (((uintptr_t)scratch & 3u) != 0) return HTPW_ERR_ALIGN;
  needed = htpw_tiled_scratch_bytes(mlp, tile, c_in);
  if (needed < 0) return HTPW_ERR_SIZE;
  if (scratch_bytes < needed) return HTPW_ERR_SCRATCH;
  l = tiled_plan(mlp, tile, c_in);
  base = (uint8_t*)scratch;
  band = (int32_t*)(void*)(base + l.band);
  bias = (int32_t*)(void*)(base + l.bias);
  w2p = (uint32_t*)(void*)(base + l.w2p);
  hp = (uint32_t*)(void*)(base + l.hp);
  w1t = (int8_t*)(base + l.w1t);
  z = (int8_t*)(base + l.z);
  h = (int8_t*)(base + l.h);
  kw = (d_h + 1) / 2;
  /* Extents were checked above; these cannot fail. */
  decode_bias(mlp, bias);
  (void)htpw_tensor_unpack_transposed(&mlp->w1, mlp->code_dim, d_h, d_h, w1t);
  transpose_pairs(w2, d_h, tt, tt, w2p);
  for (to = 0; to < rows; ++to) {
    /* Steps 1-2 for the whole tile row: h_t for its cols tiles, then v_t = h_t . W2 into
     * band[ti][r * b + c]. */
    (void)htpw_tensor_unpack(codes, (int64_t)to * cols * mlp->code_dim, cols * mlp->code_dim, z);
    htpw_mat_mult_s32(z, w1t, cols, mlp->code_dim, d_h, band);
    hidden(d_h, bias, cols, requant, band, h);
    interleave_pairs(h, cols, d_h, hp);
    mat_mult_pairs(hp, w2p, cols, kw, tt, band);
    /* Step 3-4: kernel row o = to * b + r is the pieces band[ti][r * b .. r * b + b). */
    for (r = 0; r < tile && (int64_t)to * tile + r < c_out; ++r) {
      const int32_t o = to * tile + r;
      quantize_row(band + (size_t)r * (size_t)tile, tile, (size_t)tt, c_in, htpw_sign_bit(signs, o),
                   kernel + (size_t)o * (size_t)c_in);
    }
  }
  return HTPW_OK;
}

/* Scratch of the paper strategy, as byte offsets. The factorized head runs two output rows at a
 * time on pair words: B[:, :C_in] transposed once (bp), then A[o, k] h[k] of rows o, o + 1 (sp). */
typedef struct {
  int64_t row, acc1, sp, bp, w1t, z, h, head_row, total;
} paper_layout;

static paper_layout paper_plan(const htpw_mlp* mlp, htpw_head_kind kind, int32_t c_in) {
  paper_layout l;
  const int64_t d_z = mlp->code_dim, d_h = mlp->hidden_dim, kw = (d_h + 1) / 2;
  const int factorized = kind == HTPW_HEAD_FACTORIZED;
  l.row = 0;                                         /* int32 [c_in], factorized [2][c_in] */
  l.acc1 = l.row + (factorized ? 8 : 4) * (int64_t)c_in; /* int32 [d_h], then the decoded b1 [d_h] */
  l.sp = l.acc1 + 8 * d_h;                           /* pair words [2][kw] (factorized) */
  l.bp = l.sp + (factorized ? 8 * kw : 0);           /* pair words [C_in rounded up to even][kw] (factorized) */
  l.w1t = l.bp + (factorized ? 4 * (c_in + (c_in & 1)) * kw : 0); /* int8 [d_h][d_z] */
  l.z = align4(l.w1t + d_h * d_z);                   /* int8 [d_z] */
  l.h = align4(l.z + d_z);                           /* int8 [d_h] */
  l.head_row = align4(l.h + d_h);                    /* int8: dense [c_in] head slice; factorized [d_h] A row */
  l.total = align4(l.head_row + (factorized ? d_h : (int64_t)c_in));
  return l;
}

int32_t htpw_paper_scratch_bytes(const htpw_mlp* mlp, htpw_head_kind kind, int32_t c_in) {
  paper_layout l;
  if (mlp == NULL || mlp->code_dim <= 0 || mlp->code_dim > HTPW_MAX_DENSE_TERMS || mlp->hidden_dim <= 0 ||
      mlp->hidden_dim > HTPW_MAX_DENSE_TERMS || c_in <= 0 ||
      (kind != HTPW_HEAD_DENSE && kind != HTPW_HEAD_FACTORIZED)) {
    return -1;
  }
  l = paper_plan(mlp, kind, c_in);
  return l.total > INT32_MAX ? -1 : (int32_t)l.total;
}

/* acc[o, :] += h[k] * H[k, o*C_in : (o+1)*C_in] over k, for one output row (head="dense"). */
static void dense_head_row(const htpw_tensor* head, const int8_t* h, int32_t d_h, int64_t row_len, int32_t o,
                           int32_t c_in, int8_t* slice, int32_t* row) {
  int32_t k, i;
  memset(row, 0, (size_t)c_in * sizeof(int32_t));
  for (k = 0; k < d_h; ++k) {
    const int32_t hk = h[k];
    const int64_t start = (int64_t)k * row_len + (int64_t)o * c_in;
    const int8_t* w;
    if (hk == 0) continue; /* ReLU zeros add nothing: skipping them changes no sum */
    if (head->bits == 8) {
      w = (const int8_t*)head->data + start;
    } else {
      (void)htpw_tensor_unpack(head, start, c_in, slice);
      w = slice;
    }
    for (i = 0; i < c_in; ++i) row[i] += hk * w[i];
  }
}

/* Row `slot` (0 or 1) of the interleaved pair words sp: A[o, k] * h[k] (|.| <= 128 * 127, an
 * int16), or zeros when the row does not exist. acc[o, i] = sum_k sp[o][k] * B[k, i] then is a
 * pair product with B transposed (head="factorized"). */
static void factorized_scaled_row(const int8_t* a_row, const int8_t* h, int32_t d_h, int exists, uint32_t* sp,
                                  int32_t slot) {
  const int32_t kw = (d_h + 1) / 2;
  int32_t i;
  for (i = 0; i < kw; ++i) {
    const int32_t k = 2 * i;
    const int32_t s0 = exists ? (int32_t)a_row[k] * h[k] : 0;
    const int32_t s1 = exists && k + 1 < d_h ? (int32_t)a_row[k + 1] * h[k + 1] : 0;
    sp[2 * i + slot] = pair(s0, s1);
  }
}

htpw_status htpw_paper_synthesize(const htpw_mlp* mlp, htpw_head_kind kind, const htpw_tensor* head,
                                  const htpw_tensor* b_shared, int32_t b_cols, const htpw_tensor* code,
                                  const htpw_requant* requant, const htpw_signs* signs,
                                  int32_t c_out, int32_t c_in, void* scratch, int32_t scratch_bytes,
                                  int8_t* kernel) {
  htpw_status status;
  int32_t o, d_h, needed;
  paper_layout l;
  uint8_t* base;
  int32_t *row, *acc1;
  uint32_t *sp, *bp;
  int8_t *w1t, *z, *h, *head_row;
  if ((status = check_mlp(mlp)) != HTPW_OK) return status;
  if (kind != HTPW_HEAD_DENSE && kind != HTPW_HEAD_FACTORIZED) return HTPW_ERR_HEAD;
  if (c_out <= 0 || c_in <= 0) return HTPW_ERR_DIMENSION;
  d_h = mlp->hidden_dim;
  if (kind == HTPW_HEAD_DENSE) {
    if ((status = check_tensor(head, (int64_t)d_h * c_out * c_in)) != HTPW_OK) return status;
  } else {
    if (b_cols < c_in || d_h > HTPW_MAX_FACTOR_RANK) return HTPW_ERR_DIMENSION;
    if ((status = check_tensor(head, (int64_t)c_out * d_h)) != HTPW_OK) return status;
    if ((status = check_tensor(b_shared, (int64_t)d_h * b_cols)) != HTPW_OK) return status;
  }
  if ((status = check_tensor(code, mlp->code_dim)) != HTPW_OK) return status;
  if ((status = htpw_validate_requant(requant)) != HTPW_OK) return status;
  if ((status = check_signs(signs, c_out)) != HTPW_OK) return status;
  if (scratch == NULL || kernel == NULL) return HTPW_ERR_NULL;
  if (((uintptr_t)scratch & 3u) != 0) return HTPW_ERR_ALIGN;
  needed = htpw_paper_scratch_bytes(mlp, kind, c_in);
  if (needed < 0) return HTPW_ERR_SIZE;
  if (scratch_bytes < needed) return HTPW_ERR_SCRATCH;
  l = paper_plan(mlp, kind, c_in);
  base = (uint8_t*)scratch;
  row = (int32_t*)(void*)(base + l.row);
  acc1 = (int32_t*)(void*)(base + l.acc1);
  sp = (uint32_t*)(void*)(base + l.sp);
  bp = (uint32_t*)(void*)(base + l.bp);
  w1t = (int8_t*)(base + l.w1t);
  z = (int8_t*)(base + l.z);
  h = (int8_t*)(base + l.h);
  head_row = (int8_t*)(base + l.head_row);
  /* Extents were checked above; these cannot fail. */
  (void)htpw_tensor_unpack_transposed(&mlp->w1, mlp->code_dim, d_h, d_h, w1t);
  (void)htpw_tensor_unpack(code, 0, mlp->code_dim, z);
  decode_bias(mlp, acc1 + d_h);
  htpw_mat_mult_s32(z, w1t, 1, mlp->code_dim, d_h, acc1);
  hidden(d_h, acc1 + d_h, 1, requant, acc1, h);
  if (kind == HTPW_HEAD_DENSE) {
    for (o = 0; o < c_out; ++o) {
      dense_head_row(head, h, d_h, (int64_t)c_out * c_in, o, c_in, head_row, row);
      htpw_channel_quantize_row(row, c_in, htpw_sign_bit(signs, o), kernel + (size_t)o * (size_t)c_in);
    }
    return HTPW_OK;
  }
  transpose_pairs(b_shared, d_h, b_cols, c_in, bp);
  for (o = 0; o < c_out; o += 2) {
    const int32_t n_rows = o + 1 < c_out ? 2 : 1, kw = (d_h + 1) / 2;
    int32_t r;
    for (r = 0; r < 2; ++r) {
      if (r < n_rows) (void)htpw_tensor_unpack(head, (int64_t)(o + r) * d_h, d_h, head_row);
      factorized_scaled_row(head_row, h, d_h, r < n_rows, sp, r);
    }
    mat_mult_pairs(sp, bp, n_rows, kw, c_in, row);
    for (r = 0; r < n_rows; ++r) {
      htpw_channel_quantize_row(row + (size_t)r * (size_t)c_in, c_in, htpw_sign_bit(signs, o + r),
                                kernel + (size_t)(o + r) * (size_t)c_in);
    }
  }
  return HTPW_OK;
}
