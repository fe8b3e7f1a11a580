/* Shared inference code (see htpw_runner.h). */
#include "htpw_runner.h"

#include <new>
#include <string.h>

#include "flatbuffers/flatbuffers.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace htpw {

TfLiteStatus AddModelOps(Resolver& resolver) {
  TF_LITE_ENSURE_STATUS(tflite::AddHyperTinyPW(resolver));
  TF_LITE_ENSURE_STATUS(resolver.AddDecode());
  TF_LITE_ENSURE_STATUS(resolver.AddConv2D());
  TF_LITE_ENSURE_STATUS(resolver.AddDepthwiseConv2D());
  TF_LITE_ENSURE_STATUS(resolver.AddMean());
  TF_LITE_ENSURE_STATUS(resolver.AddPack());
  TF_LITE_ENSURE_STATUS(resolver.AddReshape());
  TF_LITE_ENSURE_STATUS(resolver.AddShape());
  TF_LITE_ENSURE_STATUS(resolver.AddStridedSlice());
  return kTfLiteOk;
}

const char* RunErrorName(RunError error) {
  switch (error) {
    case RunError::kNone: return "OK";
    case RunError::kFileIntegrity: return "FILE_INTEGRITY";
    case RunError::kModelFormat: return "MODEL_FORMAT";
    case RunError::kModelVersion: return "MODEL_VERSION";
    case RunError::kAllocate: return "ALLOCATE_TENSORS";
    case RunError::kHyperTinyPW: return "HYPER_TINYPW";
    case RunError::kInputShape: return "INPUT_SHAPE";
    case RunError::kOutputShape: return "OUTPUT_SHAPE";
    case RunError::kInvoke: return "INVOKE";
  }
  return "UNKNOWN";
}

const char* RunErrorPhase(RunError error, const char* phase) {
  return error == RunError::kFileIntegrity || error == RunError::kModelFormat ? "verify" : phase;
}

Runner::Runner() { AddModelOps(resolver_); }

Runner::~Runner() {
  if (interpreter_ != nullptr) interpreter_->~MicroInterpreter();
}

