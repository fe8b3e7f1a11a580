/* One synthesis strategy as the op sees it: a const record of constants and functions, one per
 * strategy file (htpw_tiled.c, htpw_paper.c, htpw_low_rank.c), gathered in htpw_op.c's table
 * indexed by htpw_strategy_id. This is how TFLM's DECODE kernel dispatches to its decode states:
 * the op's checks and entry points are written once, and adding a strategy is one file that
 * defines its record plus one table entry (docs/extending.md).
 *
 * The op calls a strategy's functions only for options that passed htpw_options_validate, and
 * synthesize only for inputs that passed every input_spec and the requant check.
 */
#ifndef HTPW_STRATEGY_H_
#define HTPW_STRATEGY_H_

#include <stdint.h>

#include "htpw_op.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What one input must be (docs/format.md section 2): type, rank and dims; last_at_least lets the
 * last dim be larger (b_shared: [d_h, C_in_max] with C_in_max >= c_in). */
typedef struct {
  htpw_type type;
  int32_t rank;
  int64_t dims[2];
  int last_at_least;
} htpw_input_spec;

typedef struct {
  const char* name;      /* the option string, HTPW_STRATEGY_* of htpw_format.h */
  int32_t n_inputs;      /* HTPW_<STRATEGY>_INPUTS; the packed signs are always the last input */
  int32_t requant_input; /* position of the int32 [multiplier, shift] input, -1 if none */
  int32_t max_tile_size; /* tile_size range [1, max_tile_size]; 0: tile_size must be 0 */
  /* Checks of this strategy's own, run after the shared ranges of c_out .. hidden_dim and before
   * code_bits (export/format.py's order); NULL if none. */
  htpw_status (*check_options)(const htpw_options* o);
  /* What input `index` (< n_inputs) must be. */
  htpw_input_spec (*input_spec)(const htpw_options* o, int32_t index);
  /* Bytes of 4-byte aligned scratch synthesize needs; -1 if that does not fit in int32. */
  int32_t (*scratch_bytes)(const htpw_options* o);
  /* Writes the c_out x c_in kernel. requant is NULL when requant_input is -1. */
  htpw_status (*synthesize)(const htpw_options* o, const htpw_input* inputs, const htpw_requant* requant,
                            const htpw_signs* signs, void* scratch, int32_t scratch_bytes, int8_t* kernel);
} htpw_strategy;

extern const htpw_strategy htpw_strategy_tiled;
extern const htpw_strategy htpw_strategy_paper_dense;
extern const htpw_strategy htpw_strategy_paper_factorized;
extern const htpw_strategy htpw_strategy_low_rank;

/* --- helpers for the strategy files (htpw_op.c) -------------------------------------- */
htpw_input_spec htpw_spec(htpw_type type, int32_t rank, int64_t d0, int64_t d1);
/* The element type of option code_bits / weight_bits. */
htpw_type htpw_code_type(const htpw_options* o);
htpw_type htpw_weight_type(const htpw_options* o);
/* The specs every micro-MLP strategy shares: w1 [d_z, d_h] at input 1, b1 int32 [d_h] at 2. */
htpw_input_spec htpw_mlp_input_spec(const htpw_options* o, int32_t index);
/* int32 [multiplier, shift]; uint8 [ceil(c_out / 8)] sign bits. */
htpw_input_spec htpw_requant_spec(void);
htpw_input_spec htpw_signs_spec(const htpw_options* o);
/* An int8/int4 input as the synthesis reads it. */
htpw_tensor htpw_tensor_of(const htpw_input* in);
/* The micro-MLP of inputs 1 (w1) and 2 (b1). */
htpw_mlp htpw_mlp_of(const htpw_options* o, const htpw_input* inputs);

#ifdef __cplusplus
}
#endif

#endif /* HTPW_STRATEGY_H_ */
