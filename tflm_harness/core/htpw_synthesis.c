/* The arithmetic every strategy shares (docs/synthesis.md section 2); see htpw_synthesis.h and
 * htpw_shared.h. The strategies' own loops are htpw_tiled.c, htpw_paper.c and htpw_low_rank.c.
 *
 * Bounds: every function that reads a tensor first checks, in 64-bit arithmetic, that the last
 * element it will read lies inside the tensor's `bytes`; the loops after that check index
 * within those extents only. Weights are unpacked (int4 -> int8) and transposed once per call
 * into scratch, so the products run over contiguous rows and every int32 sum is exact (the
 * limits of htpw_synthesis.h).
 *
 * Speed on Cortex-M4 (bench/bench_synthesis_m4.py; BENCHMARKS.md, synthesis_m4): the tiled
 * strategy runs both its products (step 1, codes x W1, and the tile values, h x W2: nearly all of
 * its multiply-accumulates) and the factorized head on int16 pair words with SMLAD, two by two
 * outputs per block. On Thumb-2 cores with DSP the block is a short assembly sequence (one LDM
 * per four words, 16 multiply-accumulates in 11 instructions, whole segments of the tiled band
 * stored by STRD), unrolled for the word counts of d_h = 32, 16 and d_z = 4; any other shape
 * takes the same sums in C. The tiled band keeps each kernel row contiguous, so channel
 * quantization is one pass for the peak and one division per value. The paper strategies' step 1
 * (one code) uses CMSIS-NN's arm_nn_mat_mult_nt_t_s8_s32 in TFLM's CMSIS-NN builds; the tiled
 * step 1 used it too, until pair blocks that write h straight as pair words measured 1.4 M
 * instructions fewer on the 64k preset.
 * HTPW_NO_ASM, HTPW_NO_DSP and HTPW_NO_CMSIS_NN select the C paths, which tests hold to the numpy
 * reference on the host (test_c_core.py); test_synthesis_m4.py holds the Cortex-M4 build to it
 * on odd shapes, and the bench checks that all builds make the same bytes.
 */
#include "htpw_synthesis.h"
#include "htpw_shared.h"

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

static int32_t saturate_int32(int64_t x) {
  if (x > INT32_MAX) return INT32_MAX;
  if (x < INT32_MIN) return INT32_MIN;
  return (int32_t)x;
}

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

/* The first `used` columns of a (k, n) row-major tensor, transposed and as interleaved pair words
 * (two rows word by word): column j becomes row j, word i = (t[2i][j], t[2i + 1][j]); a padding row
 * is zeros. The caller has checked that the tensor holds k * n elements. */
void htpw_transpose_pairs(const htpw_tensor* t, int32_t k, int32_t n, int32_t used, uint32_t* out) {
  const int32_t kw = (k + 1) / 2;
  int32_t j, i;
  for (j = 0; j < used + (used & 1); ++j) {
    uint32_t* o = out + (size_t)(j / 2) * 2u * (size_t)kw + (size_t)(j & 1);
    if (j >= used) {
      for (i = 0; i < kw; ++i) o[2 * i] = 0u;
    } else if (t->bits == 8 && (k & 1) == 0) { /* int8 and no odd last row: read column j directly */
      const int8_t* col = (const int8_t*)t->data + j;
      for (i = 0; i < kw; ++i, col += 2 * (size_t)n) o[2 * i] = htpw_pair(col[0], col[n]);
    } else {
      for (i = 0; i < kw; ++i) {
        const int64_t k0 = 2 * (int64_t)i;
        o[2 * i] = htpw_pair(get_unchecked(t, k0 * n + j), k0 + 1 < k ? get_unchecked(t, (k0 + 1) * n + j) : 0);
      }
    }
  }
}

/* The place of the next column: column c of the segment that starts at *base. */
static int32_t next_offset(htpw_pairs_out o, int32_t* c, int32_t* base) {
  const int32_t offset = *base + *c;
  if (++*c == o.seg) {
    *c = 0;
    *base += o.ld;
  }
  return offset;
}

/* One 2 x 2 block: rows x (two interleaved rows of a) times rows y (two interleaved rows of b)
 * over kw >= 1 words, s = (x0.y0, x0.y1, x1.y0, x1.y1). */