namespace {

// Every index the interpreter follows without a bounds check of its own (flatbuffers' Vector::Get
// only asserts, and a device build has no assertions) lies inside its table.
template <typename Indices>
bool IndicesBelow(const Indices* indices, uint32_t limit, bool optional) {
  if (indices == nullptr) return true;
  for (const auto index : *indices) {
    if (optional && index == -1) continue;
    if (index < 0 || static_cast<uint32_t>(index) >= limit) return false;
  }
  return true;
}

bool IndicesInRange(const tflite::Model* model) {
  const auto* subgraphs = model->subgraphs();
  const auto* codes = model->operator_codes();
  const auto* buffers = model->buffers();
  if (subgraphs == nullptr || subgraphs->size() == 0 || codes == nullptr || buffers == nullptr) return false;
  const uint32_t n_buffers = buffers->size();
  if (model->metadata() != nullptr) {
    for (const auto* meta : *model->metadata()) {
      if (meta == nullptr || meta->buffer() >= n_buffers) return false;
    }
  }
  for (const auto* subgraph : *subgraphs) {
    if (subgraph == nullptr || subgraph->tensors() == nullptr || subgraph->operators() == nullptr) return false;
    const uint32_t n_tensors = subgraph->tensors()->size();
    for (const auto* tensor : *subgraph->tensors()) {
      if (tensor == nullptr || tensor->buffer() >= n_buffers) return false;
    }
    if (!IndicesBelow(subgraph->inputs(), n_tensors, false) || !IndicesBelow(subgraph->outputs(), n_tensors, false)) {
      return false;
    }
    for (const auto* op : *subgraph->operators()) {
      if (op == nullptr || op->opcode_index() >= codes->size()) return false;
      if (!IndicesBelow(op->inputs(), n_tensors, true) || !IndicesBelow(op->outputs(), n_tensors, true) ||
          !IndicesBelow(op->intermediates(), n_tensors, true)) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace

RunError Runner::Verify(const void* model_data, size_t model_bytes) {
  verified_ = nullptr;
  file_status_ = htpw_file_check(static_cast<const uint8_t*>(model_data), model_bytes, &file_info_);
  if (file_status_ != HTPW_OK) return RunError::kFileIntegrity;
#ifndef HTPW_RUNNER_NO_VERIFIER
  flatbuffers::Verifier verifier(static_cast<const uint8_t*>(model_data), model_bytes);
  if (!tflite::VerifyModelBuffer(verifier)) return RunError::kModelFormat;
#endif
  if (!IndicesInRange(tflite::GetModel(model_data))) return RunError::kModelFormat;
  verified_ = model_data;
  return RunError::kNone;
}

RunError Runner::Setup(const void* model_data, size_t model_bytes, uint8_t* arena, size_t arena_bytes) {
  if (verified_ != model_data) {
    const RunError error = Verify(model_data, model_bytes);
    if (error != RunError::kNone) return error;
  }
  const tflite::Model* model = tflite::GetModel(model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) return RunError::kModelVersion;
  interpreter_ = new (storage_) tflite::MicroInterpreter(model, resolver_, arena, arena_bytes);
  if (interpreter_->SetMicroExternalContext(&observer_) != kTfLiteOk) return RunError::kAllocate;
  if (interpreter_->AllocateTensors() != kTfLiteOk) {
    return observer_.status != HTPW_OK ? RunError::kHyperTinyPW : RunError::kAllocate;
  }
  if (interpreter_->inputs_size() != 1 || interpreter_->input(0)->type != kTfLiteInt8) return RunError::kInputShape;
  if (interpreter_->outputs_size() != 1 || interpreter_->output(0)->type != kTfLiteInt8) return RunError::kOutputShape;
  return RunError::kNone;
}

size_t Runner::input_bytes() const { return interpreter_->input(0)->bytes; }
size_t Runner::output_bytes() const { return interpreter_->output(0)->bytes; }
size_t Runner::arena_used_bytes() const { return interpreter_->arena_used_bytes(); }

const char* Runner::ErrorName(RunError error) const {
  if (error == RunError::kFileIntegrity) return htpw_status_name(file_status_);
  return error == RunError::kHyperTinyPW ? htpw_status_name(observer_.status) : RunErrorName(error);
}

RunError Runner::Invoke(const int8_t* input, size_t input_size, int8_t* output, size_t output_size) {
  if (input_size != input_bytes()) return RunError::kInputShape;
  if (output_size != output_bytes()) return RunError::kOutputShape;
  memcpy(interpreter_->input(0)->data.int8, input, input_size);
  if (interpreter_->Invoke() != kTfLiteOk) {
    return observer_.status != HTPW_OK ? RunError::kHyperTinyPW : RunError::kInvoke;
  }
  memcpy(output, interpreter_->output(0)->data.int8, output_size);
  return RunError::kNone;
}

// --- SHA-256 ------------------------------------------------------------------------------

namespace {
constexpr uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline uint32_t Rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
}  // namespace

Sha256::Sha256()
    : state_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19},
      buffer_{} {}

void Sha256::Block(const uint8_t* p) {
  uint32_t w[64];
  for (int i = 0; i < 16; ++i) {
    w[i] = (uint32_t{p[4 * i]} << 24) | (uint32_t{p[4 * i + 1]} << 16) | (uint32_t{p[4 * i + 2]} << 8) | p[4 * i + 3];
  }
  for (int i = 16; i < 64; ++i) {
    const uint32_t s0 = Rotr(w[i - 15], 7) ^ Rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    const uint32_t s1 = Rotr(w[i - 2], 17) ^ Rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3];
  uint32_t e = state_[4], f = state_[5], g = state_[6], h = state_[7];
  for (int i = 0; i < 64; ++i) {
    const uint32_t t1 = h + (Rotr(e, 6) ^ Rotr(e, 11) ^ Rotr(e, 25)) + ((e & f) ^ (~e & g)) + kRound[i] + w[i];
    const uint32_t t2 = (Rotr(a, 2) ^ Rotr(a, 13) ^ Rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
  }
  state_[0] += a; state_[1] += b; state_[2] += c; state_[3] += d;
  state_[4] += e; state_[5] += f; state_[6] += g; state_[7] += h;
}

void Sha256::Update(const void* data, size_t bytes) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  length_ += bytes;
  while (bytes > 0) {
    const size_t take = bytes < 64 - used_ ? bytes : 64 - used_;
    memcpy(buffer_ + used_, p, take);
    used_ += take;
    p += take;
    bytes -= take;
    if (used_ == 64) {
      Block(buffer_);
      used_ = 0;
    }
  }
}

void Sha256::FinalHex(char out[65]) {
  const uint64_t bits = length_ * 8;
  const uint8_t one = 0x80, zero = 0;
  Update(&one, 1);
  while (used_ != 56) Update(&zero, 1);
  uint8_t tail[8];
  for (int i = 0; i < 8; ++i) tail[i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
  Update(tail, 8);
  static const char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) {
    const uint8_t byte = static_cast<uint8_t>(state_[i / 4] >> (24 - 8 * (i % 4)));
    out[2 * i] = kHex[byte >> 4];
    out[2 * i + 1] = kHex[byte & 15];
  }
  out[64] = '\0';
}

}  // namespace htpw
