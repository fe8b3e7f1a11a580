/* libFuzzer target for the HyperTinyPW core: the fuzz input is a case (htpw_case.h), decoded
 * into options and inputs, validated and, when valid, synthesized. The same bytes also go
 * through the option-name parsers. Any crash, out-of-bounds read or undefined behaviour is a
 * finding; every rejection must be a status code. Each case runs twice: as given, and with its
 * crc32 option set to the CRC of its (mutated) inputs, so that mutations of shapes and values
 * reach the synthesis instead of all stopping at HTPW_ERR_CRC.
 *   clang -fsanitize=fuzzer,address,undefined -Itflm_harness/core tflm_harness/fuzz/htpw_fuzz.c
 *         tflm_harness/fuzz/htpw_case.c and every .c of tflm_harness/core (build.core_sources())
 */
#include <stdlib.h>

#include "htpw_case.h"

#define FUZZ_MAX_BYTES (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  htpw_case c;
  int8_t* kernel = NULL;
  int32_t kernel_bytes = 0;
  htpw_option_id id;
  htpw_mode_id mode;
  htpw_strategy_id strategy;
  int32_t i;
  uint32_t crc = 0;
  const int32_t len = size > 64 ? 64 : (int32_t)size;
  (void)htpw_option_from_key((const char*)data, len, &id);
  (void)htpw_mode_from_string((const char*)data, len, &mode);
  (void)htpw_strategy_from_string((const char*)data, len, &strategy);
  if (htpw_case_decode(data, size, &c) != 0) return 0;
  (void)htpw_case_run(&c, FUZZ_MAX_BYTES, &kernel, &kernel_bytes);
  free(kernel);
  for (i = 0; i < c.n_inputs; ++i) crc = htpw_crc32(crc, c.inputs[i].data, c.inputs[i].bytes);
  c.options.crc32 = crc;
  (void)htpw_case_run(&c, FUZZ_MAX_BYTES, &kernel, &kernel_bytes);
  free(kernel);
  htpw_case_free(&c);
  return 0;
}