static void block_2x2(const uint32_t* x, const uint32_t* y, int32_t kw, int32_t* s) {
  int32_t s00 = smlad(x[0], y[0], 0), s01 = smlad(x[0], y[1], 0);
  int32_t s10 = smlad(x[1], y[0], 0), s11 = smlad(x[1], y[1], 0);
  int32_t i;
  for (i = 1; i < kw; ++i) {
    const uint32_t x0 = x[2 * i], x1 = x[2 * i + 1], y0 = y[2 * i], y1 = y[2 * i + 1];
    s00 = smlad(x0, y0, s00);
    s01 = smlad(x0, y1, s01);
    s10 = smlad(x1, y0, s10);
    s11 = smlad(x1, y1, s11);
  }
  s[0] = s00;
  s[1] = s01;
  s[2] = s10;
  s[3] = s11;
}

/* dst (placed as `o` says) = sum over the kw pair words of row i of a and row j of b (both
 * interleaved: two rows word by word), two by two outputs at a time. A padding row of a (m odd) is
 * zeros: its outputs go to the real row's place first and are overwritten; a padding row of b
 * (n odd) likewise, its column dropped. This C is the reference of the assembly below and runs
 * every shape the assembly does not take. */
static void mat_mult_pairs_c(const uint32_t* a, const uint32_t* b, int32_t m, int32_t kw, int32_t n, htpw_pairs_out o,
                             int32_t* dst) {
  int32_t r, j;
  for (r = 0; r < m; r += 2) {
    const uint32_t* x = a + (size_t)r * (size_t)kw;
    int32_t* d0 = dst + (size_t)r * (size_t)o.seg;
    const int32_t next = r + 1 < m ? o.seg : 0;
    int32_t c = 0, base = 0;
    for (j = 0; j < n; j += 2) {
      const int32_t p0 = next_offset(o, &c, &base), p1 = j + 1 < n ? next_offset(o, &c, &base) : p0;
      int32_t s[4];
      block_2x2(x, b + (size_t)j * (size_t)kw, kw, s);
      d0[p1 + next] = s[3];
      d0[p0 + next] = s[2];
      d0[p1] = s[1];
      d0[p0] = s[0];
    }
  }
}

#if defined(HTPW_SMLAD_INTRINSIC) && defined(__GNUC__) && defined(__thumb2__) && !defined(HTPW_NO_ASM)
/* A 2 x 2 block step as Thumb-2, for two words: one LDM loads them for both x rows and two LDMs
 * for both y rows, then eight SMLADs (SMUADs when `op` starts a block), so 16 multiply-accumulates
 * cost 11 instructions. r4, r5 and r8-r11 hold the loaded words (clobbered; r7, Thumb's frame
 * pointer, stays free). Same sums as block_2x2. */
#define HTPW_PAIR_STEP(op, first)           \
  "ldmia %[x]!, {r8, r9, r10, r11}\n\t"     \
  "ldmia %[y]!, {r4, r5}\n\t"               \
  op " %[s00], r8, r4" first(s00) "\n\t"     \
  op " %[s01], r8, r5" first(s01) "\n\t"     \
  op " %[s10], r9, r4" first(s10) "\n\t"     \
  op " %[s11], r9, r5" first(s11) "\n\t"     \
  "ldmia %[y]!, {r4, r5}\n\t"               \
  "smlad %[s00], r10, r4, %[s00]\n\t"       \
  "smlad %[s01], r10, r5, %[s01]\n\t"       \
  "smlad %[s10], r11, r4, %[s10]\n\t"       \
  "smlad %[s11], r11, r5, %[s11]\n\t"
#define HTPW_NO_ACC(s)
#define HTPW_ACC(s) ", %[" #s "]"

/* One 2 x 2 block for kw = 2 * STEPS words; x and y advance by kw pair words each. */
#define HTPW_BLOCK_ASM(STEPS, x, y, s00, s01, s10, s11)                                                         \
  __asm__ volatile(HTPW_PAIR_STEP("smuad", HTPW_NO_ACC) ".rept " #STEPS " - 1\n\t" HTPW_PAIR_STEP("smlad", \
                                                                                               HTPW_ACC) ".endr" \
                   : [x] "+r"(x), [y] "+r"(y), [s00] "=&r"(s00), [s01] "=&r"(s01), [s10] "=&r"(s10),            \
                     [s11] "=&r"(s11)                                                                           \
                   :                                                                                            \
                   : "r4", "r5", "r8", "r9", "r10", "r11", "memory")

