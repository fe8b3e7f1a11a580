/* Stands in for the Arduino TFLM library's umbrella header under QEMU (see Arduino.h here). */
