/* Seeded-random fuzzer of the runners' load path (htpw::Runner: file checks, interpreter, one invoke)
 * on whole .tflite files, built against the host TFLM library with our code under ASan + UBSan
 * (tflm_harness/build.py, build_load_fuzzer; tests/test_tflm_fuzz.py runs it for a bounded time).
 *
 *   htpw_load_fuzz --seed=S --seconds=T [--max_iterations=N] [--reseal] FILE...
 *
 * Each iteration copies one of the FILEs (hyper, folded, LUT) into a heap block of exactly its
 * length, applies 1-4 mutations (a byte flipped, set to 0x00/0xFF/random, a 32-bit word set to an
 * edge value, the file truncated) and runs it through htpw::Runner::Setup and one invoke of an
 * all-zero example. --reseal rewrites the file CRC-32 after mutating (when htpw_file_check still
 * finds the entry), so mutations reach flatbuffers' Verifier, the index checks, TFLM and the
 * HyperTinyPW op instead of stopping at the CRC. Any memory error or undefined behaviour aborts
 * (non-zero exit); otherwise one JSON line counts the outcomes by status.
 *
 * Without --reseal (corruption as it happens: flash, transfer) the runners must never abort on a
 * file the CRC vouches for; the test holds them to it. A folded file whose mutations removed its
 * (optional) CRC entry is checked up to Verify only (see RunOne). With --reseal the fuzzer plays a tool that writes a wrong model with a
 * right CRC: it finds TFLM's own aborts (e.g. the TFLITE_DCHECKs of the reference
 * DepthwiseConvPerChannel on a model whose shapes disagree), which no file check can stop.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <chrono>
#include <map>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "htpw_file.h"
#include "htpw_runner.h"

namespace {

constexpr size_t kArenaBytes = 1u << 20;

std::vector<uint8_t> ReadAll(const char* path) {
  std::vector<uint8_t> out;
  FILE* f = fopen(path, "rb");
  if (f == nullptr) return out;
  uint8_t chunk[1 << 16];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) out.insert(out.end(), chunk, chunk + n);
  fclose(f);
  return out;
}

void Mutate(std::vector<uint8_t>& data, std::mt19937_64& rng) {
  static const uint32_t kWords[] = {0u, 1u, 4u, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFFu, 0xFFFFu, 0x10000u};
  const int count = 1 + static_cast<int>(rng() % 4);
  for (int m = 0; m < count && !data.empty(); ++m) {
    const size_t at = rng() % data.size();
    switch (rng() % 6) {
      case 0: data[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
      case 1: data[at] = 0x00; break;
      case 2: data[at] = 0xFF; break;
      case 3: data[at] = static_cast<uint8_t>(rng()); break;
      case 4: {
        const uint32_t word = kWords[rng() % (sizeof(kWords) / sizeof(kWords[0]))];
        for (size_t i = 0; i < 4 && at + i < data.size(); ++i) data[at + i] = static_cast<uint8_t>(word >> (8 * i));
        break;
      }
      default: data.resize(at); break;
    }
  }
}

void Reseal(std::vector<uint8_t>& data) {
  htpw_file_info info;
  if (htpw_file_check(data.data(), data.size(), &info) != HTPW_ERR_FILE_CRC) return;
  for (int i = 0; i < 4; ++i) data[info.crc_offset + i] = static_cast<uint8_t>(info.computed_crc >> (8 * i));
}

// `mutated`: a file that passes Verify without a CRC entry (a mutation removed it from a folded
// file, whose CRC is optional) is vouched for by nothing, so it stops after Verify and counts as
// "UNPROTECTED": TFLM's kernels abort on inconsistent models (PackEval's DCHECKs, for one), which
// only the CRC can rule out.
std::string RunOne(const std::vector<uint8_t>& data, uint8_t* arena, bool mutated) {
  // Exactly the file's length, so ASan sees any read past its end.
  uint8_t* model = static_cast<uint8_t*>(malloc(data.size() ? data.size() : 1));
  memcpy(model, data.data(), data.size());
  std::string status;
  {
    htpw::Runner runner;
    htpw::RunError error = runner.Verify(model, data.size());
    if (error == htpw::RunError::kNone && mutated && !runner.file_info().has_crc) {
      free(model);
      return "UNPROTECTED";
    }
    if (error == htpw::RunError::kNone) error = runner.Setup(model, data.size(), arena, kArenaBytes);
    if (error == htpw::RunError::kNone) {
      std::vector<int8_t> input(runner.input_bytes(), 0), output(runner.output_bytes());
      error = runner.Invoke(input.data(), input.size(), output.data(), output.size());
    }
    status = runner.ErrorName(error);
  }
  free(model);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t seed = 0;
  double seconds = 10;
  long max_iterations = -1;
  bool reseal = false;
  std::vector<std::vector<uint8_t>> files;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--seed=", 0) == 0) seed = strtoull(arg.c_str() + 7, nullptr, 10);
    else if (arg.rfind("--seconds=", 0) == 0) seconds = strtod(arg.c_str() + 10, nullptr);
    else if (arg.rfind("--max_iterations=", 0) == 0) max_iterations = strtol(arg.c_str() + 17, nullptr, 10);
    else if (arg == "--reseal") reseal = true;
    else {
      files.push_back(ReadAll(argv[i]));
      if (files.back().empty()) {
        fprintf(stderr, "htpw_load_fuzz: error: cannot read %s\n", argv[i]);
        return 2;
      }
    }
  }
  if (files.empty()) {
    fprintf(stderr, "usage: htpw_load_fuzz --seed=S --seconds=T [--max_iterations=N] [--reseal] FILE...\n");
    return 2;
  }
  std::vector<uint8_t> arena_storage(kArenaBytes + 16);
  uint8_t* arena = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(arena_storage.data()) + 15) & ~uintptr_t{15});
  std::mt19937_64 rng(seed);
  std::map<std::string, long> outcomes;
  for (const auto& file : files) ++outcomes["seed_" + RunOne(file, arena, false)];  // the unmutated files
  const auto start = std::chrono::steady_clock::now();
  long iterations = 0;
  while ((max_iterations < 0 || iterations < max_iterations) &&
         std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
    std::vector<uint8_t> data = files[rng() % files.size()];
    Mutate(data, rng);
    if (reseal) Reseal(data);
    ++outcomes[RunOne(data, arena, true)];
    ++iterations;
  }
  printf("{\"iterations\": %ld, \"outcomes\": {", iterations);
  bool first = true;
  for (const auto& [name, count] : outcomes) {
    printf("%s\"%s\": %ld", first ? "" : ", ", name.c_str(), count);
    first = false;
  }
  printf("}}\n");
  return 0;
}
