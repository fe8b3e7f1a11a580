/* Integer kernel synthesis of docs/synthesis.md; see htpw_synthesis.h.
 *
 * Bounds: every function that reads a tensor first checks, in 64-bit arithmetic, that the last
 * element it will read lies inside the tensor's `bytes`; the loops after that check index
 * within those extents only. Weights are unpacked (int4 -> int8) and transposed once per call
 * into scratch, so the products run over contiguous int8 rows: CMSIS-NN's s8 x s8 -> s32
 * matrix product on Cortex-M (HTPW_USE_CMSIS_NN), plain C elsewhere, with the same integers.
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

int htpw_sign_bit(const htpw_signs* signs, int32_t channel) {
  if (signs == NULL || signs->data == NULL || channel < 0 || (channel >> 3) >= signs->bytes) return 0;
  return (signs->data[channel >> 3] >> (channel & 7)) & 1;
}

/* round_half_away(127 * a / peak) = floor((254 a + peak) / (2 peak)) for 0 <= a <= peak. When
 * peak < 2^24 the numerator fits in 32 bits, so a 32-bit division (one UDIV on Cortex-M4)
 * gives the same quotient as the 64-bit one of docs/synthesis.md. */
void htpw_channel_quantize_row(const int32_t* acc, int32_t cols, int negate, int8_t* out) {
  uint32_t peak = 0;
  int32_t i;
  for (i = 0; i < cols; ++i) {
    const uint32_t a = acc[i] < 0 ? 0u - (uint32_t)acc[i] : (uint32_t)acc[i];
    if (a > peak) peak = a;
  }
  if (peak == 0) {
    memset(out, 0, (size_t)cols);
    return;
  }
  for (i = 0; i < cols; ++i) {
    const uint32_t a = acc[i] < 0 ? 0u - (uint32_t)acc[i] : (uint32_t)acc[i];
    const int32_t magnitude = peak < (1u << 24)
                                  ? (int32_t)((254u * a + peak) / (2u * peak))
                                  : (int32_t)((254u * (uint64_t)a + peak) / (2u * (uint64_t)peak));
    out[i] = (int8_t)(((acc[i] < 0) != (negate != 0)) ? -magnitude : magnitude);
  }
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

/* Step 1 of both strategies: h = relu_int8(z . W1 + b1) with W1 transposed in w1t. The bias is
 * added in 64 bits and saturated, as dense() of the reference does. */
static void hidden(const htpw_mlp* mlp, const int8_t* w1t, const int8_t* z, const htpw_requant* requant,
                   int32_t* acc1, int8_t* h) {
  int32_t j;
  htpw_mat_mult_s32(z, w1t, 1, mlp->code_dim, mlp->hidden_dim, acc1);
  for (j = 0; j < mlp->hidden_dim; ++j) {
    const int32_t acc = saturate_int32((int64_t)acc1[j] + htpw_read_i32(mlp->b1, j));
    h[j] = htpw_relu_int8(acc, requant->multiplier, requant->shift);
  }
}

/* Scratch of the tiled strategy, as byte offsets (int32 parts first, each 4-aligned). */
typedef struct {
  int64_t band, row, acc1, w1t, w2t, z, h, total;
} tiled_layout;

static tiled_layout tiled_plan(const htpw_mlp* mlp, int32_t tile, int32_t c_in) {
  tiled_layout l;
  const int64_t cols = ceil_div64(c_in, tile), tt = (int64_t)tile * tile;
  const int64_t d_z = mlp->code_dim, d_h = mlp->hidden_dim;
  l.band = 0;                                /* int32 [cols][b*b], the band of one tile row */
  l.row = l.band + 4 * cols * tt;            /* int32 [c_in], one kernel row of the band */
  l.acc1 = l.row + 4 * (int64_t)c_in;        /* int32 [d_h] */
  l.w1t = l.acc1 + 4 * d_h;                  /* int8 [d_h][d_z] */
  l.w2t = align4(l.w1t + d_h * d_z);         /* int8 [b*b][d_h] */
  l.z = align4(l.w2t + tt * d_h);            /* int8 [d_z] */
  l.h = align4(l.z + d_z);                   /* int8 [cols][d_h] */
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
  int32_t rows, cols, tt, d_h, to, ti, r, c;
  int32_t needed;
  tiled_layout l;
  uint8_t* base;
  int32_t *band, *row, *acc1;
  int8_t *w1t, *w2t, *z, *h;
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
  row = (int32_t*)(void*)(base + l.row);
  acc1 = (int32_t*)(void*)(base + l.acc1);
  w1t = (int8_t*)(base + l.w1t);
  w2t = (int8_t*)(base + l.w2t);
  z = (int8_t*)(base + l.z);
  h = (int8_t*)(base + l.h);
  /* Extents were checked above; these cannot fail. */
  (void)htpw_tensor_unpack_transposed(&mlp->w1, mlp->code_dim, d_h, d_h, w1t);
  (void)htpw_tensor_unpack_transposed(w2, d_h, tt, tt, w2t);
  for (to = 0; to < rows; ++to) {
    for (ti = 0; ti < cols; ++ti) {
      const int64_t tile_index = (int64_t)to * cols + ti;
      (void)htpw_tensor_unpack(codes, tile_index * mlp->code_dim, mlp->code_dim, z);
      hidden(mlp, w1t, z, requant, acc1, h + (size_t)ti * (size_t)d_h);
    }
    /* v_t = h_t . W2 for the whole tile row at once: band[ti][r * b + c]. */
    htpw_mat_mult_s32(h, w2t, cols, d_h, tt, band);
    for (r = 0; r < tile && (int64_t)to * tile + r < c_out; ++r) {
      const int32_t o = to * tile + r;
      for (ti = 0; ti < cols; ++ti) {
        const int32_t* v = band + (size_t)ti * (size_t)tt + (size_t)r * (size_t)tile;
        const int32_t first = ti * tile;
        for (c = 0; c < tile && first + c < c_in; ++c) row[first + c] = v[c];
      }
      htpw_channel_quantize_row(row, c_in, htpw_sign_bit(signs, o), kernel + (size_t)o * (size_t)c_in);
    }
  }
  return HTPW_OK;
}

/* Scratch of the paper strategy, as byte offsets. */
typedef struct {
  int64_t row, acc1, scaled, w1t, z, h, head_row, b_rows, total;
} paper_layout;

static paper_layout paper_plan(const htpw_mlp* mlp, htpw_head_kind kind, int32_t c_in) {
  paper_layout l;
  const int64_t d_z = mlp->code_dim, d_h = mlp->hidden_dim;
  const int factorized = kind == HTPW_HEAD_FACTORIZED;
  l.row = 0;                                      /* int32 [c_in] */
  l.acc1 = l.row + 4 * (int64_t)c_in;             /* int32 [d_h] */
  l.scaled = l.acc1 + 4 * d_h;                    /* int32 [d_h]: A[o, k] * h[k] (factorized) */
  l.w1t = l.scaled + (factorized ? 4 * d_h : 0);  /* int8 [d_h][d_z] */
  l.z = align4(l.w1t + d_h * d_z);                /* int8 [d_z] */
  l.h = align4(l.z + d_z);                        /* int8 [d_h] */
  l.head_row = align4(l.h + d_h);                 /* int8: dense [c_in] head slice; factorized [d_h] A row */
  l.b_rows = align4(l.head_row + (factorized ? d_h : (int64_t)c_in)); /* int8 [d_h][c_in]: B, factorized */
  l.total = align4(l.b_rows + (factorized ? d_h * c_in : 0));
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

/* acc[o, i] = sum_k (A[o, k] * h[k]) * B[k, i] for one output row (head="factorized"). */
static void factorized_head_row(const int8_t* a_row, const int8_t* h, int32_t d_h, const int8_t* b,
                                size_t b_stride, int32_t c_in, int32_t* scaled, int32_t* row) {
  int32_t k, i;
  for (k = 0; k < d_h; ++k) scaled[k] = (int32_t)a_row[k] * h[k];
  memset(row, 0, (size_t)c_in * sizeof(int32_t));
  for (k = 0; k < d_h; ++k) {
    const int32_t s = scaled[k];
    const int8_t* bk = b + (size_t)k * b_stride;
    if (s == 0) continue;
    for (i = 0; i < c_in; ++i) row[i] += s * bk[i];
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
  int32_t *row, *acc1, *scaled;
  int8_t *w1t, *z, *h, *head_row, *b_rows;
  const int8_t* b = NULL;
  size_t b_stride = 0;
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
  scaled = (int32_t*)(void*)(base + l.scaled);
  w1t = (int8_t*)(base + l.w1t);
  z = (int8_t*)(base + l.z);
  h = (int8_t*)(base + l.h);
  head_row = (int8_t*)(base + l.head_row);
  b_rows = (int8_t*)(base + l.b_rows);
  /* Extents were checked above; these cannot fail. */
  (void)htpw_tensor_unpack_transposed(&mlp->w1, mlp->code_dim, d_h, d_h, w1t);
  (void)htpw_tensor_unpack(code, 0, mlp->code_dim, z);
  hidden(mlp, w1t, z, requant, acc1, h);
  if (kind == HTPW_HEAD_FACTORIZED) {
    if (b_shared->bits == 8) {
      b = (const int8_t*)b_shared->data;
      b_stride = (size_t)b_cols;
    } else {
      int32_t k;
      for (k = 0; k < d_h; ++k) {
        (void)htpw_tensor_unpack(b_shared, (int64_t)k * b_cols, c_in, b_rows + (size_t)k * (size_t)c_in);
      }
      b = b_rows;
      b_stride = (size_t)c_in;
    }
  }
  for (o = 0; o < c_out; ++o) {
    if (kind == HTPW_HEAD_DENSE) {
      dense_head_row(head, h, d_h, (int64_t)c_out * c_in, o, c_in, head_row, row);
    } else {
      (void)htpw_tensor_unpack(head, (int64_t)o * d_h, d_h, head_row);
      factorized_head_row(head_row, h, d_h, b, b_stride, c_in, scaled, row);
    }
    htpw_channel_quantize_row(row, c_in, htpw_sign_bit(signs, o), kernel + (size_t)o * (size_t)c_in);
  }
  return HTPW_OK;
}
