/* The HyperTinyPW TFLM kernel (docs/format.md), after TFLM's kernels/decode.cc.
 *
 * Adapter only: the options and inputs are described to the C core (htpw_op.h), which validates
 * and synthesizes; this file maps TFLM's tensors and phases onto it.
 */
#include "htpw_kernel.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "flatbuffers/flatbuffers.h"
#include "flatbuffers/flexbuffers.h"
#include "htpw_op.h"
#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/kernels/kernel_util.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tensorflow/lite/micro/micro_log.h"

namespace tflite {
namespace {

constexpr int kMaxInputs = HTPW_PAPER_FACTORIZED_INPUTS;  // the longest input list of §2

struct OpData {
  htpw_options options;
  htpw_status status;  // Init's parse result; Prepare returns it (Init cannot fail)
  htpw_input inputs[kMaxInputs];
  int32_t n_inputs;
  int8_t* kernel;  // boot/lazy: persistent buffer; stream: nullptr (the planned output is used)
  int32_t kernel_bytes;
  int32_t scratch_bytes;
  int scratch_index;  // lazy/stream: arena scratch buffer for the synthesis
  int32_t tensor_index;  // the op's output tensor
  bool synthesized;
};

HyperTinyPWObserver* Observer(TfLiteContext* context) {
  auto* payload = static_cast<HyperTinyPWObserver*>(GetMicroContext(context)->external_context());
  if (payload == nullptr || payload->magic != HyperTinyPWObserver::kMagic) return nullptr;
  return payload;
}

// Records a failure (first one wins in the observer) and returns kTfLiteError.
TfLiteStatus Fail(TfLiteContext* context, OpData* data, htpw_status status) {
  data->status = status;
  HyperTinyPWObserver* observer = Observer(context);
  if (observer != nullptr && observer->status == HTPW_OK) {
    observer->status = status;
    observer->failed_tensor = data->tensor_index;
  }
  MicroPrintf("%s: %s (output tensor %d)", HTPW_CUSTOM_OP_NAME, htpw_status_name(status),
              static_cast<int>(data->tensor_index));
  return kTfLiteError;
}

void Notify(TfLiteContext* context, const OpData* data, const int8_t* kernel) {
  HyperTinyPWObserver* observer = Observer(context);
  if (observer == nullptr) return;
  observer->syntheses += 1;
  if (observer->on_kernel != nullptr) {
    observer->on_kernel(observer->user, data->tensor_index, kernel, data->kernel_bytes);
  }
}

// Parses the flexbuffer map into data->options; every key once, each with its type.
htpw_status ParseOptions(const uint8_t* buffer, size_t length, htpw_options* options) {
  if (buffer == nullptr || length == 0 || !flexbuffers::VerifyBuffer(buffer, length, nullptr)) {
    return HTPW_ERR_OPTIONS_FORMAT;
  }
  const flexbuffers::Reference root = flexbuffers::GetRoot(buffer, length);
  if (!root.IsMap()) return HTPW_ERR_OPTIONS_FORMAT;
  const flexbuffers::Map map = root.AsMap();
  const flexbuffers::TypedVector keys = map.Keys();
  const flexbuffers::Vector values = map.Values();
  uint32_t seen = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    const char* key = keys[i].AsKey();
    htpw_option_id id;
    htpw_status status = htpw_option_from_key(key, static_cast<int32_t>(strlen(key)), &id);
    if (status != HTPW_OK) return status;
    if (seen & (1u << id)) return HTPW_ERR_OPTIONS_FORMAT;  // a key twice: not a valid map
    seen |= 1u << id;
    const flexbuffers::Reference value = values[i];
    if (htpw_option_is_string(id)) {
      if (!value.IsString()) return HTPW_ERR_OPTION_TYPE;
      const flexbuffers::String text = value.AsString();
      const int32_t len = static_cast<int32_t>(text.length());
      status = id == HTPW_OPTION_MODE ? htpw_mode_from_string(text.c_str(), len, &options->mode)
                                      : htpw_strategy_from_string(text.c_str(), len, &options->strategy);
    } else if (value.IsInt()) {
      status = htpw_options_set_int(options, id, value.AsInt64());
    } else if (value.IsUInt()) {
      const uint64_t raw = value.AsUInt64();
      status = raw > static_cast<uint64_t>(INT64_MAX) ? HTPW_ERR_OPTION_TYPE
                                                       : htpw_options_set_int(options, id, static_cast<int64_t>(raw));
    } else {
      status = HTPW_ERR_OPTION_TYPE;
    }
    if (status != HTPW_OK) return status;
  }
  if (seen != (1u << HTPW_OPTION_COUNT) - 1u) return HTPW_ERR_OPTION_MISSING;
  return HTPW_OK;
}

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data == nullptr) return nullptr;  // Prepare reports the missing op data
  memset(data, 0, sizeof(OpData));
  data->scratch_index = -1;
  data->tensor_index = -1;
  data->status = ParseOptions(reinterpret_cast<const uint8_t*>(buffer), length, &data->options);
  return data;
}

