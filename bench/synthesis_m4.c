/* Cortex-M4 firmware of bench/bench_synthesis_m4.py: the synthesis core alone, on layer shapes
 * given at compile time (LAYERS, a list of {c_out, c_in}): the tiled generator of the ECG presets,
 * then the same shapes with a paper_factorized generator (d_h = F_HIDDEN).
 * Inputs are pseudo-random (synthesis time does not depend on the values, except that ReLU
 * zeros of the paper heads are skipped). Writes "strategy c_out c_in validate_ticks synth_ticks kernel_crc32"
 * per layer to synthesis_m4.txt through semihosting; the CRCs let the script check that every
 * build variant makes the same bytes. */
#include <stdio.h>
#include <string.h>

#include "htpw_op.h"
#include "m4_platform.h"

#ifndef TILE
#define TILE 8
#endif
#ifndef CODE_DIM
#define CODE_DIM 4
#endif
#ifndef HIDDEN_DIM
#define HIDDEN_DIM 32
#endif
#define MAX_C 256
#define MAX_TILES ((MAX_C / TILE) * (MAX_C / TILE))

static int8_t codes[MAX_TILES * CODE_DIM];
static int8_t w1[CODE_DIM * HIDDEN_DIM];
static int32_t b1[HIDDEN_DIM];
static int8_t w2[HIDDEN_DIM * TILE * TILE];
static int32_t requant[2];
static uint8_t signs[MAX_C / 8];
static int8_t kernel[MAX_C * MAX_C];
#define F_HIDDEN 16 /* paper_factorized generator: d_z = CODE_DIM, d_h = F_HIDDEN, B is [d_h, MAX_C] */
static int8_t f_code[CODE_DIM];
static int8_t f_w1[CODE_DIM * F_HIDDEN];
static int8_t f_head[MAX_C * F_HIDDEN];
static int8_t f_b[F_HIDDEN * MAX_C];
static int32_t scratch[16384];

static uint32_t state = 12345u;
static int8_t next_int8(void) {
  state = state * 1664525u + 1013904223u;
  return (int8_t)((int32_t)(state >> 24) - 128);
}

