/* Integer kernel synthesis of docs/synthesis.md; see htpw_synthesis.h. */
#include "htpw_synthesis.h"

#include <stddef.h>

static int32_t saturate_int32(int64_t x) {
  if (x > INT32_MAX) return INT32_MAX;
  if (x < INT32_MIN) return INT32_MIN;
  return (int32_t)x;
}

int8_t htpw_tensor_get(const htpw_tensor* t, int32_t index) {
  if (t->bits == 8) return ((const int8_t*)t->data)[index];
  {
    const uint8_t byte = ((const uint8_t*)t->data)[index >> 1];
    const int32_t nibble = (index & 1) ? (byte >> 4) : (byte & 0x0F);
    return (int8_t)(nibble > 7 ? nibble - 16 : nibble);
  }
}

/* Single-rounding fixed-point multiply (section 2): round_half_up(acc * M / 2^(31 - shift)),
 * saturated. Right shifts of negatives are arithmetic on every compiler this targets
 * (GCC, Clang, Arm Compiler); shift is validated to [-31, 30] by the callers. */
int32_t htpw_requantize(int32_t acc, int32_t multiplier, int32_t shift) {
  const int32_t total_shift = 31 - shift;
  const int64_t product = (int64_t)acc * (int64_t)multiplier;
  return saturate_int32((product + ((int64_t)1 << (total_shift - 1))) >> total_shift);
}

int8_t htpw_relu_int8(int32_t acc, int32_t multiplier, int32_t shift) {
  const int32_t v = htpw_requantize(acc, multiplier, shift);
  return (int8_t)(v < 0 ? 0 : (v > 127 ? 127 : v));
}

void htpw_dense(const int8_t* x, int32_t n_in, const htpw_tensor* w, int32_t w_offset_rows,
                const int32_t* bias, int32_t n_out, int32_t* acc) {
  int32_t j, i;
  for (j = 0; j < n_out; ++j) {
    int64_t sum = bias ? bias[j] : 0;
    for (i = 0; i < n_in; ++i) {
      sum += (int64_t)x[i] * htpw_tensor_get(w, (w_offset_rows + i) * n_out + j);
    }
    acc[j] = saturate_int32(sum);
  }
}

int htpw_sign_bit(const uint8_t* packed_signs, int32_t channel) {
  return (packed_signs[channel >> 3] >> (channel & 7)) & 1;
}

void htpw_channel_quantize_row(const int32_t* acc, int32_t cols, int negate, int8_t* out) {
  int64_t peak = 0;
  int32_t i;
  for (i = 0; i < cols; ++i) {
    const int64_t a = acc[i] < 0 ? -(int64_t)acc[i] : (int64_t)acc[i];
    if (a > peak) peak = a;
  }
  for (i = 0; i < cols; ++i) {
    int32_t q = 0;
    if (peak > 0) {
      const int64_t a = acc[i] < 0 ? -(int64_t)acc[i] : (int64_t)acc[i];
      const int32_t magnitude = (int32_t)((2 * 127 * a + peak) / (2 * peak));
      q = acc[i] < 0 ? -magnitude : magnitude;
    }
    out[i] = (int8_t)(negate ? -q : q);
  }
}

htpw_status htpw_validate_requant(const htpw_requant* requant) {
  if (requant == NULL) return HTPW_ERR_NULL;
  if (requant->shift < -31 || requant->shift > 30) return HTPW_ERR_SHIFT;
  if (requant->multiplier < (1 << 30)) return HTPW_ERR_MULTIPLIER;
  return HTPW_OK;
}

static htpw_status validate_tensor(const htpw_tensor* t) {
  if (t == NULL || t->data == NULL) return HTPW_ERR_NULL;
  if (t->bits != 8 && t->bits != 4) return HTPW_ERR_BITS;
  return HTPW_OK;
}

static htpw_status validate_mlp(const htpw_mlp* mlp) {
  htpw_status status;
  if (mlp == NULL || mlp->b1 == NULL) return HTPW_ERR_NULL;
  if ((status = validate_tensor(&mlp->w1)) != HTPW_OK) return status;
  if (mlp->code_dim <= 0 || mlp->code_dim > HTPW_MAX_DENSE_TERMS) return HTPW_ERR_DIMENSION;
  if (mlp->hidden_dim <= 0 || mlp->hidden_dim > HTPW_MAX_DENSE_TERMS) return HTPW_ERR_DIMENSION;
  return HTPW_OK;
}

/* Step 1 of both strategies for code number `index` of `codes`. */
static void hidden(const htpw_mlp* mlp, const htpw_tensor* codes, int32_t index,
                   const htpw_requant* requant, int8_t* z, int32_t* acc1, int8_t* h) {
  int32_t i;
  for (i = 0; i < mlp->code_dim; ++i) z[i] = htpw_tensor_get(codes, index * mlp->code_dim + i);
  htpw_dense(z, mlp->code_dim, &mlp->w1, 0, mlp->b1, mlp->hidden_dim, acc1);
  for (i = 0; i < mlp->hidden_dim; ++i) h[i] = htpw_relu_int8(acc1[i], requant->multiplier, requant->shift);
}

static int32_t ceil_div(int32_t a, int32_t b) { return (a + b - 1) / b; }

int32_t htpw_tiled_scratch_bytes(const htpw_mlp* mlp, int32_t tile, int32_t c_in) {
  const int32_t cols = ceil_div(c_in, tile);
  return (int32_t)sizeof(int32_t) * (tile * cols * tile + mlp->hidden_dim + tile * tile) +
         mlp->code_dim + mlp->hidden_dim;
}

