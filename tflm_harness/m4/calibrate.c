/* Checks the instruction counter: runs a loop of known length and writes the ticks it took.
 *
 * `spin(n)` executes exactly 2n + 1 instructions (n times SUBS+BNE, then BX). For each n the
 * firmware writes one line "n ticks" to calibrate.txt; tests/test_tflm_m4.py checks that
 * ticks * INSTRUCTIONS_PER_TICK matches 2n + 1 to within the counter's resolution.
 */
#include <stdio.h>

#include "m4_platform.h"

__attribute__((naked, noinline)) static void spin(uint32_t n) {
  __asm volatile(
      "1: subs r0, r0, #1\n"
      "   bne 1b\n"
      "   bx lr\n");
  (void)n;
}

int main(void) {
  static const uint32_t lengths[] = {1000u, 100000u, 10000000u};
  FILE* out = fopen("calibrate.txt", "w");
  if (out == NULL) return 3;
  htpw_m4_ticks_start();
  for (unsigned i = 0; i < sizeof(lengths) / sizeof(lengths[0]); ++i) {
    const uint32_t before = htpw_m4_ticks();
    spin(lengths[i]);
    const uint32_t ticks = htpw_m4_ticks() - before;
    fprintf(out, "%lu %lu\n", (unsigned long)lengths[i], (unsigned long)ticks);
  }
  return fclose(out) == 0 ? 0 : 4;
}
