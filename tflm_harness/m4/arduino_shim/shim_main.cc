/* The Arduino core's part under QEMU: Serial, micros(), delay() and a main that runs setup() once
 * (loop() only waits, so it is not run). See Arduino.h here. */
#include "Arduino.h"
#include "m4_platform.h"

HtpwShimSerial Serial;

namespace {
constexpr unsigned long kInstructionsPerMicrosecond = 64;  // 64 MHz, one instruction per cycle
}  // namespace

unsigned long micros(void) {
  return static_cast<unsigned long>(static_cast<uint64_t>(htpw_m4_ticks()) * HTPW_INSTRUCTIONS_PER_TICK /
                                    kInstructionsPerMicrosecond);
}

void delay(unsigned long) {}

void setup();

int main(void) {
  htpw_m4_ticks_start();
  setup();
  return 0;
}