/* mat_mult_pairs_to for a row-major result (one segment) with n even and kw = 2 * STEPS (the
 * factorized head of d_h = 16 or 32): pairs of rows in assembly blocks, an odd last row in C.
 * Returns 0, having done nothing, for any other shape. */
#define HTPW_ROWS_ASM(STEPS)                                                                                  \
  static int mat_mult_rows_##STEPS(const uint32_t* a, const uint32_t* b, int32_t m, int32_t n, htpw_pairs_out o,   \
                                   int32_t* dst) {                                                            \
    int32_t r, j;                                                                                             \
    if (o.seg < n || (n & 1)) return 0;                                                                       \
    for (r = 0; r + 1 < m; r += 2) {                                                                          \
      const uint32_t* y = b;                                                                                  \
      int32_t* d0 = dst + (size_t)r * (size_t)o.seg;                                                          \
      int32_t* d1 = d0 + o.seg;                                                                               \
      for (j = 0; j < n; j += 2) {                                                                            \
        const uint32_t* x = a + (size_t)r * (2 * STEPS);                                                      \
        int32_t s00, s01, s10, s11;                                                                           \
        HTPW_BLOCK_ASM(STEPS, x, y, s00, s01, s10, s11);                                                      \
        d0[j] = s00;                                                                                          \
        d0[j + 1] = s01;                                                                                      \
        d1[j] = s10;                                                                                          \
        d1[j + 1] = s11;                                                                                      \
      }                                                                                                       \
    }                                                                                                         \
    if (m & 1) mat_mult_pairs_c(a + (size_t)r * (2 * STEPS), b, 1, 2 * STEPS, n, o, dst + (size_t)r * o.seg); \
    return 1;                                                                                                 \
  }
HTPW_ROWS_ASM(8)
HTPW_ROWS_ASM(4)

/* A whole segment of SEG columns (SEG even) for two rows of a, kw = 2 * STEPS words: SEG / 2
 * blocks, each stored by two STRDs (row i at q, row i + 1 at q + SEG) and followed by one SUB that
 * takes x back to the rows' start; y moves on by SEG rows of b and q by SEG values. */
#define HTPW_SEGMENT_ASM(STEPS, SEG, x, y, q)                                                                   \
  do {                                                                                                          \
    int32_t s00, s01, s10, s11;                                                                                 \
    __asm__ volatile(".rept " #SEG " / 2\n\t" HTPW_PAIR_STEP("smuad", HTPW_NO_ACC) ".rept " #STEPS " - 1\n\t"   \
                     HTPW_PAIR_STEP("smlad", HTPW_ACC) ".endr\n\t"                                              \
                     "strd %[s10], %[s11], [%[q], #4 * " #SEG "]\n\t"                                           \
                     "strd %[s00], %[s01], [%[q]], #8\n\t"                                                      \
                     "sub %[x], %[x], #16 * " #STEPS "\n\t"                                                     \
                     ".endr"                                                                                    \
                     : [x] "+r"(x), [y] "+r"(y), [q] "+r"(q), [s00] "=&r"(s00), [s01] "=&r"(s01),               \
                       [s10] "=&r"(s10), [s11] "=&r"(s11)                                                       \
                     :                                                                                          \
                     : "r4", "r5", "r8", "r9", "r10", "r11", "memory");                                         \
  } while (0)

/* mat_mult_pairs_to when kw = 2 * STEPS, the segment is SEG and n a multiple of it (the tiled
 * band of b = 8, the hidden step of d_h = 32 or 16): pairs of rows in assembly, an odd last row
 * (its partner is padding) in C. Returns 0, having done nothing, for any other shape. */
