/* The HyperTinyPW op as the TFLM kernel sees it: options and inputs of docs/format.md,
 * validated field by field, then synthesized by the strategy's file (htpw_tiled.c, htpw_paper.c,
 * htpw_low_rank.c) through htpw_op.c's table of htpw_strategy records (htpw_strategy.h).
 *
 * C99, no heap, no TFLM headers. The kernel (tflm_harness/kernel/) parses the flexbuffer into
 * htpw_options (with htpw_option_from_key / htpw_options_set_int / the *_from_string helpers,
 * so range and type errors get the core's status codes), describes each input tensor as an
 * htpw_input, and calls htpw_op_validate in Prepare. Every failure has its own htpw_status, so
 * it is identifiable even when error strings are stripped; htpw_status_name gives its name.
 */
#ifndef HTPW_OP_H_
#define HTPW_OP_H_

#include <stdint.h>

#include "htpw_format.h"
#include "htpw_low_rank.h"
#include "htpw_paper.h"
#include "htpw_synthesis.h"
#include "htpw_tiled.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element type of an input tensor. INT4 is packed two per byte, low nibble first.
 * The *_INT32_ sentinels keep these enums 4 bytes wide even where enums are short by default
 * (arm-none-eabi's AAPCS), so htpw_input and htpw_options have one layout for C, C++ and ctypes. */
typedef enum {
  HTPW_TYPE_INT8 = 0,
  HTPW_TYPE_INT4 = 1,
  HTPW_TYPE_INT32 = 2,
  HTPW_TYPE_UINT8 = 3,
  HTPW_TYPE_INT32_SENTINEL_ = 0x7FFFFFFF
} htpw_type;
typedef enum {
  HTPW_MODE_ID_BOOT = 0,
  HTPW_MODE_ID_LAZY = 1,
  HTPW_MODE_ID_STREAM = 2,
  HTPW_MODE_ID_INT32_SENTINEL_ = 0x7FFFFFFF
} htpw_mode_id;
typedef enum {
  HTPW_STRATEGY_ID_TILED = 0,
  HTPW_STRATEGY_ID_PAPER_DENSE = 1,
  HTPW_STRATEGY_ID_PAPER_FACTORIZED = 2,
  HTPW_STRATEGY_ID_LOW_RANK = 3,
  HTPW_STRATEGY_COUNT = 4, /* the length of htpw_op.c's strategy table */
  HTPW_STRATEGY_ID_INT32_SENTINEL_ = 0x7FFFFFFF
} htpw_strategy_id;

#define HTPW_MAX_RANK 4

/* One input tensor: its raw buffer (`bytes` long), element type and logical shape. */
typedef struct {
  const void* data;
  int32_t bytes;
  htpw_type type;
  int32_t rank;
  int32_t dims[HTPW_MAX_RANK];
} htpw_input;

/* The decoded custom options (docs/format.md section 3). */
typedef struct {
  int32_t version;
  htpw_mode_id mode;
  htpw_strategy_id strategy;
  int32_t c_out, c_in, code_dim, hidden_dim, tile_size, code_bits, weight_bits;
  uint32_t crc32;
} htpw_options;

/* The option keys, in the order of htpw_format.h. */
typedef enum {
  HTPW_OPTION_VERSION = 0,
  HTPW_OPTION_MODE = 1,
  HTPW_OPTION_STRATEGY = 2,
  HTPW_OPTION_C_OUT = 3,
  HTPW_OPTION_C_IN = 4,
  HTPW_OPTION_CODE_DIM = 5,
  HTPW_OPTION_HIDDEN_DIM = 6,
  HTPW_OPTION_TILE_SIZE = 7,
  HTPW_OPTION_CODE_BITS = 8,
  HTPW_OPTION_WEIGHT_BITS = 9,
  HTPW_OPTION_CRC32 = 10,
  HTPW_OPTION_COUNT = 11
} htpw_option_id;

/* Key name -> id; HTPW_ERR_OPTION_UNKNOWN for any other name. `s` need not be NUL-terminated. */
htpw_status htpw_option_from_key(const char* s, int32_t len, htpw_option_id* out);
/* 1 if the option is a flexbuffer string (mode, strategy), 0 if an int. */
int htpw_option_is_string(htpw_option_id id);
/* Stores an int option given as the flexbuffer's 64-bit value, so a value that does not fit
 * is rejected instead of truncated: HTPW_ERR_OPTION_<KEY> when out of the field's range,
 * HTPW_ERR_OPTION_TYPE for a string option. Full range checks are htpw_options_validate's. */
htpw_status htpw_options_set_int(htpw_options* o, htpw_option_id id, int64_t value);

htpw_status htpw_mode_from_string(const char* s, int32_t len, htpw_mode_id* out);         /* HTPW_ERR_OPTION_MODE */
htpw_status htpw_strategy_from_string(const char* s, int32_t len, htpw_strategy_id* out); /* ..._STRATEGY */

/* Ranges of docs/format.md section 3; one HTPW_ERR_OPTION_* per option. */
htpw_status htpw_options_validate(const htpw_options* o);

/* Options, then input count, then per input (in order) type, rank/shape and byte length of
 * section 2, then requant ranges, then the CRC-32 of the inputs' bytes (HTPW_ERR_CRC). */
htpw_status htpw_op_validate(const htpw_options* o, const htpw_input* inputs, int32_t n_inputs);
/* As htpw_op_validate; *failed_input is the input position the failure concerns, or -1. */
htpw_status htpw_op_validate_at(const htpw_options* o, const htpw_input* inputs, int32_t n_inputs,
                                int32_t* failed_input);

/* Bytes of the kernel: c_out * c_in (HTPW_ERR_SIZE if that exceeds int32). */
htpw_status htpw_op_kernel_bytes(const htpw_options* o, int32_t* bytes);
/* Scratch the synthesis needs (4-byte aligned memory). Validates the options first. */
htpw_status htpw_op_scratch_bytes(const htpw_options* o, const htpw_input* inputs, int32_t n_inputs,
                                  int32_t* bytes);
/* Runs htpw_op_validate except the CRC (Prepare checked it once), then writes c_out * c_in
 * int8 values, row-major [o][i], into kernel. scratch must be 4-byte aligned. */
htpw_status htpw_op_synthesize(const htpw_options* o, const htpw_input* inputs, int32_t n_inputs,
                               void* scratch, int32_t scratch_bytes, int8_t* kernel, int32_t kernel_bytes);

/* CRC-32 (IEEE 802.3, zlib.crc32 semantics): start with crc = 0, chain over pieces. */
uint32_t htpw_crc32(uint32_t crc, const void* data, int32_t bytes);

/* "HTPW_OK", "HTPW_ERR_CRC", ...; "HTPW_ERR_UNKNOWN_STATUS" for a value that is no status. */
const char* htpw_status_name(htpw_status s);

#ifdef __cplusplus
}
#endif

#endif /* HTPW_OP_H_ */
