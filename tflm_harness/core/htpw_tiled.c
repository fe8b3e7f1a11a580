/* The tiled strategy (docs/synthesis.md section 3); see htpw_tiled.h.
 *
 * One tile row of the kernel at a time: the codes of its tiles through the micro-MLP (a pair
 * product, codes x W1, then htpw_hidden_pairs), the tile values h . W2 (a pair product whose
 * output lands in a band where each kernel row is contiguous), then each kernel row quantized.
 * The products are htpw_synthesis.c's SMLAD blocks (htpw_shared.h); this file holds the scratch
 * plan, the loop and the strategy's record for the op.
 */
#include "htpw_tiled.h"

#include <stddef.h>

#include "htpw_shared.h"
#include "htpw_strategy.h"

/* bench/bench_synthesis_m4.py builds one profiling variant with HTPW_BENCH_STEPS: the tiled
 * strategy then reports where each step ends, and the bench firmware counts instructions per
 * step. Every other build compiles the marks to nothing. */
#if defined(HTPW_BENCH_STEPS)
void htpw_bench_step(int step);
#define HTPW_STEP_DONE(step) htpw_bench_step(step)
#else
#define HTPW_STEP_DONE(step) ((void)0)
#endif

/* Scratch of the tiled strategy, as byte offsets (int32 parts first, each 4-aligned). The band
 * holds one tile row: first the hidden accumulators of its tiles (cols x d_h), then, once those
 * are turned into h, the tile values (b rows of cols * b); so it is sized for the larger of the two.
 * Step 1 runs as a pair product too: the codes of the band (zp) times W1's columns (w1p). */
typedef struct {
  int64_t band, bias, w2p, hp, w1p, zp, z, total;
} tiled_layout;

static tiled_layout tiled_plan(const htpw_mlp* mlp, int32_t tile, int32_t c_in) {
  tiled_layout l;
  const int64_t cols = htpw_ceil_div64(c_in, tile), tt = (int64_t)tile * tile;
  const int64_t d_z = mlp->code_dim, d_h = mlp->hidden_dim, kw = (d_h + 1) / 2, kz = (d_z + 1) / 2;
  l.band = 0;                                         /* int32 [cols][max(b*b, d_h)] */
  l.bias = l.band + 4 * cols * (tt > d_h ? tt : d_h); /* int32 [d_h] */
  l.w2p = l.bias + 4 * d_h;                  /* pair words, W2 transposed: [b*b rounded up to even][kw] */
  l.hp = l.w2p + 4 * (tt + (tt & 1)) * kw;   /* pair words, h of the band: [cols rounded up to even][kw] */
  l.w1p = l.hp + 4 * (cols + (cols & 1)) * kw; /* pair words, W1 transposed: [d_h rounded up to even][kz] */
  l.zp = l.w1p + 4 * (d_h + (d_h & 1)) * kz; /* pair words, codes of the band: [cols rounded up to even][kz] */
  l.z = l.zp + 4 * (cols + (cols & 1)) * kz; /* int8 [cols][d_z] */
  l.total = htpw_align4(l.z + cols * d_z);
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
  uint32_t *w2p, *hp, *w1p, *zp;
  int8_t* z;
  int32_t kw, kz;
  htpw_pairs_out out;
  if ((status = htpw_check_mlp(mlp)) != HTPW_OK) return status;
  if (tile <= 0 || tile > HTPW_MAX_TILE_SIZE || c_out <= 0 || c_in <= 0) return HTPW_ERR_DIMENSION;
  d_h = mlp->hidden_dim;
  rows = (int32_t)htpw_ceil_div64(c_out, tile);
  cols = (int32_t)htpw_ceil_div64(c_in, tile);
  tt = tile * tile;
  if ((status = htpw_check_tensor(w2, (int64_t)d_h * tt)) != HTPW_OK) return status;
  if ((status = htpw_check_tensor(codes, (int64_t)rows * cols * mlp->code_dim)) != HTPW_OK) return status;
  if ((status = htpw_validate_requant(requant)) != HTPW_OK) return status;
  if ((status = htpw_check_signs(signs, c_out)) != HTPW_OK) return status;
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
  w1p = (uint32_t*)(void*)(base + l.w1p);
  zp = (uint32_t*)(void*)(base + l.zp);
  z = (int8_t*)(base + l.z);
  kw = (d_h + 1) / 2;
  kz = (mlp->code_dim + 1) / 2;
  out.seg = tile;
  out.ld = cols * tile;
  /* Extents were checked above; these cannot fail. */
  htpw_decode_bias(mlp, bias);
  htpw_transpose_pairs(&mlp->w1, mlp->code_dim, d_h, d_h, w1p);
  htpw_transpose_pairs(w2, d_h, tt, tt, w2p);
  HTPW_STEP_DONE(0);
  for (to = 0; to < rows; ++to) {
    /* Steps 1-2 for the whole tile row: h_t for its cols tiles (as pair words), then
     * v_t = h_t . W2, value (r, c) of tile ti at band[r][ti * b + c]. */
    (void)htpw_tensor_unpack(codes, (int64_t)to * cols * mlp->code_dim, cols * mlp->code_dim, z);
    htpw_interleave_pairs(z, cols, mlp->code_dim, zp);
    htpw_mat_mult_pairs(zp, w1p, cols, kz, d_h, band);
    HTPW_STEP_DONE(1);
    htpw_hidden_pairs(d_h, bias, cols, requant, band, hp);
    HTPW_STEP_DONE(2);
    htpw_mat_mult_pairs_to(hp, w2p, cols, kw, tt, out, band);
    HTPW_STEP_DONE(3);
    /* Step 3-4: kernel row o = to * b + r is band row r, cropped to c_in. */
    for (r = 0; r < tile && (int64_t)to * tile + r < c_out; ++r) {
      const int32_t o = to * tile + r;
      htpw_channel_quantize_row(band + (size_t)r * (size_t)out.ld, c_in, htpw_sign_bit(signs, o),
                                kernel + (size_t)o * (size_t)c_in);
    }
    HTPW_STEP_DONE(4);
  }
  return HTPW_OK;
}

