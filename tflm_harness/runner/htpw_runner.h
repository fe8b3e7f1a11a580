/* The inference code shared by every runner: host (host_main.cc), Cortex-M4 under QEMU (m4/) and
 * the Arduino sketch (arduino/), so what runs under QEMU is what runs on the board.
 *
 * Plain C++ on TFLM: an op resolver with HyperTinyPW, TFLM's DECODE (LUT-compressed files) and
 * the builtins our exported models use, the model's integrity checks (file CRC-32, flatbuffers'
 * Verifier, index ranges) before the interpreter is built, a MicroInterpreter in caller-provided
 * arena memory, invoke on int8 examples, arena statistics, and a SHA-256 of the outputs (the
 * checksum the runners print). No heap, no I/O.
 *
 * -DHTPW_RUNNER_NO_VERIFIER leaves flatbuffers' Verifier out (for a device whose flash cannot
 * hold it; tflm_harness/README.md has its size on the Cortex-M4): the file CRC-32 and the index
 * checks still run.
 */
#ifndef HTPW_RUNNER_H_
#define HTPW_RUNNER_H_

#include <stddef.h>
#include <stdint.h>

#include "htpw_file.h"
#include "htpw_kernel.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

namespace htpw {

// HyperTinyPW, TFLM_DECODE + CONV_2D, DEPTHWISE_CONV_2D, MEAN, PACK, RESHAPE, SHAPE, STRIDED_SLICE
// (tflm_harness/build.py, KERNELS: the library holds exactly these kernels).
constexpr unsigned int kOpCount = 9;
using Resolver = tflite::MicroMutableOpResolver<kOpCount>;
TfLiteStatus AddModelOps(Resolver& resolver);

// What went wrong, when something did (the runners print `name`).
enum class RunError {
  kNone = 0,
  kFileIntegrity,  // htpw_file_check refused the file; file_status() names the htpw_status
  kModelFormat,    // flatbuffers' Verifier refused it, or an index in it points outside its table
  kModelVersion,   // the flatbuffer's schema version is not TFLITE_SCHEMA_VERSION
  kAllocate,       // AllocateTensors failed outside the HyperTinyPW op (arena too small, bad model)
  kHyperTinyPW,    // a HyperTinyPW op failed; observer().status names the htpw_status
  kInputShape,     // input is not one int8 tensor of the size given
  kOutputShape,    // output is not one int8 tensor of the size given
  kInvoke,         // Invoke failed outside the HyperTinyPW op
};
const char* RunErrorName(RunError error);
// "verify" for a file refused before the interpreter is built (kFileIntegrity, kModelFormat), else
// `phase`: the runners report the phase a failure happened in.
const char* RunErrorPhase(RunError error, const char* phase);

class Runner {
 public:
  Runner();
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // Checks `model` (`model_bytes` long, 4-byte aligned): the file CRC-32 (htpw_file_check), then
  // flatbuffers' Verifier, then that every tensor, buffer and operator-code index lies inside its
  // table. Setup calls it unless it already passed for this `model`.
  RunError Verify(const void* model, size_t model_bytes);
  // Verify, then builds the interpreter for `model` (which must outlive the Runner) in `arena`
  // (16-byte aligned) and allocates tensors: boot-mode kernels are synthesized here.
  // `observer.on_kernel` may be set before the call (debug hook: receives every synthesized
  // kernel). Call once.
  RunError Setup(const void* model, size_t model_bytes, uint8_t* arena, size_t arena_bytes);
  // One example: copies `input` (input_bytes()) in, invokes, copies the output (output_bytes()) out.
  RunError Invoke(const int8_t* input, size_t input_size, int8_t* output, size_t output_size);

  size_t input_bytes() const;
  size_t output_bytes() const;
  size_t arena_used_bytes() const;
  // The failing htpw_status name when the error is kHyperTinyPW or kFileIntegrity, else RunErrorName.
  const char* ErrorName(RunError error) const;
  const htpw_file_info& file_info() const { return file_info_; }
  tflite::HyperTinyPWObserver& observer() { return observer_; }
  const tflite::HyperTinyPWObserver& observer() const { return observer_; }
  tflite::MicroInterpreter* interpreter() { return interpreter_; }

 private:
  Resolver resolver_;
  tflite::HyperTinyPWObserver observer_;
  htpw_status file_status_ = HTPW_OK;
  htpw_file_info file_info_ = {};
  const void* verified_ = nullptr;  // the model Verify passed
  alignas(tflite::MicroInterpreter) unsigned char storage_[sizeof(tflite::MicroInterpreter)];
  tflite::MicroInterpreter* interpreter_ = nullptr;
};

// SHA-256 (FIPS 180-4), incremental, for the output checksum printed by every runner.
class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t bytes);
  void FinalHex(char out[65]);  // lowercase hex, NUL-terminated

 private:
  void Block(const uint8_t* block);
  uint32_t state_[8];
  uint8_t buffer_[64];
  uint64_t length_ = 0;
  size_t used_ = 0;
};

}  // namespace htpw

#endif  // HTPW_RUNNER_H_
