"""The runners' file checks on a Cortex-M4 (QEMU): instructions of the CRC-32 and of the Verifier, and their code size.

Reproduce: ``python -m bench.bench_integrity`` from the repository root (a few minutes once the
Cortex-M4 libraries are built). The 32k and 64k ECG presets, untrained and wrapped for QAT, are
exported folded and hyper (boot); each file runs once in the Cortex-M4 runner, which times
``htpw_file_check`` (the one C function of tflm_harness/core/htpw_file.c: the walk to the CRC
entry and one CRC-32 pass over the file) and then all of ``htpw::Runner::Verify`` (that check
again, flatbuffers' Verifier, the index checks) with the board's timer, as bench_tflm does. Code
size: the runner firmware linked with and without ``-DHTPW_RUNNER_NO_VERIFIER``
(``arm-none-eabi-size``), and ``htpw_file.c.o`` of the Cortex-M4 ``libhtpw.a``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from bench._report import machine_line, write_section
from hyper_tinypw_tf import models, quantization
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.export import api
from hyper_tinypw_tf.export import format as fmt
from tflm_harness import build, fit, qemu

COMMAND = "python -m bench.bench_integrity"
PRESETS = ("32k", "64k")
CLOCK_HZ = 64_000_000  # the Arduino Nano 33 BLE's nRF52840
NO_VERIFIER = "-DHTPW_RUNNER_NO_VERIFIER"


def _files(preset: str) -> dict[str, bytes]:
    keras.utils.set_random_seed(0)
    qat = quantization.quantize_model(models.separable_cnn_1d(preset, pw="hyper"))
    return {"folded": api.export_model(qat, fmt="folded"), "hyper": api.export_model(qat, fmt="hyper",
                                                                                     mode=fmt.MODE_BOOT)}


def _size(elf_or_lib: Path, member: str | None = None) -> int:
    """text + data bytes of an ELF, or of one member of an archive."""
    tool = fit._size_tool(build.toolchain("cortex-m4"))
    out = subprocess.run([tool, str(elf_or_lib)], capture_output=True, text=True, check=True).stdout.splitlines()[1:]
    rows = [line.split() for line in out]
    row = next(r for r in rows if member is None or r[5] == member)
    return int(row[0]) + int(row[1])


def main() -> None:
    with_verifier, without = qemu.build_runner(), qemu.build_runner(defines=(NO_VERIFIER,))
    verifier_bytes = _size(with_verifier) - _size(without)
    _, htpw = build.build_harness("cortex-m4")
    crc_code = _size(htpw, "htpw_file.c.o")
    body = [
        "## Device-side file checks on a Cortex-M4: CRC-32 and flatbuffers' Verifier",
        "",
        f"Command: `{COMMAND}` ({machine_line()}). The Cortex-M4 runner of bench_tflm under QEMU (instructions",
        f"counted with the board's timer, {qemu.INSTRUCTIONS_PER_TICK} per tick). `htpw_file_check` = the whole-file",
        "CRC-32 of docs/format.md §7 (walk to the metadata entry + one pass over the file; the one C function in",
        "tflm_harness/core/htpw_file.c every runner calls first); `Verify` = that check + flatbuffers'",
        "`VerifyModelBuffer` + the index checks (`htpw::Runner::Verify`, before the interpreter is built). Setup",
        "in the tflm_m4 section excludes both. ms at 64 MHz assume one instruction per cycle.",
        "",
        "| file | bytes | htpw_file_check instructions | per byte | ms @64 MHz | Verify instructions "
        "| ms @64 MHz | setup instructions (after Verify) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for preset in PRESETS:
        for kind, data in _files(preset).items():
            stats = qemu.run(data, np.zeros((1, *models.ECG_INPUT), np.int8)).stats
            crc, verify = int(stats["file_check_instructions"]), int(stats["verify_instructions"])
            body.append(
                f"| {preset} {kind} | {len(data):,} | {crc:,} | {crc / len(data):.2f} | {1000 * crc / CLOCK_HZ:.2f} "
                f"| {verify:,} | {1000 * verify / CLOCK_HZ:.2f} | {int(stats['setup_instructions']):,} |"
            )
    body += [
        "",
        f"- Code size on the Cortex-M4 (text + data): `htpw_file_check` {crc_code:,} bytes; flatbuffers' Verifier "
        f"{verifier_bytes:,} bytes (runner firmware {_size(with_verifier):,} bytes with it, {_size(without):,} "
        f"without `{NO_VERIFIER}`).",
        "- Decision: the Verifier stays on in every runner (host, Cortex-M4, Arduino sketch). Its code is small "
        "beside the Nano 33 BLE's 1 MB of flash and its time is a fraction of the CRC pass; a device that cannot "
        f"hold it builds with `{NO_VERIFIER}` and keeps the CRC-32 and the index checks.",
    ]
    write_section("integrity_m4", "\n".join(body))
    print("\n".join(body))


if __name__ == "__main__":
    main()
