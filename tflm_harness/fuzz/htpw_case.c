/* Decoding and running one op case; see htpw_case.h. Test code: it may use the heap. */
#include "htpw_case.h"

#include <stdlib.h>
#include <string.h>

static int32_t read_i32(const uint8_t* p) { return htpw_read_i32(p, 0); }

int htpw_case_decode(const uint8_t* data, size_t size, htpw_case* c) {
  size_t at = HTPW_CASE_HEADER_BYTES;
  int32_t i, d;
  memset(c, 0, sizeof(*c));
  if (data == NULL || size < HTPW_CASE_HEADER_BYTES) return -1;
  c->options.version = read_i32(data);
  c->options.mode = (htpw_mode_id)read_i32(data + 4);
  c->options.strategy = (htpw_strategy_id)read_i32(data + 8);
  c->options.c_out = read_i32(data + 12);
  c->options.c_in = read_i32(data + 16);
  c->options.code_dim = read_i32(data + 20);
  c->options.hidden_dim = read_i32(data + 24);
  c->options.tile_size = read_i32(data + 28);
  c->options.code_bits = read_i32(data + 32);
  c->options.weight_bits = read_i32(data + 36);
  c->options.crc32 = (uint32_t)read_i32(data + 40);
  c->n_inputs = read_i32(data + 44);
  if (c->n_inputs < 0 || c->n_inputs > HTPW_CASE_MAX_INPUTS) return -1;
  for (i = 0; i < c->n_inputs; ++i) {
    htpw_input* in = &c->inputs[i];
    void* copy;
    if (size - at < HTPW_CASE_INPUT_HEADER_BYTES) goto fail;
    in->type = (htpw_type)read_i32(data + at);
    in->rank = read_i32(data + at + 4);
    for (d = 0; d < HTPW_MAX_RANK; ++d) in->dims[d] = read_i32(data + at + 8 + 4 * (size_t)d);
    in->bytes = read_i32(data + at + 24);
    at += HTPW_CASE_INPUT_HEADER_BYTES;
    if (in->bytes < 0 || (size_t)in->bytes > size - at) goto fail;
    copy = malloc(in->bytes > 0 ? (size_t)in->bytes : 1u);
    if (copy == NULL) goto fail;
    if (in->bytes > 0) memcpy(copy, data + at, (size_t)in->bytes);
    in->data = copy;
    at += (size_t)in->bytes;
  }
  return 0;
fail:
  htpw_case_free(c);
  return -1;
}

void htpw_case_free(htpw_case* c) {
  int32_t i;
  for (i = 0; i < HTPW_CASE_MAX_INPUTS; ++i) {
    free((void*)(uintptr_t)c->inputs[i].data);
    c->inputs[i].data = NULL;
  }
}

htpw_status htpw_case_run(const htpw_case* c, size_t max_bytes, int8_t** kernel, int32_t* kernel_bytes) {
  htpw_status status;
  int32_t scratch_bytes = 0;
  void* scratch;
  *kernel = NULL;
  *kernel_bytes = 0;
  status = htpw_op_validate(&c->options, c->inputs, c->n_inputs);
  if (status != HTPW_OK) return status;
  if ((status = htpw_op_kernel_bytes(&c->options, kernel_bytes)) != HTPW_OK) return status;
  if ((status = htpw_op_scratch_bytes(&c->options, c->inputs, c->n_inputs, &scratch_bytes)) != HTPW_OK) {
    return status;
  }
  if ((size_t)*kernel_bytes + (size_t)scratch_bytes > max_bytes) return HTPW_OK;
  *kernel = (int8_t*)malloc((size_t)*kernel_bytes);
  scratch = malloc(scratch_bytes > 0 ? (size_t)scratch_bytes : 1u);
  if (*kernel == NULL || scratch == NULL) {
    free(*kernel);
    free(scratch);
    *kernel = NULL;
    return HTPW_OK;
  }
  status = htpw_op_synthesize(&c->options, c->inputs, c->n_inputs, scratch, scratch_bytes, *kernel, *kernel_bytes);
  free(scratch);
  if (status != HTPW_OK) {
    free(*kernel);
    *kernel = NULL;
  }
  return status;
}
