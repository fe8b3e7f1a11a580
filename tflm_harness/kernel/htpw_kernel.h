/* The HyperTinyPW custom op for TFLM (docs/format.md): one registration, one resolver helper.
 *
 * The kernel parses its flexbuffer options in Init, validates every option and input in Prepare
 * (htpw_op_validate: types, shapes, true buffer lengths, requant ranges, CRC-32) and makes the
 * INT8 filter of the consuming CONV_2D from the codes and the shared generator:
 *   boot   - in Prepare, into a persistent buffer the output tensor points at (as DECODE does);
 *   lazy   - at the first Eval, into that persistent buffer;
 *   stream - at every Eval, into the output tensor the memory planner placed.
 * Error strings vanish under TF_LITE_STRIP_ERROR_STRINGS; the htpw_status of a failure is kept
 * in the optional HyperTinyPWObserver so the caller can still name it.
 */
#ifndef HTPW_KERNEL_H_
#define HTPW_KERNEL_H_

#include <stdint.h>

#include "htpw_format.h"
#include "htpw_op.h"
#include "tensorflow/lite/micro/micro_common.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

namespace tflite {

// Run-time facts of the HyperTinyPW ops of one interpreter, filled by the kernel when the caller
// passes it with MicroInterpreter::SetMicroExternalContext(&observer) before AllocateTensors.
// The kernel only touches a payload whose `magic` is kHyperTinyPWObserverMagic.
struct HyperTinyPWObserver {
  static constexpr uint32_t kMagic = 0x48545057u;  // "HTPW"
  uint32_t magic = kMagic;
  htpw_status status = HTPW_OK;   // first failure of any HyperTinyPW op
  int32_t failed_tensor = -1;     // output tensor index of the op that failed
  int32_t ops[3] = {0, 0, 0};     // prepared ops per htpw_mode_id (boot, lazy, stream)
  int32_t cached_kernel_bytes = 0;  // persistent kernel buffers (boot + lazy)
  int32_t stream_kernel_bytes = 0;  // kernels planned in the arena (stream), summed over ops
  int32_t syntheses = 0;            // kernels synthesized so far
  // Debug hook, called after every synthesis with the op's output tensor index and its kernel.
  void (*on_kernel)(void* user, int32_t tensor_index, const int8_t* kernel, int32_t bytes) = nullptr;
  void* user = nullptr;
};

TFLMRegistration Register_HYPER_TINYPW();

// Adds the op under its custom name (HTPW_CUSTOM_OP_NAME, the one constant of docs/format.md).
template <unsigned int tOpCount>
TfLiteStatus AddHyperTinyPW(MicroMutableOpResolver<tOpCount>& resolver) {
  const TFLMRegistration registration = Register_HYPER_TINYPW();  // AddCustom copies it
  return resolver.AddCustom(HTPW_CUSTOM_OP_NAME, &registration);
}

}  // namespace tflite

#endif  // HTPW_KERNEL_H_
