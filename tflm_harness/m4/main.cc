/* The Cortex-M4 runner under QEMU (tflm_harness/qemu.py): the shared htpw::Runner plus file I/O
 * and instruction counting, nothing else.
 *
 * Semihosting files, relative to the directory QEMU runs in:
 *   model.tflite  in   the model (hyper or folded)
 *   input.bin     in   N examples of input_bytes() int8 values each; absent: one all-zero example
 *   output.bin    out  N outputs of output_bytes() int8 values each
 *   result.json   out  status, arena statistics, the outputs' SHA-256 and the timer ticks of
 *                      the file CRC-32 check alone, of all the file checks (htpw::Runner::Verify),
 *                      of setup (interpreter + AllocateTensors: boot-mode synthesis), of each
 *                      invoke, and of a steady-state invoke (example 0 again, after all the others)
 *   kernels.bin   out  only if the file kernels.request exists: every synthesized kernel as
 *                      [int32 tensor index][int32 byte count][bytes], the host runner's format
 *                      (the hook's file writes make that run's instruction counts meaningless)
 * The keys of result.json follow the host runner's JSON (runner/host_main.cc). The exit status is
 * 0 when result.json was written (a model the runner rejects is reported there by name in
 * "status"), non-zero only when the files themselves could not be read or written.
 */
#include <stdio.h>
#include <string.h>

#include <new>

#include "htpw_runner.h"
#include "m4_platform.h"
#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"