htpw_status htpw_tiled_synthesize(const htpw_mlp* mlp, const htpw_tensor* w2, int32_t tile,
                                  const htpw_tensor* codes, const htpw_requant* requant,
                                  const uint8_t* packed_signs, int32_t c_out, int32_t c_in,
                                  void* scratch, int32_t scratch_bytes, int8_t* kernel) {
  htpw_status status;
  int32_t rows, cols, band_cols, to, ti, r, c;
  int32_t *band, *acc1, *values;
  int8_t *z, *h;
  if ((status = validate_mlp(mlp)) != HTPW_OK) return status;
  if ((status = validate_tensor(w2)) != HTPW_OK) return status;
  if ((status = validate_tensor(codes)) != HTPW_OK) return status;
  if ((status = htpw_validate_requant(requant)) != HTPW_OK) return status;
  if (packed_signs == NULL || scratch == NULL || kernel == NULL) return HTPW_ERR_NULL;
  if (tile <= 0 || tile > 255 || c_out <= 0 || c_in <= 0) return HTPW_ERR_DIMENSION;
  if (scratch_bytes < htpw_tiled_scratch_bytes(mlp, tile, c_in)) return HTPW_ERR_SCRATCH;
  rows = ceil_div(c_out, tile);
  cols = ceil_div(c_in, tile);
  band_cols = cols * tile;
  band = (int32_t*)scratch;
  acc1 = band + tile * band_cols;
  values = acc1 + mlp->hidden_dim;
  z = (int8_t*)(values + tile * tile);
  h = z + mlp->code_dim;
  for (to = 0; to < rows; ++to) {
    for (ti = 0; ti < cols; ++ti) {
      hidden(mlp, codes, to * cols + ti, requant, z, acc1, h);
      htpw_dense(h, mlp->hidden_dim, w2, 0, NULL, tile * tile, values);
      for (r = 0; r < tile; ++r) {
        for (c = 0; c < tile; ++c) band[r * band_cols + ti * tile + c] = values[r * tile + c];
      }
    }
    for (r = 0; r < tile && to * tile + r < c_out; ++r) {
      const int32_t o = to * tile + r;
      htpw_channel_quantize_row(band + r * band_cols, c_in, htpw_sign_bit(packed_signs, o), kernel + o * c_in);
    }
  }
  return HTPW_OK;
}

int32_t htpw_paper_scratch_bytes(const htpw_mlp* mlp, int32_t c_in) {
  return (int32_t)sizeof(int32_t) * (c_in + mlp->hidden_dim) + mlp->code_dim + mlp->hidden_dim;
}

htpw_status htpw_paper_synthesize(const htpw_mlp* mlp, htpw_head_kind kind, const htpw_tensor* head,
                                  const htpw_tensor* b_shared, int32_t b_cols, const htpw_tensor* code,
                                  const htpw_requant* requant, const uint8_t* packed_signs,
                                  int32_t c_out, int32_t c_in, void* scratch, int32_t scratch_bytes,
                                  int8_t* kernel) {
  htpw_status status;
  int32_t o, i, k;
  int32_t *row, *acc1;
  int8_t *z, *h;
  const int32_t d_h = mlp ? mlp->hidden_dim : 0;
  if ((status = validate_mlp(mlp)) != HTPW_OK) return status;
  if ((status = validate_tensor(head)) != HTPW_OK) return status;
  if ((status = validate_tensor(code)) != HTPW_OK) return status;
  if ((status = htpw_validate_requant(requant)) != HTPW_OK) return status;
  if (kind != HTPW_HEAD_DENSE && kind != HTPW_HEAD_FACTORIZED) return HTPW_ERR_HEAD;
  if (kind == HTPW_HEAD_FACTORIZED) {
    if ((status = validate_tensor(b_shared)) != HTPW_OK) return status;
    if (b_cols < c_in || d_h > HTPW_MAX_FACTOR_RANK) return HTPW_ERR_DIMENSION;
  }
  if (packed_signs == NULL || scratch == NULL || kernel == NULL) return HTPW_ERR_NULL;
  if (c_out <= 0 || c_in <= 0) return HTPW_ERR_DIMENSION;
  if (scratch_bytes < htpw_paper_scratch_bytes(mlp, c_in)) return HTPW_ERR_SCRATCH;
  row = (int32_t*)scratch;
  acc1 = row + c_in;
  z = (int8_t*)(acc1 + d_h);
  h = z + mlp->code_dim;
  hidden(mlp, code, 0, requant, z, acc1, h);
  for (o = 0; o < c_out; ++o) {
    for (i = 0; i < c_in; ++i) {
      int64_t sum = 0;
      for (k = 0; k < d_h; ++k) {
        if (kind == HTPW_HEAD_DENSE) {
          sum += (int64_t)h[k] * htpw_tensor_get(head, k * c_out * c_in + o * c_in + i);
        } else {
          const int64_t scaled = (int64_t)htpw_tensor_get(head, o * d_h + k) * h[k];
          sum += scaled * htpw_tensor_get(b_shared, k * b_cols + i);
        }
      }
      row[i] = saturate_int32(sum);
    }
    htpw_channel_quantize_row(row, c_in, htpw_sign_bit(packed_signs, o), kernel + o * c_in);
  }
  return HTPW_OK;
}