#define HTPW_SEGMENTS_ASM(STEPS, SEG)                                                                          \
  static int mat_mult_segments_##STEPS##_##SEG(const uint32_t* a, const uint32_t* b, int32_t m, int32_t n,     \
                                                htpw_pairs_out o, int32_t* dst) {                                   \
    int32_t r, k;                                                                                              \
    if (o.seg != SEG || n % SEG != 0) return 0;                                                                \
    for (r = 0; r + 1 < m; r += 2) {                                                                           \
      const uint32_t* x = a + (size_t)r * (2 * STEPS);                                                         \
      const uint32_t* y = b;                                                                                   \
      int32_t* q = dst + (size_t)r * SEG;                                                                      \
      for (k = 0; k < n / SEG; ++k, q += o.ld - SEG) HTPW_SEGMENT_ASM(STEPS, SEG, x, y, q);                    \
    }                                                                                                          \
    if (m & 1) mat_mult_pairs_c(a + (size_t)r * (2 * STEPS), b, 1, 2 * STEPS, n, o, dst + (size_t)r * SEG);    \
    return 1;                                                                                                  \
  }
HTPW_SEGMENTS_ASM(8, 8)
HTPW_SEGMENTS_ASM(4, 8)
HTPW_SEGMENTS_ASM(1, 32)
HTPW_SEGMENTS_ASM(1, 16)

/* The shapes of the presets (d_h = 32, b = 8, d_z = 4), of d_h = 16 and of the factorized head
 * in assembly; the rest in C. */
void htpw_mat_mult_pairs_to(const uint32_t* a, const uint32_t* b, int32_t m, int32_t kw, int32_t n, htpw_pairs_out o,
                              int32_t* dst) {
  const int done = kw == 16  ? mat_mult_segments_8_8(a, b, m, n, o, dst) || mat_mult_rows_8(a, b, m, n, o, dst)
                   : kw == 8 ? mat_mult_segments_4_8(a, b, m, n, o, dst) || mat_mult_rows_4(a, b, m, n, o, dst)
                   : kw == 2 ? mat_mult_segments_1_32(a, b, m, n, o, dst) || mat_mult_segments_1_16(a, b, m, n, o, dst)
                             : 0;
  if (!done) mat_mult_pairs_c(a, b, m, kw, n, o, dst);
}
#else
void htpw_mat_mult_pairs_to(const uint32_t* a, const uint32_t* b, int32_t m, int32_t kw, int32_t n, htpw_pairs_out o,
                              int32_t* dst) {
  mat_mult_pairs_c(a, b, m, kw, n, o, dst);
}
#endif

/* Row-major dst[i * n + j]. */
void htpw_mat_mult_pairs(const uint32_t* a, const uint32_t* b, int32_t m, int32_t kw, int32_t n, int32_t* dst) {
  htpw_pairs_out o;
  o.seg = n;
  o.ld = 0;
  htpw_mat_mult_pairs_to(a, b, m, kw, n, o, dst);
}

int htpw_sign_bit(const htpw_signs* signs, int32_t channel) {
  if (signs == NULL || signs->data == NULL || channel < 0 || (channel >> 3) >= signs->bytes) return 0;
  return (signs->data[channel >> 3] >> (channel & 7)) & 1;
}

static uint32_t magnitude_of(int32_t v) { return v < 0 ? 0u - (uint32_t)v : (uint32_t)v; }

/* channel_quantize + apply_signs of one kernel row of `cols` int32 values.
 *
 * docs/synthesis.md: k = sign(a) floor((254 |a| + peak) / (2 peak)), negated if the row's sign
 * bit is set. For a < 0 that is floor((254 a - 1 + peak) / (2 peak)) (write 254 |a| + peak =
 * 2 peak j + e, 0 <= e < 2 peak: then 254 a - 1 + peak = -2 peak j + (2 peak - 1 - e)), so with
 * the offset 512 peak that keeps it positive, k + 256 = floor(N / (2 peak)) for
 * N = 254 a + 513 peak - (a < 0): one MLA, one ADD and one unsigned division per value, no
 * branch, and the low byte of k + 256 is k's. N lies in [259 peak - 1, 767 peak], inside 32
 * bits for peak <= (2^32 - 1) / 767; larger peaks take the 64-bit path. A negated row stores
 * -(k + 256), whose low byte is -k's. */
/* N of quantize_row: v * scale + offset - (v < 0), computed in uint32_t (the product wraps; the
 * sum is N, which is positive). The empty asm keeps the offset inside the MLA, so the sign term
 * is one shifted SUB. */
static uint32_t quantize_numerator(int32_t v, uint32_t scale, uint32_t offset) {
  uint32_t n = (uint32_t)v * scale + offset;
#if defined(__GNUC__)
  __asm__("" : "+r"(n));
#endif
  return n - ((uint32_t)v >> 31);
}

