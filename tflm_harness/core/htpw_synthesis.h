/* Integer kernel synthesis of docs/synthesis.md, for the device: the status codes, the types
 * and the primitives (section 2) every strategy shares. The strategies are one file each
 * (htpw_tiled.h, htpw_paper.h, htpw_low_rank.h).
 *
 * C99, no heap, no TFLM headers. Function names and step order follow
 * hyper_tinypw_tf/synthesis.py; tests/test_c_core.py holds the two to the same bytes.
 * Status codes are listed once more, with their messages, in export/status.py;
 * tests/test_c_status.py compares the two value by value.
 * Every entry point checks its arguments and returns a distinct htpw_status per failure,
 * so the failure is identifiable even when error strings are stripped.
 */
#ifndef HTPW_SYNTHESIS_H_
#define HTPW_SYNTHESIS_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  HTPW_OK = 0,
  HTPW_ERR_NULL = 1,             /* a required pointer is NULL */
  HTPW_ERR_DIMENSION = 2,        /* a dimension is <= 0 or above its bound */
  HTPW_ERR_BITS = 3,             /* a tensor's bit width is not 4 or 8 */
  HTPW_ERR_SHIFT = 4,            /* requantization shift outside [-31, 30] */
  HTPW_ERR_MULTIPLIER = 5,       /* requantization multiplier outside [2^30, 2^31) */
  HTPW_ERR_SCRATCH = 6,          /* scratch buffer smaller than the *_scratch_bytes() it needs */
  HTPW_ERR_HEAD = 7,             /* unknown paper head kind */
  HTPW_ERR_CRC = 8,              /* option crc32 differs from the CRC-32 of the inputs' bytes */
  HTPW_ERR_INPUT_COUNT = 9,      /* number of inputs differs from the strategy's */
  HTPW_ERR_INPUT_TYPE = 10,      /* an input's element type (or bit width) is not the one required */
  HTPW_ERR_INPUT_SHAPE = 11,     /* an input's rank or dimensions are not the ones required */
  HTPW_ERR_INPUT_BYTES = 12,     /* an input's byte length differs from what its shape and type need */
  HTPW_ERR_OPTION_MISSING = 13,  /* a required option key is absent */
  HTPW_ERR_OPTION_TYPE = 14,     /* an option has the wrong flexbuffer type */
  HTPW_ERR_OPTION_UNKNOWN = 15,  /* an option key the format does not define */
  HTPW_ERR_OPTION_VERSION = 16,  /* option version is not HTPW_FORMAT_VERSION */
  HTPW_ERR_OPTION_MODE = 17,     /* option mode is not boot, lazy or stream */
  HTPW_ERR_OPTION_STRATEGY = 18, /* option strategy is not tiled, paper_dense, paper_factorized or low_rank */
  HTPW_ERR_OPTION_C_OUT = 19,    /* option c_out outside [1, HTPW_MAX_DIM] */
  HTPW_ERR_OPTION_C_IN = 20,     /* option c_in outside [1, HTPW_MAX_DIM] */
  HTPW_ERR_OPTION_CODE_DIM = 21, /* code_dim outside [1, HTPW_MAX_DIM] (or not hidden_dim if low_rank) */
  HTPW_ERR_OPTION_HIDDEN_DIM = 22, /* hidden_dim outside [1, HTPW_MAX_DIM] (HTPW_MAX_FACTOR_RANK if factorized) */
  HTPW_ERR_OPTION_TILE_SIZE = 23,  /* tile_size outside [1, HTPW_MAX_TILE_SIZE] (tiled) or not 0 (others) */
  HTPW_ERR_OPTION_CODE_BITS = 24,  /* option code_bits is not 4 or 8 */
  HTPW_ERR_OPTION_WEIGHT_BITS = 25, /* option weight_bits is not 4 or 8 */
  HTPW_ERR_OPTION_CRC32 = 26,    /* option crc32 outside [0, 2^32) */
  HTPW_ERR_OPTIONS_FORMAT = 27,  /* custom options absent or not a flexbuffer map */
  HTPW_ERR_OUTPUT = 28,          /* output tensor (or kernel buffer) is not int8 [c_out, 1, 1, c_in] */
  HTPW_ERR_SIZE = 29,            /* a size the options imply does not fit in int32 bytes */
  HTPW_ERR_ALIGN = 30,           /* scratch is not 4-byte aligned */
  HTPW_ERR_INPUT_CONSTANT = 31,  /* an input is not a constant tensor with a buffer */
  HTPW_ERR_FILE_FORMAT = 32,     /* the file's tables leave the file, or its CRC entry is malformed */
  HTPW_ERR_FILE_CRC = 33,        /* the file's CRC-32 metadata differs from the CRC-32 of its bytes */
  HTPW_ERR_FILE_NO_CRC = 34      /* a file with HyperTinyPW ops has no CRC-32 metadata */
} htpw_status;