/* ---- the op's record (htpw_strategy.h) ------------------------------------------------ */

/* codes [tiles, d_z], w1, b1, w2 [d_h, b * b], requant, signs. */
static htpw_input_spec input_spec(const htpw_options* o, int32_t index) {
  const int64_t b = o->tile_size;
  switch (index) {
    case HTPW_TILED_INPUT_CODES:
      return htpw_spec(htpw_code_type(o), 2, htpw_ceil_div64(o->c_out, b) * htpw_ceil_div64(o->c_in, b),
                       o->code_dim);
    case HTPW_TILED_INPUT_W2: return htpw_spec(htpw_weight_type(o), 2, o->hidden_dim, b * b);
    case HTPW_TILED_INPUT_REQUANT: return htpw_requant_spec();
    case HTPW_TILED_INPUT_SIGNS: return htpw_signs_spec(o);
    default: return htpw_mlp_input_spec(o, index);
  }
}

static int32_t scratch_bytes(const htpw_options* o) {
  const htpw_mlp mlp = htpw_mlp_of(o, NULL);
  return htpw_tiled_scratch_bytes(&mlp, o->tile_size, o->c_in);
}

static htpw_status synthesize(const htpw_options* o, const htpw_input* inputs, const htpw_requant* requant,
                              const htpw_signs* signs, void* scratch, int32_t scratch_bytes, int8_t* kernel) {
  const htpw_mlp mlp = htpw_mlp_of(o, inputs);
  const htpw_tensor codes = htpw_tensor_of(&inputs[HTPW_TILED_INPUT_CODES]);
  const htpw_tensor w2 = htpw_tensor_of(&inputs[HTPW_TILED_INPUT_W2]);
  return htpw_tiled_synthesize(&mlp, &w2, o->tile_size, &codes, requant, signs, o->c_out, o->c_in, scratch,
                               scratch_bytes, kernel);
}

const htpw_strategy htpw_strategy_tiled = {
    HTPW_STRATEGY_TILED, HTPW_TILED_INPUTS, HTPW_TILED_INPUT_REQUANT, HTPW_MAX_TILE_SIZE,
    NULL, input_spec, scratch_bytes, synthesize,
};