int main(void) {
  static const int32_t layers[][2] = {LAYERS};
  FILE* out = fopen("synthesis_m4.txt", "w");
  unsigned i;
  if (out == NULL) return 3;
  for (i = 0; i < sizeof(codes); ++i) codes[i] = next_int8();
  for (i = 0; i < sizeof(w1); ++i) w1[i] = next_int8();
  for (i = 0; i < sizeof(w2); ++i) w2[i] = next_int8();
  for (i = 0; i < HIDDEN_DIM; ++i) b1[i] = next_int8() * 64;
  for (i = 0; i < sizeof(signs); ++i) signs[i] = (uint8_t)next_int8();
  for (i = 0; i < sizeof(f_code); ++i) f_code[i] = next_int8();
  for (i = 0; i < sizeof(f_w1); ++i) f_w1[i] = next_int8();
  for (i = 0; i < sizeof(f_head); ++i) f_head[i] = next_int8();
  for (i = 0; i < sizeof(f_b); ++i) f_b[i] = next_int8();
  requant[0] = 1518500250;
  requant[1] = -7;
  htpw_m4_ticks_start();
  for (i = 0; i < sizeof(layers) / sizeof(layers[0]); ++i) {
    htpw_options o;
    htpw_input in[6];
    const int32_t c_out = layers[i][0], c_in = layers[i][1];
    const int32_t tiles = ((c_out + TILE - 1) / TILE) * ((c_in + TILE - 1) / TILE);
    int32_t scratch_bytes = 0, k;
    uint32_t t0, t1, t2;
    htpw_status s1, s2;
    memset(&o, 0, sizeof(o));
    memset(in, 0, sizeof(in));
    o.version = HTPW_FORMAT_VERSION;
    o.mode = HTPW_MODE_ID_BOOT;
    o.strategy = HTPW_STRATEGY_ID_TILED;
    o.c_out = c_out;
    o.c_in = c_in;
    o.code_dim = CODE_DIM;
    o.hidden_dim = HIDDEN_DIM;
    o.tile_size = TILE;
    o.code_bits = 8;
    o.weight_bits = 8;
    in[0].data = codes; in[0].bytes = tiles * CODE_DIM; in[0].type = HTPW_TYPE_INT8; in[0].rank = 2;
    in[0].dims[0] = tiles; in[0].dims[1] = CODE_DIM;
    in[1].data = w1; in[1].bytes = sizeof(w1); in[1].type = HTPW_TYPE_INT8; in[1].rank = 2;
    in[1].dims[0] = CODE_DIM; in[1].dims[1] = HIDDEN_DIM;
    in[2].data = b1; in[2].bytes = sizeof(b1); in[2].type = HTPW_TYPE_INT32; in[2].rank = 1;
    in[2].dims[0] = HIDDEN_DIM;
    in[3].data = w2; in[3].bytes = sizeof(w2); in[3].type = HTPW_TYPE_INT8; in[3].rank = 2;
    in[3].dims[0] = HIDDEN_DIM; in[3].dims[1] = TILE * TILE;
    in[4].data = requant; in[4].bytes = 8; in[4].type = HTPW_TYPE_INT32; in[4].rank = 1; in[4].dims[0] = 2;
    in[5].data = signs; in[5].bytes = (c_out + 7) / 8; in[5].type = HTPW_TYPE_UINT8; in[5].rank = 1;
    in[5].dims[0] = (c_out + 7) / 8;
    for (k = 0; k < 6; ++k) o.crc32 = htpw_crc32(o.crc32, in[k].data, in[k].bytes);
    if (htpw_op_scratch_bytes(&o, in, 6, &scratch_bytes) != HTPW_OK || scratch_bytes > (int32_t)sizeof(scratch)) {
      return 4;
    }
    t0 = htpw_m4_ticks();
    s1 = htpw_op_validate(&o, in, 6);
    t1 = htpw_m4_ticks();
    s2 = htpw_op_synthesize(&o, in, 6, scratch, scratch_bytes, kernel, c_out * c_in);
    t2 = htpw_m4_ticks();
    if (s1 != HTPW_OK || s2 != HTPW_OK) return 5;
    fprintf(out, "tiled %ld %ld %lu %lu %08lx\n", (long)c_out, (long)c_in, (unsigned long)(t1 - t0),
            (unsigned long)(t2 - t1), (unsigned long)htpw_crc32(0, kernel, c_out * c_in));
  }
  for (i = 0; i < sizeof(layers) / sizeof(layers[0]); ++i) { /* the same shapes, paper_factorized */
    htpw_options o;
    htpw_input in[7];
    const int32_t c_out = layers[i][0], c_in = layers[i][1];
    int32_t scratch_bytes = 0, k;
    uint32_t t0, t1, t2;
    htpw_status s1, s2;
    memset(&o, 0, sizeof(o));
    memset(in, 0, sizeof(in));
    o.version = HTPW_FORMAT_VERSION;
    o.mode = HTPW_MODE_ID_BOOT;
    o.strategy = HTPW_STRATEGY_ID_PAPER_FACTORIZED;
    o.c_out = c_out;
    o.c_in = c_in;
    o.code_dim = CODE_DIM;
    o.hidden_dim = F_HIDDEN;
    o.code_bits = 8;
    o.weight_bits = 8;
    in[0].data = f_code; in[0].bytes = CODE_DIM; in[0].type = HTPW_TYPE_INT8; in[0].rank = 2;
    in[0].dims[0] = 1; in[0].dims[1] = CODE_DIM;
    in[1].data = f_w1; in[1].bytes = sizeof(f_w1); in[1].type = HTPW_TYPE_INT8; in[1].rank = 2;
    in[1].dims[0] = CODE_DIM; in[1].dims[1] = F_HIDDEN;
    in[2].data = b1; in[2].bytes = 4 * F_HIDDEN; in[2].type = HTPW_TYPE_INT32; in[2].rank = 1;
    in[2].dims[0] = F_HIDDEN;
    in[3].data = f_head; in[3].bytes = c_out * F_HIDDEN; in[3].type = HTPW_TYPE_INT8; in[3].rank = 2;
    in[3].dims[0] = c_out; in[3].dims[1] = F_HIDDEN;
    in[4].data = f_b; in[4].bytes = sizeof(f_b); in[4].type = HTPW_TYPE_INT8; in[4].rank = 2;
    in[4].dims[0] = F_HIDDEN; in[4].dims[1] = MAX_C;
    in[5].data = requant; in[5].bytes = 8; in[5].type = HTPW_TYPE_INT32; in[5].rank = 1; in[5].dims[0] = 2;
    in[6].data = signs; in[6].bytes = (c_out + 7) / 8; in[6].type = HTPW_TYPE_UINT8; in[6].rank = 1;
    in[6].dims[0] = (c_out + 7) / 8;
    for (k = 0; k < 7; ++k) o.crc32 = htpw_crc32(o.crc32, in[k].data, in[k].bytes);
    if (htpw_op_scratch_bytes(&o, in, 7, &scratch_bytes) != HTPW_OK || scratch_bytes > (int32_t)sizeof(scratch)) {
      return 7;
    }
    t0 = htpw_m4_ticks();
    s1 = htpw_op_validate(&o, in, 7);
    t1 = htpw_m4_ticks();
    s2 = htpw_op_synthesize(&o, in, 7, scratch, scratch_bytes, kernel, c_out * c_in);
    t2 = htpw_m4_ticks();
    if (s1 != HTPW_OK || s2 != HTPW_OK) return 8;
    fprintf(out, "paper_factorized %ld %ld %lu %lu %08lx\n", (long)c_out, (long)c_in, (unsigned long)(t1 - t0),
            (unsigned long)(t2 - t1), (unsigned long)htpw_crc32(0, kernel, c_out * c_in));
  }
  return fclose(out) == 0 ? 0 : 6;
}