/* Kept out of htpw_channel_quantize_row on GCC/Clang: inlined there, the Cortex-M4 build took
 * 0.9% more instructions for the tiled 64k preset (bench/bench_synthesis_m4.py). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void quantize_row(const int32_t* acc, int32_t cols, int negate, int8_t* out) {
  uint32_t peak = 0, scale = 254u;
  int32_t i = 0;
  for (; i + 3 < cols; i += 4) { /* four at a time: one loop test per four values */
    const uint32_t a0 = magnitude_of(acc[i]), a1 = magnitude_of(acc[i + 1]);
    const uint32_t a2 = magnitude_of(acc[i + 2]), a3 = magnitude_of(acc[i + 3]);
    peak = a0 > peak ? a0 : peak;
    peak = a1 > peak ? a1 : peak;
    peak = a2 > peak ? a2 : peak;
    peak = a3 > peak ? a3 : peak;
  }
  for (; i < cols; ++i) {
    const uint32_t a = magnitude_of(acc[i]);
    peak = a > peak ? a : peak;
  }
  if (peak == 0) {
    memset(out, 0, (size_t)cols);
    return;
  }
#if defined(__GNUC__)
  __asm__("" : "+r"(scale)); /* keeps 254 in a register: one MLA, not two shifted adds */
#endif
  if (peak <= UINT32_MAX / 767u) {
    const uint32_t offset = 513u * peak, divisor = 2u * peak;
#define HTPW_K_PLUS_256(k) (int32_t)(quantize_numerator(acc[k], scale, offset) / divisor)
    if (negate) {
      for (i = 0; i + 3 < cols; i += 4) {
        out[i] = (int8_t)(256 - HTPW_K_PLUS_256(i));
        out[i + 1] = (int8_t)(256 - HTPW_K_PLUS_256(i + 1));
        out[i + 2] = (int8_t)(256 - HTPW_K_PLUS_256(i + 2));
        out[i + 3] = (int8_t)(256 - HTPW_K_PLUS_256(i + 3));
      }
      for (; i < cols; ++i) out[i] = (int8_t)(256 - HTPW_K_PLUS_256(i));
    } else {
      for (i = 0; i + 3 < cols; i += 4) {
        out[i] = (int8_t)(HTPW_K_PLUS_256(i) - 256);
        out[i + 1] = (int8_t)(HTPW_K_PLUS_256(i + 1) - 256);
        out[i + 2] = (int8_t)(HTPW_K_PLUS_256(i + 2) - 256);
        out[i + 3] = (int8_t)(HTPW_K_PLUS_256(i + 3) - 256);
      }
      for (; i < cols; ++i) out[i] = (int8_t)(HTPW_K_PLUS_256(i) - 256);
    }
#undef HTPW_K_PLUS_256
  } else {
    const uint64_t divisor = 2u * (uint64_t)peak;
    for (i = 0; i < cols; ++i) {
      const int32_t m = (int32_t)((254u * (uint64_t)magnitude_of(acc[i]) + peak) / divisor);
      const int32_t flip = -(int32_t)((acc[i] < 0) ^ (negate != 0)); /* -1: output negative */
      out[i] = (int8_t)((m ^ flip) - flip);
    }
  }
}

void htpw_channel_quantize_row(const int32_t* acc, int32_t cols, int negate, int8_t* out) {
  if (cols > 0) quantize_row(acc, cols, negate, out);
}

htpw_status htpw_validate_requant(const htpw_requant* requant) {
  if (requant == NULL) return HTPW_ERR_NULL;
  if (requant->shift < -31 || requant->shift > 30) return HTPW_ERR_SHIFT;
  if (requant->multiplier < (1 << 30)) return HTPW_ERR_MULTIPLIER;
  return HTPW_OK;
}

/* The tensor is usable and holds at least `count` elements. */
htpw_status htpw_check_tensor(const htpw_tensor* t, int64_t count) {
  if (t == NULL || t->data == NULL) return HTPW_ERR_NULL;
  if (t->bits != 8 && t->bits != 4) return HTPW_ERR_BITS;
  if (t->bytes < 0 || htpw_tensor_capacity(t) < count) return HTPW_ERR_INPUT_BYTES;
  return HTPW_OK;
}

