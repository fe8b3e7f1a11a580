/* The tiled strategy (docs/synthesis.md section 3); see htpw_tiled.h.
 *
 * One tile row of the kernel at a time: the codes of its tiles through the micro-MLP (a pair
 * product, codes x W1, then hidden_pairs), the tile values h . W2 (a pair product whose
 * output lands in a band where each kernel row is contiguous), then each kernel row quantized.
 * The products are htpw_synthesis.c's SMLAD blocks (htpw_shared.h); this file holds what only
 * the tiled strategy does (codes and h as pair words), its scratch plan, its loop and its record
 * for the op.
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

/* Rows as pair words, two rows interleaved word by word (row 2q word i at [2i], row 2q + 1 at
 * [2i + 1]), so that the same word of both rows is loaded from adjacent addresses. */
static void interleave_pairs(const int8_t* x, int32_t rows, int32_t k, uint32_t* out) {
  const int32_t kw = (k + 1) / 2;
  int32_t r, i;
  for (r = 0; r < rows; ++r) {
    const int8_t* row = x + (size_t)r * (size_t)k;
    uint32_t* o = out + (size_t)(r / 2) * 2u * (size_t)kw + (size_t)(r & 1);
    for (i = 0; i + 1 < k; i += 2) o[i] = htpw_pair(row[i], row[i + 1]); /* word i/2 sits at [2 * (i/2)] */
    if (k & 1) o[2 * (kw - 1)] = htpw_pair(row[k - 1], 0);
  }
  if (rows & 1) { /* the partner of an odd last row: zeros, computed and dropped */
    uint32_t* o = out + (size_t)(rows / 2) * 2u * (size_t)kw + 1u;
    for (i = 0; i < kw; ++i) o[2 * i] = 0;
  }
}

/* relu_int8(saturate(acc + bias)) for t = 31 - shift > 32, as in htpw_hidden (htpw_synthesis.c):
 * the high word of one multiply, an add and a shift, then the clamp to [0, 127] (USAT on cores with DSP). */
static int32_t relu_high(int32_t acc, int32_t bias, int32_t multiplier, int32_t half, int32_t high_shift) {
  const int32_t x = htpw_add_saturated(acc, bias);
#if defined(HTPW_SMLAD_INTRINSIC) && defined(__GNUC__) && !defined(HTPW_NO_ASM)
  int32_t rounded; /* SMMLA: half + the high word of x * multiplier, one instruction */
  __asm__("smmla %0, %1, %2, %3" : "=r"(rounded) : "r"(x), "r"(multiplier), "r"(half));
  return __usat(rounded >> high_shift, 7);
#else
  const int32_t high = (int32_t)(((int64_t)x * (int64_t)multiplier) >> 32);
  const int32_t v = (high + half) >> high_shift; /* |high| < 2^30, half <= 2^29 */
#if defined(HTPW_SMLAD_INTRINSIC)
  return __usat(v, 7);
#else
  return htpw_clamp_0_127(v);
#endif
#endif
}

/* htpw_hidden() for the tiled strategy, written straight as the interleaved pair words of
 * interleave_pairs (h is in [0, 127], so a pair word is low | high << 16): the tile product
 * reads them without an int8 copy of h in between. */
static void hidden_pairs(int32_t d_h, const int32_t* bias, int32_t count, const htpw_requant* requant,
                         const int32_t* acc1, uint32_t* hp) {
  const int32_t total_shift = 31 - requant->shift, multiplier = requant->multiplier, kw = (d_h + 1) / 2;
  int32_t t, j;
  for (t = 0; t < count; ++t) {
    const int32_t* a = acc1 + (size_t)t * (size_t)d_h;
    uint32_t* o = hp + (size_t)(t / 2) * 2u * (size_t)kw + (size_t)(t & 1); /* word j / 2 at o[j] */
    if (total_shift > 32) {
      const int32_t high_shift = total_shift - 32, half = (int32_t)1 << (high_shift - 1);
      const int32_t* v = a;
      const int32_t* w = bias;
      uint32_t* p = o;
      for (j = 0; j + 1 < d_h; j += 2, v += 2, w += 2, p += 2) { /* pointers: LDRD pairs */
        *p = (uint32_t)relu_high(v[0], w[0], multiplier, half, high_shift) |
             ((uint32_t)relu_high(v[1], w[1], multiplier, half, high_shift) << 16);
      }
      if (d_h & 1) o[d_h - 1] = (uint32_t)relu_high(a[d_h - 1], bias[d_h - 1], multiplier, half, high_shift);
    } else {
      const int64_t round = (int64_t)1 << (total_shift - 1);
      for (j = 0; j < d_h; ++j) {
        const int64_t v = (round + (int64_t)htpw_add_saturated(a[j], bias[j]) * (int64_t)multiplier) >> total_shift;
        const uint32_t h = (uint32_t)(v < 0 ? 0 : (v > 127 ? 127 : v));
        if (j & 1) {
          o[j - 1] |= h << 16;
        } else {
          o[j] = h;
        }
      }
    }
  }
  if (count & 1) { /* the partner of an odd last tile: zeros, computed and dropped */
    uint32_t* o = hp + (size_t)(count / 2) * 2u * (size_t)kw + 1u;
    for (j = 0; j < kw; ++j) o[2 * j] = 0;
  }
}

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
      mlp->hidden_dim > HTPW_MAX_DENSE_TERMS || !htpw_tile_size_ok(tile) || c_in <= 0) {
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
  if (!htpw_tile_size_ok(tile) || c_out <= 0 || c_in <= 0) return HTPW_ERR_DIMENSION;
  d_h = mlp->hidden_dim;
  rows = (int32_t)htpw_ceil_div64(c_out, tile);
  cols = (int32_t)htpw_ceil_div64(c_in, tile);
  tt = tile * tile;
  if ((status = htpw_check_tensor(w2, (int64_t)d_h * tt)) != HTPW_OK) return status;
  if ((status = htpw_check_tensor(codes, (int64_t)rows * cols * mlp->code_dim)) != HTPW_OK) return status;
  needed = htpw_tiled_scratch_bytes(mlp, tile, c_in);
  status = htpw_check_mlp_finish(requant, signs, c_out, scratch, scratch_bytes, needed, kernel);
  if (status != HTPW_OK) return status;
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
    interleave_pairs(z, cols, mlp->code_dim, zp);
    htpw_mat_mult_pairs(zp, w1p, cols, kz, d_h, band);
    HTPW_STEP_DONE(1);
    hidden_pairs(d_h, bias, cols, requant, band, hp);
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
