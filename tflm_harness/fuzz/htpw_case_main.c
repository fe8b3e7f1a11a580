/* Runs case files (htpw_case.h) and prints, per file, one line:
 *   <path> <status name> <kernel as hex, or "-">
 * tests/test_c_sanitizers.py builds it with AddressSanitizer and UBSan. */
#include <stdio.h>
#include <stdlib.h>

#include "htpw_case.h"

#define MAX_CASE_BYTES (64u << 20)

static uint8_t* read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  uint8_t* data;
  long n;
  if (f == NULL) return NULL;
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || (unsigned long)n > MAX_CASE_BYTES ||
      fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return NULL;
  }
  data = (uint8_t*)malloc(n > 0 ? (size_t)n : 1u);
  if (data != NULL && fread(data, 1, (size_t)n, f) != (size_t)n) {
    free(data);
    data = NULL;
  }
  fclose(f);
  *size = (size_t)n;
  return data;
}

int main(int argc, char** argv) {
  int i;
  for (i = 1; i < argc; ++i) {
    size_t size = 0;
    uint8_t* data = read_file(argv[i], &size);
    htpw_case c;
    int8_t* kernel = NULL;
    int32_t kernel_bytes = 0, k;
    htpw_status status;
    if (data == NULL || htpw_case_decode(data, size, &c) != 0) {
      printf("%s NOT_A_CASE -\n", argv[i]);
      free(data);
      continue;
    }
    status = htpw_case_run(&c, MAX_CASE_BYTES, &kernel, &kernel_bytes);
    printf("%s %s ", argv[i], htpw_status_name(status));
    if (kernel == NULL) {
      printf("-");
    } else {
      for (k = 0; k < kernel_bytes; ++k) printf("%02x", (unsigned)(uint8_t)kernel[k]);
    }
    printf("\n");
    free(kernel);
    htpw_case_free(&c);
    free(data);
  }
  return 0;
}
