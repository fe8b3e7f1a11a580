// HyperTinyPW on the Arduino Nano 33 BLE: the shared runner (runner/htpw_runner.cc, the same file
// the Cortex-M4 runner runs under QEMU) plus Serial output and micros() timing, nothing else.
//
// tflm_harness/arduino/prepare.py puts this sketch, the runner, the HyperTinyPW kernel and core,
// and the model as a C array (model_data.h/.cc) into one sketch folder; see ../README.md.
// Prints one JSON line: setup and inference times in microseconds, the arena's use, and the
// SHA-256 of the output for an all-zero input, which `hyper-tinypw tflm --target=cortex-m4
// --model=<same file>` (no --input: one all-zero example) prints as outputs_sha256.
#include <Arduino.h>
#include <TensorFlowLite.h>  // makes the IDE pick the TFLM library (Arduino_TensorFlowLite, or one made from a tree)

#include "htpw_runner.h"
#include "model_data.h"

#ifndef HTPW_ARENA_BYTES
#define HTPW_ARENA_BYTES (160 * 1024)  // `hyper-tinypw fit` reports the arena each mode needs
#endif

namespace {

alignas(16) uint8_t g_arena[HTPW_ARENA_BYTES];
htpw::Runner g_runner;
int8_t g_input[4096];
int8_t g_output[256];

void Report(const char* status, unsigned long setup_us, unsigned long first_us, unsigned long steady_us,
            const char* sha256) {
  Serial.print("{\"status\": \"");
  Serial.print(status);
  Serial.print("\", \"setup_us\": ");
  Serial.print(setup_us);
  Serial.print(", \"first_inference_us\": ");
  Serial.print(first_us);
  Serial.print(", \"inference_us\": ");
  Serial.print(steady_us);
  Serial.print(", \"arena_used_bytes\": ");
  Serial.print(static_cast<unsigned long>(g_runner.interpreter() ? g_runner.arena_used_bytes() : 0));
  Serial.print(", \"cached_kernel_bytes\": ");
  Serial.print(static_cast<long>(g_runner.observer().cached_kernel_bytes));
  Serial.print(", \"outputs_sha256\": \"");
  Serial.print(sha256);
  Serial.println("\"}");
}

}  // namespace

void setup() {
  Serial.begin(115200);
  while (!Serial) {
  }
  unsigned long start = micros();
  htpw::RunError error = g_runner.Setup(model_data, model_data_len, g_arena, sizeof(g_arena));
  const unsigned long setup_us = micros() - start;
  if (error != htpw::RunError::kNone) {
    Report(g_runner.ErrorName(error), setup_us, 0, 0, "");
    return;
  }
  const size_t in_bytes = g_runner.input_bytes(), out_bytes = g_runner.output_bytes();
  if (in_bytes > sizeof(g_input) || out_bytes > sizeof(g_output)) {
    Report("IO_BUFFERS_TOO_SMALL", setup_us, 0, 0, "");
    return;
  }
  memset(g_input, 0, in_bytes);
  start = micros();
  error = g_runner.Invoke(g_input, in_bytes, g_output, out_bytes);  // lazy mode synthesizes here
  const unsigned long first_us = micros() - start;
  start = micros();
  if (error == htpw::RunError::kNone) error = g_runner.Invoke(g_input, in_bytes, g_output, out_bytes);
  const unsigned long steady_us = micros() - start;
  if (error != htpw::RunError::kNone) {
    Report(g_runner.ErrorName(error), setup_us, first_us, 0, "");
    return;
  }
  htpw::Sha256 sha;
  sha.Update(g_output, out_bytes);
  char digest[65];
  sha.FinalHex(digest);
  Report("OK", setup_us, first_us, steady_us, digest);
}

void loop() { delay(1000); }
