/* The paper strategies, dense and factorized head (docs/synthesis.md section 3); see htpw_paper.h.
 *
 * Step 1 (one code) is htpw_mat_mult_s32 (CMSIS-NN's in TFLM's CMSIS-NN builds) and htpw_hidden;
 * the dense head is a plain loop over h's nonzero values, the factorized head a pair product of
 * A_l[o, k] h[k] (two rows at a time) with B transposed (htpw_synthesis.c's SMLAD blocks). This
 * file holds the scratch plan, the loops and the two strategies' records for the op.
 */
#include "htpw_paper.h"

#include <stddef.h>
#include <string.h>

#include "htpw_shared.h"
#include "htpw_strategy.h"

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
  l.z = htpw_align4(l.w1t + d_h * d_z);                   /* int8 [d_z] */
  l.h = htpw_align4(l.z + d_z);                           /* int8 [d_h] */
  l.head_row = htpw_align4(l.h + d_h);                    /* int8: dense [c_in] head slice; factorized [d_h] A row */
  l.total = htpw_align4(l.head_row + (factorized ? d_h : (int64_t)c_in));
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
    sp[2 * i + slot] = htpw_pair(s0, s1);
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
  if ((status = htpw_check_mlp(mlp)) != HTPW_OK) return status;
  if (kind != HTPW_HEAD_DENSE && kind != HTPW_HEAD_FACTORIZED) return HTPW_ERR_HEAD;
  if (c_out <= 0 || c_in <= 0) return HTPW_ERR_DIMENSION;
  d_h = mlp->hidden_dim;
  if (kind == HTPW_HEAD_DENSE) {
    if ((status = htpw_check_tensor(head, (int64_t)d_h * c_out * c_in)) != HTPW_OK) return status;
  } else {
    if (b_cols < c_in || d_h > HTPW_MAX_FACTOR_RANK) return HTPW_ERR_DIMENSION;
    if ((status = htpw_check_tensor(head, (int64_t)c_out * d_h)) != HTPW_OK) return status;
    if ((status = htpw_check_tensor(b_shared, (int64_t)d_h * b_cols)) != HTPW_OK) return status;
  }
  if ((status = htpw_check_tensor(code, mlp->code_dim)) != HTPW_OK) return status;
  needed = htpw_paper_scratch_bytes(mlp, kind, c_in);
  status = htpw_check_mlp_finish(requant, signs, c_out, scratch, scratch_bytes, needed, kernel);
  if (status != HTPW_OK) return status;
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
  htpw_decode_bias(mlp, acc1 + d_h);
  htpw_mat_mult_s32(z, w1t, 1, mlp->code_dim, d_h, acc1);
  htpw_hidden(d_h, acc1 + d_h, 1, requant, acc1, h);
  if (kind == HTPW_HEAD_DENSE) {
    for (o = 0; o < c_out; ++o) {
      dense_head_row(head, h, d_h, (int64_t)c_out * c_in, o, c_in, head_row, row);
      htpw_channel_quantize_row(row, c_in, htpw_sign_bit(signs, o), kernel + (size_t)o * (size_t)c_in);
    }
    return HTPW_OK;
  }
  htpw_transpose_pairs(b_shared, d_h, b_cols, c_in, bp);
  for (o = 0; o < c_out; o += 2) {
    const int32_t n_rows = o + 1 < c_out ? 2 : 1, kw = (d_h + 1) / 2;
    int32_t r;
    for (r = 0; r < 2; ++r) {
      if (r < n_rows) (void)htpw_tensor_unpack(head, (int64_t)(o + r) * d_h, d_h, head_row);
      factorized_scaled_row(head_row, h, d_h, r < n_rows, sp, r);
    }
    htpw_mat_mult_pairs(sp, bp, n_rows, kw, c_in, row);
    for (r = 0; r < n_rows; ++r) {
      htpw_channel_quantize_row(row + (size_t)r * (size_t)c_in, c_in, htpw_sign_bit(signs, o + r),
                                kernel + (size_t)(o + r) * (size_t)c_in);
    }
  }
  return HTPW_OK;
}

/* ---- the op's records (htpw_strategy.h) ----------------------------------------------- */

/* codes [1, d_z], w1, b1, head (dense [d_h, c_out * c_in], factorized [c_out, d_h]),
 * b_shared [d_h, >= c_in] (factorized), requant, signs. */