namespace {

// QEMU's mps2-an386 has 16 MB of PSRAM (mps2_an386.ld, section .psram): room for a model larger
// than a real board's flash, and an arena large enough that only the measured use matters.
constexpr size_t kModelCapacity = 4u << 20;
constexpr size_t kInputCapacity = 2u << 20;
constexpr size_t kOutputCapacity = 1u << 20;
constexpr size_t kArenaBytes = 8u << 20;
constexpr int kMaxExamples = 4096;

__attribute__((section(".psram"), aligned(16))) uint8_t g_model[kModelCapacity];
__attribute__((section(".psram"), aligned(16))) int8_t g_inputs[kInputCapacity];
__attribute__((section(".psram"), aligned(16))) int8_t g_outputs[kOutputCapacity];
__attribute__((section(".psram"), aligned(16))) uint8_t g_arena[kArenaBytes];
uint32_t g_invoke_ticks[kMaxExamples];
uint32_t g_steady_ticks = 0;
uint32_t g_file_check_ticks = 0;
uint32_t g_verify_ticks = 0;
int32_t g_setup_syntheses = 0;

FILE* g_kernel_dump = nullptr;

void LogToStderr(const char* s) { fputs(s, stderr); }

void DumpKernel(void*, int32_t tensor_index, const int8_t* kernel, int32_t bytes) {
  const int32_t head[2] = {tensor_index, bytes};
  fwrite(head, sizeof(int32_t), 2, g_kernel_dump);
  fwrite(kernel, 1, static_cast<size_t>(bytes), g_kernel_dump);
}

// Reads the whole file into `buffer`; -1 if it cannot be opened, -2 if it does not fit.
long ReadFile(const char* path, void* buffer, size_t capacity) {
  FILE* file = fopen(path, "rb");
  if (file == nullptr) return -1;
  size_t total = 0;
  size_t got = 0;
  while ((got = fread(static_cast<uint8_t*>(buffer) + total, 1, capacity - total, file)) > 0) {
    total += got;
    if (total == capacity) {
      const bool more = fgetc(file) != EOF;
      fclose(file);
      return more ? -2 : static_cast<long>(total);
    }
  }
  fclose(file);
  return static_cast<long>(total);
}

bool WriteFile(const char* path, const void* data, size_t bytes) {
  FILE* file = fopen(path, "wb");
  if (file == nullptr) return false;
  const bool ok = fwrite(data, 1, bytes, file) == bytes;
  return fclose(file) == 0 && ok;
}

// Writes result.json; `error` is nullptr on success, else names the failure of `phase`.
bool WriteResult(htpw::Runner& runner, const char* error, const char* phase, uint32_t setup_ticks, int examples,
                 const char* sha256) {
  FILE* out = fopen("result.json", "w");
  if (out == nullptr) return false;
  const tflite::HyperTinyPWObserver& obs = runner.observer();
  fprintf(out, "{\"status\": \"%s\", \"phase\": \"%s\", \"failed_tensor\": %ld, ", error ? error : "OK",
          phase, static_cast<long>(obs.failed_tensor));
  const bool ready = runner.interpreter() != nullptr && error == nullptr;
  fprintf(out, "\"arena_used_bytes\": %lu, \"input_bytes\": %lu, \"output_bytes\": %lu, ",
          static_cast<unsigned long>(ready ? runner.arena_used_bytes() : 0),
          static_cast<unsigned long>(ready ? runner.input_bytes() : 0),
          static_cast<unsigned long>(ready ? runner.output_bytes() : 0));
  fprintf(out, "\"cached_kernel_bytes\": %ld, \"stream_kernel_bytes\": %ld, ",
          static_cast<long>(obs.cached_kernel_bytes), static_cast<long>(obs.stream_kernel_bytes));
  fprintf(out, "\"arena_bytes\": %lu, \"setup_syntheses\": %ld, ", static_cast<unsigned long>(kArenaBytes),
          static_cast<long>(g_setup_syntheses));
  fprintf(out, "\"ops\": {\"boot\": %ld, \"lazy\": %ld, \"stream\": %ld}, \"syntheses\": %ld, ",
          static_cast<long>(obs.ops[HTPW_MODE_ID_BOOT]), static_cast<long>(obs.ops[HTPW_MODE_ID_LAZY]),
          static_cast<long>(obs.ops[HTPW_MODE_ID_STREAM]), static_cast<long>(obs.syntheses));
  fprintf(out, "\"examples\": %d, \"outputs_sha256\": \"%s\", \"setup_ticks\": %lu, \"invoke_ticks\": [", examples,
          sha256, static_cast<unsigned long>(setup_ticks));
  for (int i = 0; i < examples; ++i) {
    fprintf(out, "%s%lu", i ? ", " : "", static_cast<unsigned long>(g_invoke_ticks[i]));
  }
  fprintf(out, "], \"steady_invoke_ticks\": %lu, \"file_check_ticks\": %lu, \"verify_ticks\": %lu}\n",
          static_cast<unsigned long>(g_steady_ticks), static_cast<unsigned long>(g_file_check_ticks),
          static_cast<unsigned long>(g_verify_ticks));
  return fclose(out) == 0;
}

// flips.bin mode (one QEMU boot for many corrupted files): records [uint32 offset][uint32 xor] of
// little-endian words. For each, the byte at `offset` of the model is XORed with `xor`, the file
// runs through a fresh Runner (Verify, Setup, every example of input.bin), and the byte is
// restored (nothing writes into the model). One line per record goes to flips.txt:
// "<offset> <status> <phase> <SHA-256 of the outputs, or ->". A fault would stop QEMU here, which
// is what the tests look for.
constexpr int kMaxFlips = 1024;
uint32_t g_flips[2 * kMaxFlips];
alignas(htpw::Runner) unsigned char g_runner_storage[sizeof(htpw::Runner)];

int RunFlips(long model_bytes, long input_file) {
  const long flip_file = ReadFile("flips.bin", g_flips, sizeof(g_flips));
  if (flip_file < 0 || flip_file % 8 != 0) return 3;
  FILE* out = fopen("flips.txt", "w");
  if (out == nullptr) return 4;
  for (long f = 0; f < flip_file / 8; ++f) {
    const uint32_t offset = g_flips[2 * f], mask = g_flips[2 * f + 1];
    if (offset >= static_cast<uint32_t>(model_bytes)) return 3;
    g_model[offset] ^= static_cast<uint8_t>(mask);
    htpw::Runner* runner = new (g_runner_storage) htpw::Runner();
    htpw::RunError status = runner->Setup(g_model, static_cast<size_t>(model_bytes), g_arena, kArenaBytes);
    const char* phase = htpw::RunErrorPhase(status, "setup");
    htpw::Sha256 sha;
    if (status == htpw::RunError::kNone) {
      const size_t in_bytes = runner->input_bytes(), out_bytes = runner->output_bytes();
      const long examples = input_file > 0 && in_bytes > 0 ? input_file / static_cast<long>(in_bytes) : 0;
      if (examples == 0 || static_cast<size_t>(examples) * in_bytes != static_cast<size_t>(input_file) ||
          out_bytes > kOutputCapacity) {
        status = htpw::RunError::kInputShape;
        phase = "input";
      }
      for (long i = 0; status == htpw::RunError::kNone && i < examples; ++i) {
        status = runner->Invoke(g_inputs + i * in_bytes, in_bytes, g_outputs, out_bytes);
        phase = "invoke";
        if (status == htpw::RunError::kNone) sha.Update(g_outputs, out_bytes);
      }
    }
    char digest[65] = "-";
    if (status == htpw::RunError::kNone) sha.FinalHex(digest);
    fprintf(out, "%lu %s %s %s\n", static_cast<unsigned long>(offset), runner->ErrorName(status),
            status == htpw::RunError::kNone ? "done" : phase, digest);
    runner->~Runner();
    g_model[offset] ^= static_cast<uint8_t>(mask);
  }
  return fclose(out) == 0 ? 0 : 4;
}

}  // namespace