// Length of a constant tensor's buffer in the model. TFLM points a constant tensor's data at the
// payload of the flatbuffer vector Buffer.data (micro_allocator.cc, GetFlatbufferTensorBuffer),
// whose uoffset_t length prefix sits just before it. TfLiteTensor::bytes is computed from the
// shape instead (and counts one byte per INT4 element), so it cannot reveal a truncated buffer.
size_t FlatbufferBufferBytes(const void* data) {
  const uint8_t* payload = static_cast<const uint8_t*>(data);
  return flatbuffers::ReadScalar<flatbuffers::uoffset_t>(payload - sizeof(flatbuffers::uoffset_t));
}

htpw_status DescribeInput(const TfLiteTensor* tensor, htpw_input* input) {
  if (tensor->data.data == nullptr || !IsConstantTensor(tensor)) return HTPW_ERR_INPUT_CONSTANT;
  switch (tensor->type) {
    case kTfLiteInt8: input->type = HTPW_TYPE_INT8; break;
    case kTfLiteInt4: input->type = HTPW_TYPE_INT4; break;
    case kTfLiteInt32: input->type = HTPW_TYPE_INT32; break;
    case kTfLiteUInt8: input->type = HTPW_TYPE_UINT8; break;
    default: return HTPW_ERR_INPUT_TYPE;
  }
  const TfLiteIntArray* dims = tensor->dims;
  if (dims == nullptr || dims->size < 0 || dims->size > HTPW_MAX_RANK) return HTPW_ERR_INPUT_SHAPE;
  input->rank = dims->size;
  for (int d = 0; d < HTPW_MAX_RANK; ++d) input->dims[d] = d < dims->size ? dims->data[d] : 0;
  const size_t bytes = FlatbufferBufferBytes(tensor->data.data);
  if (bytes > static_cast<size_t>(INT32_MAX)) return HTPW_ERR_INPUT_BYTES;
  input->data = tensor->data.data;
  input->bytes = static_cast<int32_t>(bytes);
  return HTPW_OK;
}

// The output is the consuming CONV_2D's filter: INT8 [c_out, 1, 1, c_in], c_out scales, no buffer.
htpw_status CheckOutput(const TfLiteTensor* output, const htpw_options& options) {
  const TfLiteIntArray* dims = output->dims;
  if (output->type != kTfLiteInt8 || dims == nullptr || dims->size != 4 || dims->data[0] != options.c_out ||
      dims->data[1] != 1 || dims->data[2] != 1 || dims->data[3] != options.c_in) {
    return HTPW_ERR_OUTPUT;
  }
  if (IsConstantTensor(output) || output->quantization.type != kTfLiteAffineQuantization) return HTPW_ERR_OUTPUT;
  const auto* quant = static_cast<const TfLiteAffineQuantization*>(output->quantization.params);
  if (quant == nullptr || quant->scale == nullptr || quant->scale->size != options.c_out) return HTPW_ERR_OUTPUT;
  return HTPW_OK;
}

