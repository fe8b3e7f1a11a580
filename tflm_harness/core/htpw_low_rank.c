/* The low_rank strategy's synthesis; see htpw_low_rank.h.
 *
 * V is unpacked and transposed once into scratch (c_in rows of rank int8), then each output row
 * unpacks its rank values of U, takes c_in dot products with htpw_mat_mult_s32 (CMSIS-NN's where
 * the core's build uses it) and is quantized in place into the kernel. Bounds: the extents of U,
 * V and the sign bits are checked, in 64-bit arithmetic, before any loop reads them.
 */
#include "htpw_low_rank.h"

#include <stddef.h>

#include "htpw_shared.h"
#include "htpw_strategy.h"

/* Scratch layout: V transposed (c_in * rank int8), U's row (rank int8), the row's accumulators
 * (c_in int32), each part 4-byte aligned. */
typedef struct {
  int64_t v_t, u_row, acc, total;
} low_rank_layout;

static low_rank_layout plan(int32_t rank, int32_t c_in) {
  low_rank_layout l;
  l.v_t = 0;
  l.u_row = htpw_align4((int64_t)c_in * rank);
  l.acc = l.u_row + htpw_align4(rank);
  l.total = l.acc + 4 * (int64_t)c_in;
  return l;
}

int32_t htpw_low_rank_scratch_bytes(int32_t rank, int32_t c_in) {
  low_rank_layout l;
  if (rank <= 0 || rank > HTPW_MAX_DENSE_TERMS || c_in <= 0) return -1;
  l = plan(rank, c_in);
  return l.total > INT32_MAX ? -1 : (int32_t)l.total;
}

htpw_status htpw_low_rank_synthesize(const htpw_tensor* u, const htpw_tensor* v, int32_t rank,
                                     const htpw_signs* signs, int32_t c_out, int32_t c_in, void* scratch,
                                     int32_t scratch_bytes, int8_t* kernel) {
  low_rank_layout l;
  int8_t *v_t, *u_row;
  int32_t* acc;
  int32_t o, needed;
  htpw_status status;
  if (u == NULL || v == NULL || signs == NULL || signs->data == NULL || scratch == NULL || kernel == NULL) {
    return HTPW_ERR_NULL;
  }
  if (u->data == NULL || v->data == NULL) return HTPW_ERR_NULL;
  if ((u->bits != 4 && u->bits != 8) || (v->bits != 4 && v->bits != 8)) return HTPW_ERR_BITS;
  if (c_out <= 0 || c_in <= 0 || c_out > HTPW_MAX_DENSE_TERMS || c_in > HTPW_MAX_DENSE_TERMS) {
    return HTPW_ERR_DIMENSION;
  }
  needed = htpw_low_rank_scratch_bytes(rank, c_in);
  if (needed < 0) return HTPW_ERR_DIMENSION;
  if (((uintptr_t)scratch & 3u) != 0) return HTPW_ERR_ALIGN;
  if (scratch_bytes < needed) return HTPW_ERR_SCRATCH;
  if ((int64_t)c_out * rank > htpw_tensor_capacity(u)) return HTPW_ERR_INPUT_BYTES;
  if ((int64_t)signs->bytes * 8 < c_out) return HTPW_ERR_INPUT_BYTES;
  l = plan(rank, c_in);
  v_t = (int8_t*)scratch + l.v_t;
  u_row = (int8_t*)scratch + l.u_row;
  acc = (int32_t*)((int8_t*)scratch + l.acc);
  if ((status = htpw_tensor_unpack_transposed(v, rank, c_in, c_in, v_t)) != HTPW_OK) return status;
  for (o = 0; o < c_out; ++o) {
    if ((status = htpw_tensor_unpack(u, (int64_t)o * rank, rank, u_row)) != HTPW_OK) return status;
    htpw_mat_mult_s32(u_row, v_t, 1, rank, c_in, acc);
    htpw_channel_quantize_row(acc, c_in, htpw_sign_bit(signs, o), kernel + (size_t)o * (size_t)c_in);
  }
  return HTPW_OK;
}

/* ---- the op's record (htpw_strategy.h) ------------------------------------------------ */

/* Both dims are the rank r (docs/format.md section 3). */
static htpw_status check_options(const htpw_options* o) {
  return o->code_dim != o->hidden_dim ? HTPW_ERR_OPTION_CODE_DIM : HTPW_OK;
}

/* u [c_out, r] at code_bits, v [r, c_in] at weight_bits, signs. */
static htpw_input_spec input_spec(const htpw_options* o, int32_t index) {
  if (index == HTPW_LOW_RANK_INPUT_U) return htpw_spec(htpw_code_type(o), 2, o->c_out, o->hidden_dim);
  if (index == HTPW_LOW_RANK_INPUT_V) return htpw_spec(htpw_weight_type(o), 2, o->hidden_dim, o->c_in);
  return htpw_signs_spec(o);
}

static int32_t scratch_bytes(const htpw_options* o) { return htpw_low_rank_scratch_bytes(o->hidden_dim, o->c_in); }

static htpw_status synthesize(const htpw_options* o, const htpw_input* inputs, const htpw_requant* requant,
                              const htpw_signs* signs, void* scratch, int32_t scratch_bytes, int8_t* kernel) {
  const htpw_tensor u = htpw_tensor_of(&inputs[HTPW_LOW_RANK_INPUT_U]);
  const htpw_tensor v = htpw_tensor_of(&inputs[HTPW_LOW_RANK_INPUT_V]);
  (void)requant; /* low_rank has no micro-MLP */
  return htpw_low_rank_synthesize(&u, &v, o->hidden_dim, signs, o->c_out, o->c_in, scratch, scratch_bytes, kernel);
}

const htpw_strategy htpw_strategy_low_rank = {
    HTPW_STRATEGY_LOW_RANK, HTPW_LOW_RANK_INPUTS, -1, 0, check_options, input_spec, scratch_bytes, synthesize,
};