htpw_status htpw_check_signs(const htpw_signs* signs, int32_t c_out) {
  if (signs == NULL || signs->data == NULL) return HTPW_ERR_NULL;
  if (signs->bytes < htpw_ceil_div64(c_out, 8)) return HTPW_ERR_INPUT_BYTES;
  return HTPW_OK;
}

htpw_status htpw_check_mlp_finish(const htpw_requant* requant, const htpw_signs* signs, int32_t c_out,
                                  const void* scratch, int32_t scratch_bytes, int32_t needed, const int8_t* kernel) {
  htpw_status status;
  if ((status = htpw_validate_requant(requant)) != HTPW_OK) return status;
  if ((status = htpw_check_signs(signs, c_out)) != HTPW_OK) return status;
  if (scratch == NULL || kernel == NULL) return HTPW_ERR_NULL;
  if (((uintptr_t)scratch & 3u) != 0) return HTPW_ERR_ALIGN;
  if (needed < 0) return HTPW_ERR_SIZE;
  if (scratch_bytes < needed) return HTPW_ERR_SCRATCH;
  return HTPW_OK;
}

htpw_status htpw_check_mlp(const htpw_mlp* mlp) {
  htpw_status status;
  if (mlp == NULL || mlp->b1 == NULL) return HTPW_ERR_NULL;
  if (mlp->code_dim <= 0 || mlp->code_dim > HTPW_MAX_DENSE_TERMS) return HTPW_ERR_DIMENSION;
  if (mlp->hidden_dim <= 0 || mlp->hidden_dim > HTPW_MAX_DENSE_TERMS) return HTPW_ERR_DIMENSION;
  if ((status = htpw_check_tensor(&mlp->w1, (int64_t)mlp->code_dim * mlp->hidden_dim)) != HTPW_OK) return status;
  if ((int64_t)mlp->b1_bytes < 4 * (int64_t)mlp->hidden_dim) return HTPW_ERR_INPUT_BYTES;
  return HTPW_OK;
}

/* Step 1 of the paper strategies for `count` codes, after the product (htpw_tiled.c's hidden_pairs
 * writes the same h as pair words): h = relu_int8(acc1 + b1) with
 * acc1 = z . W1 (count x d_h) and b1 decoded in bias. The dense step saturates only when the bias is added
 * (the product itself is exact in int32), as dense() of the reference does. relu_int8 clamps to
 * [0, 127], so requantize's own saturation to int32 cannot change the result and is skipped.
 * When t = 31 - n > 32 (multiplier below 0.25), floor((x M + 2^(t-1)) / 2^t) equals
 * (floor(x M / 2^32) + 2^(t-33)) >> (t - 32): the high word of one SMULL, an add and a shift. */
void htpw_hidden(int32_t d_h, const int32_t* bias, int32_t count, const htpw_requant* requant, const int32_t* acc1,
                   int8_t* h) {
  const int32_t total_shift = 31 - requant->shift, multiplier = requant->multiplier;
  int32_t t, j;
  for (t = 0; t < count; ++t) {
    const int32_t* a = acc1 + (size_t)t * (size_t)d_h;
    int8_t* out = h + (size_t)t * (size_t)d_h;
    if (total_shift > 32) {
      const int32_t high_shift = total_shift - 32, half = (int32_t)1 << (high_shift - 1);
      for (j = 0; j < d_h; ++j) {
        const int32_t high = (int32_t)(((int64_t)htpw_add_saturated(a[j], bias[j]) * (int64_t)multiplier) >> 32);
        out[j] = htpw_clamp_0_127((high + half) >> high_shift); /* |high| < 2^30, half <= 2^29 */
      }
    } else {
      const int64_t round = (int64_t)1 << (total_shift - 1);
      for (j = 0; j < d_h; ++j) {
        const int64_t v = (round + (int64_t)htpw_add_saturated(a[j], bias[j]) * (int64_t)multiplier) >> total_shift;
        out[j] = (int8_t)(v < 0 ? 0 : (v > 127 ? 127 : v));
      }
    }
  }
}

void htpw_decode_bias(const htpw_mlp* mlp, int32_t* bias) {
  int32_t j;
  for (j = 0; j < mlp->hidden_dim; ++j) bias[j] = htpw_read_i32(mlp->b1, j);
}
