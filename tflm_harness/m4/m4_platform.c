/* _start and the tick counter of the Cortex-M4 runner (see m4_platform.h).
 *
 * CMSIS's Reset_Handler (Cortex_DFP startup_ARMCM4.c) runs SystemInit (vector table, FPU
 * access), copies .data and zeroes .bss, then calls _start. newlib's rdimon crt0 is not
 * linked (-nostartfiles: it has no vector table), so _start opens the semihosting handles,
 * runs the C++ constructors and exits with main's status, which QEMU returns as its own.
 */
#include "m4_platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* CMSDK APB timer 0 of the MPS2 FPGA images (AN386 application note, section 3.3). */
#define HTPW_TIMER0_BASE 0x40000000u
#define HTPW_TIMER_CTRL (*(volatile uint32_t*)(HTPW_TIMER0_BASE + 0x0u))
#define HTPW_TIMER_VALUE (*(volatile uint32_t*)(HTPW_TIMER0_BASE + 0x4u))
#define HTPW_TIMER_RELOAD (*(volatile uint32_t*)(HTPW_TIMER0_BASE + 0x8u))
#define HTPW_TIMER_ENABLE 1u

extern void initialise_monitor_handles(void);
extern void __libc_init_array(void);
extern int main(void); /* the firmware's (C++ does not mangle main) */
void _start(void) __attribute__((noreturn));
void HardFault_Handler(void);
void _init(void);
void _fini(void);

static uint32_t htpw_ticks_origin;

void htpw_m4_ticks_start(void) {
  HTPW_TIMER_CTRL = 0u;
  HTPW_TIMER_RELOAD = 0xFFFFFFFFu;
  HTPW_TIMER_VALUE = 0xFFFFFFFFu;
  HTPW_TIMER_CTRL = HTPW_TIMER_ENABLE;
  htpw_ticks_origin = HTPW_TIMER_VALUE;
}

uint32_t htpw_m4_ticks(void) { return htpw_ticks_origin - HTPW_TIMER_VALUE; }

/* A fault ends the run with status 5 and a line on stderr instead of spinning until QEMU's
 * timeout (CMSIS's default HardFault_Handler is an endless loop; this one overrides the weak one). */
void HardFault_Handler(void) {
  static const char message[] = "htpw_m4: hard fault\n";
  fwrite(message, 1, sizeof(message) - 1, stderr);
  _exit(5);
}

/* -nostartfiles drops crtbegin, which defines the handle C++ registers global destructors with. */
void* __dso_handle = &__dso_handle;

/* -nostartfiles drops crti/crtn, which define these; __libc_init_array calls _init. */
void _init(void) {}
void _fini(void) {}

void _start(void) {
  initialise_monitor_handles();
  __libc_init_array();
  exit(main());
}