/* A stored integer tensor: int8 values, or int4 packed two per byte (low nibble first), and
 * the length of its buffer. No read goes past `bytes`: every entry point checks the extent it
 * will read (in 64-bit arithmetic) before its loops run. */
typedef struct {
  const void* data;
  int32_t bytes;
  int32_t bits;
} htpw_tensor;

/* Shared micro-MLP: h = relu_int8(z . W1 + b1), W1 is (d_z, d_h) row-major, b1 is d_h
 * little-endian int32 in b1_bytes bytes (read bytewise: no alignment assumed). */
typedef struct {
  htpw_tensor w1;
  const void* b1;
  int32_t b1_bytes;
  int32_t code_dim;
  int32_t hidden_dim;
} htpw_mlp;

/* Per-layer fixed-point multiplier of the hidden activation. */
typedef struct {
  int32_t multiplier;
  int32_t shift;
} htpw_requant;

/* Packed sign bits, one per output channel, LSB-first. */
typedef struct {
  const uint8_t* data;
  int32_t bytes;
} htpw_signs;

/* Limits (docs/synthesis.md section 5). tests/test_c_status.py compares them with
 * hyper_tinypw_tf/synthesis.py and export/format.py. With them every int32 accumulation below
 * is exact: |x . w| <= 65535 * 128 * 128 < 2^31 for a dense step, and the factorized head's
 * 1024 * (128 * 127) * 128 < 2^31. */
#define HTPW_MAX_DENSE_TERMS 65535
#define HTPW_MAX_FACTOR_RANK 1024
#define HTPW_MAX_TILE_SIZE 255

/* --- primitives (docs/synthesis.md section 2) --------------------------------------- */
/* Elements the tensor's buffer holds: bytes (int8) or 2 * bytes (int4); 0 if bits is neither. */
int64_t htpw_tensor_capacity(const htpw_tensor* t);
/* out[k] = t[start + k] for k < count; HTPW_ERR_INPUT_BYTES if that reads past the buffer. */
htpw_status htpw_tensor_unpack(const htpw_tensor* t, int64_t start, int32_t count, int8_t* out);
/* out[c * rows + r] = t[r * cols + c] for r < rows, c < used_cols: a (rows, cols) matrix's first
 * used_cols columns, transposed and unpacked to int8 once so the products read it row by row. */
htpw_status htpw_tensor_unpack_transposed(const htpw_tensor* t, int32_t rows, int32_t cols, int32_t used_cols,
                                          int8_t* out);
int32_t htpw_requantize(int32_t acc, int32_t multiplier, int32_t shift);
int8_t htpw_relu_int8(int32_t acc, int32_t multiplier, int32_t shift);
/* dst[m * n + j] = sum_k lhs[m * k + kk] * rhs_t[j * k + kk]: int8 x int8 summed in int32, exact
 * for k <= HTPW_MAX_DENSE_TERMS. CMSIS-NN's arm_nn_mat_mult_nt_t_s8_s32 when HTPW_USE_CMSIS_NN
 * (set by TFLM's CMSIS-NN builds, which define CMSIS_NN, on cores with DSP), portable C
 * otherwise; both give the same integers. */
void htpw_mat_mult_s32(const int8_t* lhs, const int8_t* rhs_t, int32_t m, int32_t k, int32_t n, int32_t* dst);
/* One output row: out[i] = round_half_away(127 * acc[i] / max|acc|), then the row's sign. */
void htpw_channel_quantize_row(const int32_t* acc, int32_t cols, int negate, int8_t* out);
/* Bit `channel` of the packed signs; 0 past the buffer (callers check the length first). */
int htpw_sign_bit(const htpw_signs* signs, int32_t channel);
/* The little-endian int32 at byte offset 4 * index of data (bytewise, any alignment). */
int32_t htpw_read_i32(const void* data, int32_t index);

/* HTPW_OK, or HTPW_ERR_SHIFT / HTPW_ERR_MULTIPLIER for a requantization out of range. */
htpw_status htpw_validate_requant(const htpw_requant* requant);

#ifdef __cplusplus
}
#endif

#endif /* HTPW_SYNTHESIS_H_ */