// Validates inputs and output, sizes the buffers and (boot) synthesizes. Temp tensors are owned
// by the caller, which releases them on every path.
TfLiteStatus PrepareWith(TfLiteContext* context, TfLiteNode* node, OpData* data, TfLiteTensor** inputs,
                         TfLiteTensor** output) {
  MicroContext* micro_context = GetMicroContext(context);
  const int n_inputs = NumInputs(node);
  if (n_inputs < 1 || n_inputs > kMaxInputs) return Fail(context, data, HTPW_ERR_INPUT_COUNT);
  data->n_inputs = n_inputs;
  for (int i = 0; i < n_inputs; ++i) {
    inputs[i] = micro_context->AllocateTempInputTensor(node, i);
    if (inputs[i] == nullptr) return Fail(context, data, HTPW_ERR_INPUT_CONSTANT);
    const htpw_status status = DescribeInput(inputs[i], &data->inputs[i]);
    if (status != HTPW_OK) return Fail(context, data, status);
  }
  htpw_status status = htpw_op_validate(&data->options, data->inputs, n_inputs);
  if (status != HTPW_OK) return Fail(context, data, status);
  *output = micro_context->AllocateTempOutputTensor(node, 0);
  if (*output == nullptr) return Fail(context, data, HTPW_ERR_OUTPUT);
  status = CheckOutput(*output, data->options);
  if (status == HTPW_OK) status = htpw_op_kernel_bytes(&data->options, &data->kernel_bytes);
  if (status == HTPW_OK) {
    status = htpw_op_scratch_bytes(&data->options, data->inputs, n_inputs, &data->scratch_bytes);
  }
  if (status != HTPW_OK) return Fail(context, data, status);
  if (static_cast<size_t>(data->kernel_bytes) != (*output)->bytes) return Fail(context, data, HTPW_ERR_OUTPUT);

  HyperTinyPWObserver* observer = Observer(context);
  const htpw_mode_id mode = data->options.mode;
  if (observer != nullptr) observer->ops[mode] += 1;
  if (mode == HTPW_MODE_ID_STREAM) {
    // The output stays an ordinary planned tensor; only the synthesis scratch is requested.
    if (observer != nullptr) observer->stream_kernel_bytes += data->kernel_bytes;
    if (data->scratch_bytes > 0) {
      TF_LITE_ENSURE_STATUS(context->RequestScratchBufferInArena(context, data->scratch_bytes, &data->scratch_index));
    }
    return kTfLiteOk;
  }

  // boot / lazy: a persistent kernel the output points at, so the planner does not place it
  // (kernels/decode.cc, SetOutputTensorData).
  data->kernel = static_cast<int8_t*>(micro_context->AllocatePersistentBuffer(data->kernel_bytes));
  if (data->kernel == nullptr) return Fail(context, data, HTPW_ERR_NULL);
  TfLiteEvalTensor* output_eval = micro::GetEvalOutput(context, node, 0);
  TF_LITE_ENSURE(context, output_eval != nullptr);
  output_eval->data.data = data->kernel;
  (*output)->data.data = data->kernel;
  if (observer != nullptr) observer->cached_kernel_bytes += data->kernel_bytes;

  if (mode == HTPW_MODE_ID_LAZY) {
    if (data->scratch_bytes > 0) {
      TF_LITE_ENSURE_STATUS(context->RequestScratchBufferInArena(context, data->scratch_bytes, &data->scratch_index));
    }
    return kTfLiteOk;
  }
  uint8_t* scratch = nullptr;
  if (data->scratch_bytes > 0) {
    scratch = micro_context->AllocateTempBuffer(data->scratch_bytes, alignof(int32_t));
    if (scratch == nullptr) return Fail(context, data, HTPW_ERR_SCRATCH);
  }
  status = htpw_op_synthesize(&data->options, data->inputs, data->n_inputs, scratch, data->scratch_bytes,
                              data->kernel, data->kernel_bytes);
  if (scratch != nullptr) micro_context->DeallocateTempBuffer(scratch);
  if (status != HTPW_OK) return Fail(context, data, status);
  data->synthesized = true;
  Notify(context, data, data->kernel);
  return kTfLiteOk;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  TF_LITE_ENSURE(context, node->user_data != nullptr);
  auto* data = static_cast<OpData*>(node->user_data);
  if (NumOutputs(node) != 1) return Fail(context, data, HTPW_ERR_OUTPUT);
  data->tensor_index = node->outputs->data[0];
  if (data->status != HTPW_OK) return Fail(context, data, data->status);

  MicroContext* micro_context = GetMicroContext(context);
  TfLiteTensor* inputs[kMaxInputs] = {};
  TfLiteTensor* output = nullptr;
  const TfLiteStatus result = PrepareWith(context, node, data, inputs, &output);
  for (TfLiteTensor* tensor : inputs) {
    if (tensor != nullptr) micro_context->DeallocateTempTfLiteTensor(tensor);
  }
  if (output != nullptr) micro_context->DeallocateTempTfLiteTensor(output);
  return result;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  TFLITE_DCHECK(data != nullptr && data->status == HTPW_OK);
  if (data->synthesized) return kTfLiteOk;  // boot, or lazy after its first Eval
  int8_t* kernel = data->kernel;
  if (data->options.mode == HTPW_MODE_ID_STREAM) {
    TfLiteEvalTensor* output = micro::GetEvalOutput(context, node, 0);
    TFLITE_DCHECK(output != nullptr);
    kernel = micro::GetTensorData<int8_t>(output);
  }
  void* scratch = data->scratch_index >= 0 ? context->GetScratchBuffer(context, data->scratch_index) : nullptr;
  const htpw_status status = htpw_op_synthesize(&data->options, data->inputs, data->n_inputs, scratch,
                                                data->scratch_bytes, kernel, data->kernel_bytes);
  if (status != HTPW_OK) return Fail(context, data, status);
  data->synthesized = data->options.mode == HTPW_MODE_ID_LAZY;
  Notify(context, data, kernel);
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration Register_HYPER_TINYPW() { return micro::RegisterOp(Init, Prepare, Eval); }

}  // namespace tflite
