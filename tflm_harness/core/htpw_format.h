/* The HyperTinyPW custom op's wire format (docs/format.md), for the TFLM kernel.
 *
 * Mirrors export/format.py constant for constant; tests/test_c_format.py parses this header and
 * compares every value, so the two cannot drift apart.
 */
#ifndef HTPW_FORMAT_H_
#define HTPW_FORMAT_H_

#define HTPW_CUSTOM_OP_NAME "HyperTinyPW"
#define HTPW_FORMAT_VERSION 2

/* Modes (option "mode"). */
#define HTPW_MODE_BOOT "boot"
#define HTPW_MODE_LAZY "lazy"
#define HTPW_MODE_STREAM "stream"

/* Strategies (option "strategy"). */
#define HTPW_STRATEGY_TILED "tiled"
#define HTPW_STRATEGY_PAPER_DENSE "paper_dense"
#define HTPW_STRATEGY_PAPER_FACTORIZED "paper_factorized"
#define HTPW_STRATEGY_LOW_RANK "low_rank"

/* Option keys of the flexbuffer map; every one is required. */
#define HTPW_KEY_VERSION "version"
#define HTPW_KEY_MODE "mode"
#define HTPW_KEY_STRATEGY "strategy"
#define HTPW_KEY_C_OUT "c_out"
#define HTPW_KEY_C_IN "c_in"
#define HTPW_KEY_CODE_DIM "code_dim"
#define HTPW_KEY_HIDDEN_DIM "hidden_dim"
#define HTPW_KEY_TILE_SIZE "tile_size"
#define HTPW_KEY_CODE_BITS "code_bits"
#define HTPW_KEY_WEIGHT_BITS "weight_bits"
#define HTPW_KEY_CRC32 "crc32"

#define HTPW_MAX_DIM 65535

/* File-level integrity (docs/format.md section 7): a metadata entry of this name holds the
 * little-endian CRC-32 of the whole file with these 4 bytes read as zero. */
#define HTPW_METADATA_CRC32 "hyper_tinypw_crc32"
#define HTPW_METADATA_CRC32_BYTES 4

/* Input positions per strategy (docs/format.md section 2). */
#define HTPW_TILED_INPUT_CODES 0
#define HTPW_TILED_INPUT_W1 1
#define HTPW_TILED_INPUT_B1 2
#define HTPW_TILED_INPUT_W2 3
#define HTPW_TILED_INPUT_REQUANT 4
#define HTPW_TILED_INPUT_SIGNS 5
#define HTPW_TILED_INPUTS 6

#define HTPW_PAPER_DENSE_INPUT_CODES 0
#define HTPW_PAPER_DENSE_INPUT_W1 1
#define HTPW_PAPER_DENSE_INPUT_B1 2
#define HTPW_PAPER_DENSE_INPUT_HEAD 3
#define HTPW_PAPER_DENSE_INPUT_REQUANT 4
#define HTPW_PAPER_DENSE_INPUT_SIGNS 5
#define HTPW_PAPER_DENSE_INPUTS 6

#define HTPW_PAPER_FACTORIZED_INPUT_CODES 0
#define HTPW_PAPER_FACTORIZED_INPUT_W1 1
#define HTPW_PAPER_FACTORIZED_INPUT_B1 2
#define HTPW_PAPER_FACTORIZED_INPUT_HEAD 3
#define HTPW_PAPER_FACTORIZED_INPUT_B_SHARED 4
#define HTPW_PAPER_FACTORIZED_INPUT_REQUANT 5
#define HTPW_PAPER_FACTORIZED_INPUT_SIGNS 6
#define HTPW_PAPER_FACTORIZED_INPUTS 7

#define HTPW_LOW_RANK_INPUT_U 0
#define HTPW_LOW_RANK_INPUT_V 1
#define HTPW_LOW_RANK_INPUT_SIGNS 2
#define HTPW_LOW_RANK_INPUTS 3

#endif /* HTPW_FORMAT_H_ */
