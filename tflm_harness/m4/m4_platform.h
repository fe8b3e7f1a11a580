/* Bare-metal platform of the Cortex-M4 runner under QEMU (mps2-an386, semihosting).
 *
 * QEMU models no DWT cycle counter. qemu.py runs the firmware with `-icount shift=0`, which
 * advances QEMU's virtual clock by exactly 1 ns per executed instruction; the board's CMSDK
 * APB timer 0 counts down at its 25 MHz PCLK of that clock, so one tick is 40 instructions.
 * The firmware reports raw ticks; qemu.py owns the conversion (INSTRUCTIONS_PER_TICK) and
 * tests/test_tflm_m4.py checks it on a loop of known length.
 */
#ifndef HTPW_M4_PLATFORM_H_
#define HTPW_M4_PLATFORM_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Starts timer 0 as a free-running 32-bit down counter (reload 0xFFFFFFFF). */
void htpw_m4_ticks_start(void);
/* Ticks since htpw_m4_ticks_start, modulo 2^32 (2^32 ticks are 171 G instructions). */
uint32_t htpw_m4_ticks(void);

#ifdef __cplusplus
}
#endif

#endif /* HTPW_M4_PLATFORM_H_ */