static htpw_input_spec input_spec(const htpw_options* o, int32_t index, htpw_head_kind kind) {
  const int factorized = kind == HTPW_HEAD_FACTORIZED;
  const int32_t codes = factorized ? HTPW_PAPER_FACTORIZED_INPUT_CODES : HTPW_PAPER_DENSE_INPUT_CODES;
  const int32_t head = factorized ? HTPW_PAPER_FACTORIZED_INPUT_HEAD : HTPW_PAPER_DENSE_INPUT_HEAD;
  const int32_t requant = factorized ? HTPW_PAPER_FACTORIZED_INPUT_REQUANT : HTPW_PAPER_DENSE_INPUT_REQUANT;
  htpw_input_spec s;
  if (index == codes) return htpw_spec(htpw_code_type(o), 2, 1, o->code_dim);
  if (index == head) {
    return factorized ? htpw_spec(htpw_weight_type(o), 2, o->c_out, o->hidden_dim)
                      : htpw_spec(htpw_weight_type(o), 2, o->hidden_dim, (int64_t)o->c_out * o->c_in);
  }
  if (factorized && index == HTPW_PAPER_FACTORIZED_INPUT_B_SHARED) {
    s = htpw_spec(htpw_weight_type(o), 2, o->hidden_dim, o->c_in);
    s.last_at_least = 1;
    return s;
  }
  if (index == requant) return htpw_requant_spec();
  if (index > requant) return htpw_signs_spec(o);
  return htpw_mlp_input_spec(o, index);
}

static htpw_input_spec dense_input_spec(const htpw_options* o, int32_t index) {
  return input_spec(o, index, HTPW_HEAD_DENSE);
}

static htpw_input_spec factorized_input_spec(const htpw_options* o, int32_t index) {
  return input_spec(o, index, HTPW_HEAD_FACTORIZED);
}

/* The factorized head sums d_h products per value (the bound of htpw_synthesis.h). */
static htpw_status factorized_check_options(const htpw_options* o) {
  return o->hidden_dim > HTPW_MAX_FACTOR_RANK ? HTPW_ERR_OPTION_HIDDEN_DIM : HTPW_OK;
}

static int32_t dense_scratch_bytes(const htpw_options* o) {
  const htpw_mlp mlp = htpw_mlp_of(o, NULL);
  return htpw_paper_scratch_bytes(&mlp, HTPW_HEAD_DENSE, o->c_in);
}

static int32_t factorized_scratch_bytes(const htpw_options* o) {
  const htpw_mlp mlp = htpw_mlp_of(o, NULL);
  return htpw_paper_scratch_bytes(&mlp, HTPW_HEAD_FACTORIZED, o->c_in);
}

static htpw_status dense_synthesize(const htpw_options* o, const htpw_input* inputs, const htpw_requant* requant,
                                    const htpw_signs* signs, void* scratch, int32_t scratch_bytes, int8_t* kernel) {
  const htpw_mlp mlp = htpw_mlp_of(o, inputs);
  const htpw_tensor codes = htpw_tensor_of(&inputs[HTPW_PAPER_DENSE_INPUT_CODES]);
  const htpw_tensor head = htpw_tensor_of(&inputs[HTPW_PAPER_DENSE_INPUT_HEAD]);
  return htpw_paper_synthesize(&mlp, HTPW_HEAD_DENSE, &head, NULL, 0, &codes, requant, signs, o->c_out, o->c_in,
                               scratch, scratch_bytes, kernel);
}

static htpw_status factorized_synthesize(const htpw_options* o, const htpw_input* inputs,
                                         const htpw_requant* requant, const htpw_signs* signs, void* scratch,
                                         int32_t scratch_bytes, int8_t* kernel) {
  const htpw_input* b_input = &inputs[HTPW_PAPER_FACTORIZED_INPUT_B_SHARED];
  const htpw_mlp mlp = htpw_mlp_of(o, inputs);
  const htpw_tensor codes = htpw_tensor_of(&inputs[HTPW_PAPER_FACTORIZED_INPUT_CODES]);
  const htpw_tensor head = htpw_tensor_of(&inputs[HTPW_PAPER_FACTORIZED_INPUT_HEAD]);
  const htpw_tensor b_shared = htpw_tensor_of(b_input);
  return htpw_paper_synthesize(&mlp, HTPW_HEAD_FACTORIZED, &head, &b_shared, b_input->dims[1], &codes, requant,
                               signs, o->c_out, o->c_in, scratch, scratch_bytes, kernel);
}

const htpw_strategy htpw_strategy_paper_dense = {
    HTPW_STRATEGY_PAPER_DENSE, HTPW_PAPER_DENSE_INPUTS, HTPW_PAPER_DENSE_INPUT_REQUANT, 0,
    NULL, dense_input_spec, dense_scratch_bytes, dense_synthesize,
};

const htpw_strategy htpw_strategy_paper_factorized = {
    HTPW_STRATEGY_PAPER_FACTORIZED, HTPW_PAPER_FACTORIZED_INPUTS, HTPW_PAPER_FACTORIZED_INPUT_REQUANT, 0,
    factorized_check_options, factorized_input_spec, factorized_scratch_bytes, factorized_synthesize,
};
