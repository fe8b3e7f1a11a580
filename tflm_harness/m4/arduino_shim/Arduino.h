/* Just enough of the Arduino API to run the Nano 33 BLE sketch (tflm_harness/arduino/) unchanged
 * under QEMU: Serial prints to semihosting stdout, micros() converts the instruction counter at
 * 64 MHz and one instruction per cycle (the board's clock; QEMU models no cycles). Used only by
 * qemu.build_sketch and tests/test_tflm_m4.py; on the board the Arduino core provides all this.
 */
#ifndef HTPW_ARDUINO_SHIM_H_
#define HTPW_ARDUINO_SHIM_H_

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

class HtpwShimSerial {
 public:
  void begin(unsigned long) {}
  explicit operator bool() const { return true; }
  size_t print(const char* s) { return static_cast<size_t>(printf("%s", s)); }
  size_t print(long v) { return static_cast<size_t>(printf("%ld", v)); }
  size_t print(unsigned long v) { return static_cast<size_t>(printf("%lu", v)); }
  size_t print(int v) { return print(static_cast<long>(v)); }
  size_t print(unsigned int v) { return print(static_cast<unsigned long>(v)); }
  size_t println(const char* s) { return static_cast<size_t>(printf("%s\n", s)); }
};
extern HtpwShimSerial Serial;

unsigned long micros(void);
void delay(unsigned long ms);

#endif /* HTPW_ARDUINO_SHIM_H_ */
