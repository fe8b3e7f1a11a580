/* Cortex-M4 firmware of bench/bench_synthesis_m4.py: the synthesis core alone, on layer shapes
 * given at compile time (LAYERS, a list of {c_out, c_in}): the tiled generator of the ECG presets,
 * then the same shapes with a paper_factorized generator (d_h = F_HIDDEN).
 * Inputs are pseudo-random (synthesis time does not depend on the values, except that ReLU
 * zeros of the paper heads are skipped). Writes "strategy c_out c_in validate_ticks synth_ticks kernel_crc32"
 * per layer to synthesis_m4.txt through semihosting; the CRCs let the script check that every
 * build variant makes the same bytes, and tests/test_synthesis_m4.py compares them with the Python
 * reference on odd shapes (it rebuilds the same inputs from the generator below). */
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
#define MAX_TILES (((MAX_C + TILE - 1) / TILE) * ((MAX_C + TILE - 1) / TILE))

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

#if defined(HTPW_BENCH_STEPS)
/* Ticks per step of the tiled strategy (htpw_tiled.c marks where each ends: 0 setup, 1 codes x
 * W1, 2 hidden ReLU and pair words, 3 tile values, 4 channel quantization), for the profiling build. */
#define N_STEPS 5
static uint32_t step_ticks[N_STEPS], step_mark;
void htpw_bench_step(int step) {
  const uint32_t now = htpw_m4_ticks();
  step_ticks[step] += now - step_mark;
  step_mark = now;
}
#endif

static uint32_t state = 12345u;
static int8_t next_int8(void) {
  state = state * 1664525u + 1013904223u;
  return (int8_t)((int32_t)(state >> 24) - 128);
}

/* One input of an op: rank 1 when d1 < 0, else rank 2. */
static void set_input(htpw_input* in, const void* data, int32_t bytes, htpw_type type, int32_t d0, int32_t d1) {
  in->data = data;
  in->bytes = bytes;
  in->type = type;
  in->rank = d1 < 0 ? 1 : 2;
  in->dims[0] = d0;
  in->dims[1] = d1 < 0 ? 0 : d1;
}

/* Validate and synthesize one op, writing "name c_out c_in validate_ticks synth_ticks crc" to out.
 * Returns 0, or the exit status that names the failing step (scratch: base, op: base + 1). */
static int time_op(FILE* out, const char* name, htpw_options* o, htpw_input* in, int32_t n, int base) {
  int32_t scratch_bytes = 0, k;
  uint32_t t0, t1, t2;
  htpw_status s1, s2;
  o->version = HTPW_FORMAT_VERSION;
  o->mode = HTPW_MODE_ID_BOOT;
  o->code_bits = 8;
  o->weight_bits = 8;
  o->crc32 = 0;
  for (k = 0; k < n; ++k) o->crc32 = htpw_crc32(o->crc32, in[k].data, in[k].bytes);
  if (htpw_op_scratch_bytes(o, in, n, &scratch_bytes) != HTPW_OK || scratch_bytes > (int32_t)sizeof(scratch)) {
    return base;
  }
  t0 = htpw_m4_ticks();
  s1 = htpw_op_validate(o, in, n);
  t1 = htpw_m4_ticks();
#if defined(HTPW_BENCH_STEPS)
  memset(step_ticks, 0, sizeof(step_ticks));
  step_mark = t1;
#endif
  s2 = htpw_op_synthesize(o, in, n, scratch, scratch_bytes, kernel, o->c_out * o->c_in);
  t2 = htpw_m4_ticks();
  if (s1 != HTPW_OK || s2 != HTPW_OK) return base + 1;
  fprintf(out, "%s %ld %ld %lu %lu %08lx\n", name, (long)o->c_out, (long)o->c_in, (unsigned long)(t1 - t0),
          (unsigned long)(t2 - t1), (unsigned long)htpw_crc32(0, kernel, o->c_out * o->c_in));
#if defined(HTPW_BENCH_STEPS)
  if (o->strategy == HTPW_STRATEGY_ID_TILED) {
    fprintf(out, "steps %ld %ld", (long)o->c_out, (long)o->c_in);
    for (k = 0; k < N_STEPS; ++k) fprintf(out, " %lu", (unsigned long)step_ticks[k]);
    fprintf(out, "\n");
  }
#endif
  return 0;
}

int main(void) {
  static const int32_t layers[][2] = {LAYERS};
  FILE* out = fopen("synthesis_m4.txt", "w");
  unsigned i;
  int status;
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
    memset(&o, 0, sizeof(o));
    memset(in, 0, sizeof(in));
    o.strategy = HTPW_STRATEGY_ID_TILED;
    o.c_out = c_out;
    o.c_in = c_in;
    o.code_dim = CODE_DIM;
    o.hidden_dim = HIDDEN_DIM;
    o.tile_size = TILE;
    set_input(&in[0], codes, tiles * CODE_DIM, HTPW_TYPE_INT8, tiles, CODE_DIM);
    set_input(&in[1], w1, sizeof(w1), HTPW_TYPE_INT8, CODE_DIM, HIDDEN_DIM);
    set_input(&in[2], b1, sizeof(b1), HTPW_TYPE_INT32, HIDDEN_DIM, -1);
    set_input(&in[3], w2, sizeof(w2), HTPW_TYPE_INT8, HIDDEN_DIM, TILE * TILE);
    set_input(&in[4], requant, 8, HTPW_TYPE_INT32, 2, -1);
    set_input(&in[5], signs, (c_out + 7) / 8, HTPW_TYPE_UINT8, (c_out + 7) / 8, -1);
    status = time_op(out, "tiled", &o, in, 6, 4);
    if (status != 0) return status;
  }
  for (i = 0; i < sizeof(layers) / sizeof(layers[0]); ++i) { /* the same shapes, paper_factorized */
    htpw_options o;
    htpw_input in[7];
    const int32_t c_out = layers[i][0], c_in = layers[i][1];
    memset(&o, 0, sizeof(o));
    memset(in, 0, sizeof(in));
    o.strategy = HTPW_STRATEGY_ID_PAPER_FACTORIZED;
    o.c_out = c_out;
    o.c_in = c_in;
    o.code_dim = CODE_DIM;
    o.hidden_dim = F_HIDDEN;
    set_input(&in[0], f_code, CODE_DIM, HTPW_TYPE_INT8, 1, CODE_DIM);
    set_input(&in[1], f_w1, sizeof(f_w1), HTPW_TYPE_INT8, CODE_DIM, F_HIDDEN);
    set_input(&in[2], b1, 4 * F_HIDDEN, HTPW_TYPE_INT32, F_HIDDEN, -1);
    set_input(&in[3], f_head, c_out * F_HIDDEN, HTPW_TYPE_INT8, c_out, F_HIDDEN);
    set_input(&in[4], f_b, sizeof(f_b), HTPW_TYPE_INT8, F_HIDDEN, MAX_C);
    set_input(&in[5], requant, 8, HTPW_TYPE_INT32, 2, -1);
    set_input(&in[6], signs, (c_out + 7) / 8, HTPW_TYPE_UINT8, (c_out + 7) / 8, -1);
    status = time_op(out, "paper_factorized", &o, in, 7, 7);
    if (status != 0) return status;
  }
  return fclose(out) == 0 ? 0 : 6;
}
