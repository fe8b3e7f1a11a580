/* Host runner: a .tflite and a batch of int8 examples (.npy) through TFLM, outputs to a .npy.
 *
 *   htpw_host_runner --model=M.tflite --input=X.npy --output=Y.npy [--kernels=K.bin] [--arena_bytes=N]
 *
 * Prints one JSON object on stdout: the outputs' SHA-256, arena bytes used, HyperTinyPW ops per
 * mode, cached (persistent) and streamed kernel bytes, the number of re-syntheses whose bytes
 * differed from the op's previous ones (kernel_changes, 0 when stream mode is sound), and one
 * entry per synthesized kernel.
 * --kernels writes every synthesized kernel (the last synthesis of each op) as records
 * [int32 tensor index][int32 byte count][bytes], little-endian, for byte comparison with expand.
 * Exit status: 0 ok; 2 bad arguments or files; 3 the model failed (the JSON's "status" names
 * the htpw_status, e.g. HTPW_ERR_CRC or HTPW_ERR_FILE_CRC, or the runner's error; "phase" is
 * "verify" for a file refused before the interpreter is built, see htpw_runner.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "htpw_op.h"
#include "htpw_runner.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {

constexpr size_t kDefaultArenaBytes = 16u << 20;

struct Args {
  std::string model, input, output, kernels;
  size_t arena_bytes = kDefaultArenaBytes;
};

int Usage(const char* message) {
  fprintf(stderr, "htpw_host_runner: error: %s\n", message);
  fprintf(stderr, "usage: htpw_host_runner --model=M.tflite --input=X.npy --output=Y.npy "
                  "[--kernels=K.bin] [--arena_bytes=N]\n");
  return 2;
}

bool ReadFile(const std::string& path, std::vector<uint8_t>* out) {
  FILE* f = fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  uint8_t chunk[1 << 16];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) out->insert(out->end(), chunk, chunk + n);
  const bool ok = ferror(f) == 0;
  fclose(f);
  return ok;
}

// A C-order int8 .npy (format 1.x-3.x); on success `shape` and `offset` of the data are set.
bool ParseNpy(const std::vector<uint8_t>& file, std::vector<long>* shape, size_t* offset, std::string* why) {
  if (file.size() < 10 || memcmp(file.data(), "\x93NUMPY", 6) != 0) return *why = "not a .npy file", false;
  const int major = file[6];
  size_t header_len, start;
  if (major == 1) {
    header_len = file[8] | (file[9] << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (file.size() < 12) return *why = "truncated .npy header", false;
    header_len = file[8] | (file[9] << 8) | (file[10] << 16) | (static_cast<size_t>(file[11]) << 24);
    start = 12;
  } else {
    return *why = "unsupported .npy version", false;
  }
  if (start + header_len > file.size()) return *why = "truncated .npy header", false;
  const std::string header(reinterpret_cast<const char*>(file.data() + start), header_len);
  if (header.find("'descr': '|i1'") == std::string::npos && header.find("'descr': '<i1'") == std::string::npos) {
    return *why = "dtype is not int8", false;
  }
  if (header.find("'fortran_order': False") == std::string::npos) return *why = "not C order", false;
  const size_t open = header.find("'shape': (");
  const size_t close = header.find(')', open);
  if (open == std::string::npos || close == std::string::npos) return *why = "no shape in the .npy header", false;
  const char* p = header.c_str() + open + 10;
  const char* end = header.c_str() + close;
  while (p < end) {
    char* next;
    const long dim = strtol(p, &next, 10);
    if (next == p) break;
    shape->push_back(dim);
    p = next;
    while (p < end && (*p == ',' || *p == ' ')) ++p;
  }
  *offset = start + header_len;
  return true;
}

bool WriteNpy(const std::string& path, const std::vector<long>& shape, const std::vector<int8_t>& data) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dims += ",";  // a 1-tuple
  std::string header = "{'descr': '|i1', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  FILE* f = fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const uint8_t preamble[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<uint8_t>(header.size() & 0xff),
                                static_cast<uint8_t>(header.size() >> 8)};
  bool ok = fwrite(preamble, 1, 10, f) == 10 && fwrite(header.data(), 1, header.size(), f) == header.size() &&
            fwrite(data.data(), 1, data.size(), f) == data.size();
  ok = (fclose(f) == 0) && ok;
  return ok;
}

std::string JsonString(const char* s) {
  std::string out = "\"";
  for (; s != nullptr && *s; ++s) {
    if (*s == '"' || *s == '\\') out += '\\';
    if (static_cast<unsigned char>(*s) < 0x20) continue;
    out += *s;
  }
  return out + "\"";
}

std::map<int32_t, std::vector<int8_t>> g_kernels;  // host only: the debug hook's sink
int g_kernel_changes = 0;  // re-syntheses (lazy/stream) whose bytes differ from the op's previous ones

void OnKernel(void*, int32_t tensor_index, const int8_t* kernel, int32_t bytes) {
  std::vector<int8_t>& last = g_kernels[tensor_index];
  if (!last.empty() && (last.size() != static_cast<size_t>(bytes) || memcmp(last.data(), kernel, bytes) != 0)) {
    ++g_kernel_changes;
  }
  last.assign(kernel, kernel + bytes);
}

int Fail(const htpw::Runner& runner, htpw::RunError error, const char* phase) {
  const char* name = runner.ErrorName(error);
  phase = htpw::RunErrorPhase(error, phase);
  fprintf(stderr, "htpw_host_runner: error: %s failed: %s\n", phase, name);
  printf("{\"status\": %s, \"phase\": %s, \"failed_tensor\": %d}\n", JsonString(name).c_str(),
         JsonString(phase).c_str(), static_cast<int>(runner.observer().failed_tensor));
  return 3;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    const std::string key = arg.substr(0, eq), value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    if (key == "--model") args.model = value;
    else if (key == "--input") args.input = value;
    else if (key == "--output") args.output = value;
    else if (key == "--kernels") args.kernels = value;
    else if (key == "--arena_bytes") args.arena_bytes = strtoull(value.c_str(), nullptr, 10);
    else return Usage(("unknown argument " + arg).c_str());
  }
  if (args.model.empty() || args.input.empty() || args.output.empty()) return Usage("--model, --input, --output");
  if (args.arena_bytes == 0) return Usage("--arena_bytes must be a positive integer");

  std::vector<uint8_t> file;
  if (!ReadFile(args.model, &file)) return Usage(("cannot read --model=" + args.model).c_str());
  // 16-byte aligned copy: TFLM reads buffers in place.
  // Declared before the Runner, so freed after it: the interpreter reads both until destroyed.
  std::unique_ptr<uint8_t, decltype(&free)> model_buffer(
      static_cast<uint8_t*>(aligned_alloc(16, (file.size() + 15) / 16 * 16 + 16)), &free);
  uint8_t* model = model_buffer.get();
  memcpy(model, file.data(), file.size());

  std::vector<uint8_t> npy;
  std::vector<long> shape;
  size_t offset = 0;
  std::string why;
  if (!ReadFile(args.input, &npy)) return Usage(("cannot read --input=" + args.input).c_str());
  if (!ParseNpy(npy, &shape, &offset, &why) || shape.empty()) {
    return Usage(("--input=" + args.input + ": " + (why.empty() ? "no batch dimension" : why)).c_str());
  }

  std::unique_ptr<uint8_t, decltype(&free)> arena_buffer(
      static_cast<uint8_t*>(aligned_alloc(16, (args.arena_bytes + 15) / 16 * 16)), &free);
  uint8_t* arena = arena_buffer.get();
  htpw::Runner runner;
  runner.observer().on_kernel = OnKernel;
  htpw::RunError error = runner.Setup(model, file.size(), arena, args.arena_bytes);
  if (error != htpw::RunError::kNone) return Fail(runner, error, "setup");
  const size_t setup_syntheses = runner.observer().syntheses;

  const long n = shape[0];
  const size_t in_bytes = runner.input_bytes(), out_bytes = runner.output_bytes();
  if (npy.size() - offset != static_cast<size_t>(n) * in_bytes) {
    return Usage(("--input=" + args.input + ": examples of " + std::to_string((npy.size() - offset) / (n ? n : 1)) +
                  " bytes, the model takes " + std::to_string(in_bytes)).c_str());
  }
  std::vector<int8_t> outputs(static_cast<size_t>(n) * out_bytes);
  for (long i = 0; i < n; ++i) {
    error = runner.Invoke(reinterpret_cast<const int8_t*>(npy.data() + offset) + i * in_bytes, in_bytes,
                          outputs.data() + i * out_bytes, out_bytes);
    if (error != htpw::RunError::kNone) return Fail(runner, error, "invoke");
  }
  std::vector<long> out_shape = {n};
  const TfLiteTensor* output = runner.interpreter()->output(0);
  for (int d = 1; d < output->dims->size; ++d) out_shape.push_back(output->dims->data[d]);
  if (!WriteNpy(args.output, out_shape, outputs)) return Usage(("cannot write --output=" + args.output).c_str());

  htpw::Sha256 sha;
  sha.Update(outputs.data(), outputs.size());
  char hex[65];
  sha.FinalHex(hex);

  const tflite::Model* fb = tflite::GetModel(model);
  const auto* tensors = fb->subgraphs()->Get(0)->tensors();
  std::string kernels = "[";
  FILE* dump = args.kernels.empty() ? nullptr : fopen(args.kernels.c_str(), "wb");
  if (!args.kernels.empty() && dump == nullptr) return Usage(("cannot write --kernels=" + args.kernels).c_str());
  for (const auto& [index, bytes] : g_kernels) {
    const auto* tensor = tensors->Get(index);
    kernels += (kernels.size() > 1 ? ", " : "") + std::string("{\"tensor\": ") + std::to_string(index) +
               ", \"name\": " + JsonString(tensor->name() ? tensor->name()->c_str() : "") +
               ", \"bytes\": " + std::to_string(bytes.size()) +
               ", \"crc32\": " + std::to_string(htpw_crc32(0, bytes.data(), static_cast<int32_t>(bytes.size()))) + "}";
    if (dump != nullptr) {
      const int32_t head[2] = {index, static_cast<int32_t>(bytes.size())};
      fwrite(head, sizeof(int32_t), 2, dump);
      fwrite(bytes.data(), 1, bytes.size(), dump);
    }
  }
  if (dump != nullptr && fclose(dump) != 0) return Usage(("cannot write --kernels=" + args.kernels).c_str());
  kernels += "]";

  const tflite::HyperTinyPWObserver& obs = runner.observer();
  printf("{\"status\": \"OK\", \"target\": \"host\", \"examples\": %ld, \"outputs_sha256\": \"%s\", "
         "\"arena_bytes\": %zu, \"arena_used_bytes\": %zu, \"input_bytes\": %zu, \"output_bytes\": %zu, "
         "\"ops\": {\"boot\": %d, \"lazy\": %d, \"stream\": %d}, \"cached_kernel_bytes\": %d, "
         "\"stream_kernel_bytes\": %d, \"setup_syntheses\": %zu, \"syntheses\": %d, \"kernel_changes\": %d, "
         "\"kernels\": %s}\n",
         n, hex, args.arena_bytes, runner.arena_used_bytes(), in_bytes, out_bytes, obs.ops[HTPW_MODE_ID_BOOT],
         obs.ops[HTPW_MODE_ID_LAZY], obs.ops[HTPW_MODE_ID_STREAM], obs.cached_kernel_bytes, obs.stream_kernel_bytes,
         setup_syntheses, obs.syntheses, g_kernel_changes, kernels.c_str());
  return 0;
}
