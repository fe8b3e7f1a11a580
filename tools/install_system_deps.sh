#!/usr/bin/env bash
# The Debian packages the tests need, installed if missing (the README's test command and .ci/run call this).
#   The Cortex-M4 runner (tests/test_tflm_m4.py, test_fit.py; `hyper-tinypw tflm --target=cortex-m4`, `fit`):
#     gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib (only a Recommends of newlib,
#     so named here) qemu-system-arm
#   The host runner (tests/test_tflm_kernel.py; `hyper-tinypw tflm`, the main job): make g++ (its ASan/UBSan
#     runtimes come with g++)
#   The core's sanitizer and fuzz tests (tests/test_c_sanitizers.py, test_c_fuzz.py): clang libclang-rt-14-dev
#     (ASan, UBSan and libFuzzer runtimes)
# The main job needs only the host runner's make and g++; everything else here is for the tests.
set -euo pipefail
PACKAGES=(
  gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm
  make g++
  clang libclang-rt-14-dev
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
