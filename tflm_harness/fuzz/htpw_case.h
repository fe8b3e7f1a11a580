/* One HyperTinyPW op as a flat byte string, for the sanitizer test and the libFuzzer target.
 *
 * Layout (little-endian int32 unless noted): version, mode, strategy, c_out, c_in, code_dim,
 * hidden_dim, tile_size, code_bits, weight_bits, crc32 (uint32), n_inputs; then per input:
 * type, rank, dims[4], bytes, and `bytes` raw data bytes. tests/core_lib.py writes it.
 * Each input's data is copied into its own heap block of exactly `bytes` bytes, so that under
 * AddressSanitizer any read past one tensor's buffer is reported, as on the device it would
 * read past the flatbuffer's buffer.
 */
#ifndef HTPW_CASE_H_
#define HTPW_CASE_H_

#include <stddef.h>
#include <stdint.h>

#include "htpw_op.h"

#define HTPW_CASE_MAX_INPUTS 8
#define HTPW_CASE_HEADER_BYTES 48
#define HTPW_CASE_INPUT_HEADER_BYTES 28

typedef struct {
  htpw_options options;
  htpw_input inputs[HTPW_CASE_MAX_INPUTS];
  int32_t n_inputs;
} htpw_case;

/* 0 and a filled case (free it with htpw_case_free), or -1 if the bytes are no case. */
int htpw_case_decode(const uint8_t* data, size_t size, htpw_case* c);
void htpw_case_free(htpw_case* c);

/* htpw_op_validate, then (if valid and kernel + scratch <= max_bytes) htpw_op_synthesize into a
 * heap kernel returned in *kernel (caller frees; NULL when not synthesized). */
htpw_status htpw_case_run(const htpw_case* c, size_t max_bytes, int8_t** kernel, int32_t* kernel_bytes);

#endif /* HTPW_CASE_H_ */