int main(void) {
  RegisterDebugLogCallback(LogToStderr);
  htpw_m4_ticks_start();
  const long model_bytes = ReadFile("model.tflite", g_model, kModelCapacity);
  if (model_bytes <= 0) {
    fprintf(stderr, "model.tflite: %s\n", model_bytes == -2 ? "larger than 4 MB" : "cannot read");
    return 3;
  }
  const long input_file = ReadFile("input.bin", g_inputs, kInputCapacity);
  if (input_file == -2) {
    fputs("input.bin: larger than 2 MB\n", stderr);
    return 3;
  }
  FILE* flips = fopen("flips.bin", "rb");
  if (flips != nullptr) {
    fclose(flips);
    return RunFlips(model_bytes, input_file);
  }

  htpw::Runner runner;
  FILE* request = fopen("kernels.request", "rb");
  if (request != nullptr) {
    fclose(request);
    g_kernel_dump = fopen("kernels.bin", "wb");
    if (g_kernel_dump == nullptr) return 4;
    runner.observer().on_kernel = DumpKernel;
  }
  // The file checks, timed on their own: the CRC-32 alone (htpw_file_check), then all of Verify
  // (that CRC again, flatbuffers' Verifier, the index checks); setup_ticks no longer includes them.
  uint32_t start = htpw_m4_ticks();
  htpw_file_check(g_model, static_cast<size_t>(model_bytes), nullptr);
  g_file_check_ticks = htpw_m4_ticks() - start;
  start = htpw_m4_ticks();
  htpw::RunError status = runner.Verify(g_model, static_cast<size_t>(model_bytes));
  g_verify_ticks = htpw_m4_ticks() - start;
  if (status != htpw::RunError::kNone) {
    return WriteResult(runner, runner.ErrorName(status), htpw::RunErrorPhase(status, "verify"), 0, 0, "") ? 0 : 4;
  }
  start = htpw_m4_ticks();
  status = runner.Setup(g_model, static_cast<size_t>(model_bytes), g_arena, kArenaBytes);
  const uint32_t setup_ticks = htpw_m4_ticks() - start;
  g_setup_syntheses = runner.observer().syntheses;
  if (status != htpw::RunError::kNone) {
    return WriteResult(runner, runner.ErrorName(status), htpw::RunErrorPhase(status, "setup"), setup_ticks, 0, "")
               ? 0 : 4;
  }

  const size_t in_bytes = runner.input_bytes();
  const size_t out_bytes = runner.output_bytes();
  long examples = 1;
  if (input_file >= 0) {
    if (in_bytes == 0 || input_file % static_cast<long>(in_bytes) != 0) {
      return WriteResult(runner, "INPUT_SIZE", "input", setup_ticks, 0, "") ? 0 : 4;
    }
    examples = input_file / static_cast<long>(in_bytes);
  } else {
    memset(g_inputs, 0, in_bytes);
  }
  if (examples > kMaxExamples || static_cast<size_t>(examples) * out_bytes > kOutputCapacity) {
    return WriteResult(runner, "INPUT_TOO_LARGE", "input", setup_ticks, 0, "") ? 0 : 4;
  }

  htpw::Sha256 sha;
  for (long i = 0; i < examples; ++i) {
    int8_t* output = g_outputs + i * out_bytes;
    const uint32_t before = htpw_m4_ticks();
    status = runner.Invoke(g_inputs + i * in_bytes, in_bytes, output, out_bytes);
    g_invoke_ticks[i] = htpw_m4_ticks() - before;
    if (status != htpw::RunError::kNone) {
      return WriteResult(runner, runner.ErrorName(status), "invoke", setup_ticks, static_cast<int>(i), "") ? 0 : 4;
    }
    sha.Update(output, out_bytes);
  }
  // Steady state: example 0 once more, after every kernel a lazy op makes has been made; its
  // output must repeat the first one (no state may leak from one inference into the next).
  static int8_t repeat[1024];
  if (out_bytes > sizeof(repeat)) {
    return WriteResult(runner, "OUTPUT_TOO_LARGE", "invoke", setup_ticks, 0, "") ? 0 : 4;
  }
  const uint32_t before = htpw_m4_ticks();
  status = runner.Invoke(g_inputs, in_bytes, repeat, out_bytes);
  g_steady_ticks = htpw_m4_ticks() - before;
  if (status != htpw::RunError::kNone) {
    return WriteResult(runner, runner.ErrorName(status), "invoke", setup_ticks, 0, "") ? 0 : 4;
  }
  if (memcmp(repeat, g_outputs, out_bytes) != 0) {
    return WriteResult(runner, "NOT_REPEATABLE", "invoke", setup_ticks, 0, "") ? 0 : 4;
  }
  if (g_kernel_dump != nullptr && fclose(g_kernel_dump) != 0) return 4;
  char digest[65];
  sha.FinalHex(digest);
  if (!WriteFile("output.bin", g_outputs, static_cast<size_t>(examples) * out_bytes)) return 4;
  return WriteResult(runner, nullptr, "done", setup_ticks, static_cast<int>(examples), digest) ? 0 : 4;
}
