"""The 32k and 64k ECG presets on a Cortex-M4 (QEMU): flash, SRAM and instructions per mode, beside the folded file.

Reproduce: ``python -m bench.bench_tflm`` from the repository root (about 5 minutes once the
Cortex-M4 libraries are built). Each preset is built untrained, wrapped for QAT
(``quantize_model``) and exported folded and hyper (boot; lazy and stream are the same file with
the op's mode option rewritten, ``fit.with_mode``; budget chooses per layer within
:data:`BUDGET_BYTES`). Weights do not change instruction counts: CMSIS-NN's int8 kernels and the
synthesis loops have no data-dependent work, and the file sizes depend only on shapes. Every
file runs through :func:`tflm_harness.fit.fit` (the ``hyper-tinypw fit`` report) on one seeded
random int8 example; the hyper files' outputs are checked equal to the folded file's.
"""

from __future__ import annotations

import numpy as np

from bench._report import machine_line, write_section
from hyper_tinypw_tf import models, quantization
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.export import api
from hyper_tinypw_tf.export import format as fmt
from tflm_harness import fit, qemu

COMMAND = "python -m bench.bench_tflm"
PRESETS = ("32k", "64k")
CLOCK_HZ = 64_000_000  # the Arduino Nano 33 BLE's nRF52840
BUDGET_BYTES = 128 << 10  # --mode=budget: SRAM for cached kernels, half of the Nano's 256 KB
SETUP_LIMIT = 16_000_000  # issue 8: 64k boot setup within 0.25 s at 64 MHz


def _files(preset: str) -> dict[str, bytes]:
    """Folded and hyper files (each mode) of the untrained QAT model of ``preset``."""
    keras.utils.set_random_seed(0)
    qat = quantization.quantize_model(models.separable_cnn_1d(preset, pw="hyper"))
    boot = api.export_model(qat, fmt="hyper", mode=fmt.MODE_BOOT)
    files = {"folded": api.export_model(qat, fmt="folded")}
    files.update({mode: fit.with_mode(boot, mode) for mode in fmt.MODES})
    files["budget"] = api.export_model(qat, fmt="hyper", mode="budget", sram_budget=BUDGET_BYTES)
    return files


def _measure(preset: str) -> tuple[dict[str, fit.ModeFit], dict[str, object]]:
    files = _files(preset)
    example = np.random.default_rng(0).integers(-128, 128, (1, *models.ECG_INPUT), dtype=np.int8)
    expected = qemu.run(files["folded"], example).outputs
    rows: dict[str, fit.ModeFit] = {}
    for name, data in files.items():
        if name != "folded":
            got = qemu.run(data, example).outputs
            assert np.array_equal(got, expected), f"{preset} {name}: hyper outputs differ from folded"
        report = fit.fit(data, name=f"{preset} {name}", modes=(name,) if name in fmt.MODES else ())
        (rows[name],) = report.rows
    ops = fit.hyper_ops(files[fmt.MODE_BOOT])
    facts = {"backbone_macs": fit.backbone_macs(files["folded"]), "synthesis_macs": fit.synthesis_macs(ops),
             "budget_modes": [o.mode for o in fit.hyper_ops(files["budget"])]}
    return rows, facts


def _ms(instructions: int) -> str:
    return f"{1000 * instructions / CLOCK_HZ:.1f}"


def _table(preset: str, rows: dict[str, fit.ModeFit], facts: dict[str, object]) -> list[str]:
    folded = rows["folded"]
    lines = [
        f"### {preset} preset (backbone {facts['backbone_macs']:,} MACs per inference, synthesis "
        f"{facts['synthesis_macs']:,} MACs for all kernels)",
        "",
        "| file / mode | flash bytes (file + op code) | SRAM bytes (arena; cached kernels) | setup instructions "
        "| setup ms @64 MHz | instructions / inference | inference ms @64 MHz | vs folded | Nano 33 BLE |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, row in rows.items():
        ratio = row.inference_instructions / folded.inference_instructions
        lines.append(
            f"| {name} | {row.flash_bytes:,} ({row.file_bytes:,} + {row.op_code_bytes:,}) | {row.sram_bytes:,} "
            f"({row.cached_kernel_bytes:,}) | {row.setup_instructions:,} | {_ms(row.setup_instructions)} "
            f"| {row.inference_instructions:,} | {_ms(row.inference_instructions)} | {ratio:.4f} | {row.verdict} |"
        )
    macs = int(facts["synthesis_macs"])  # type: ignore[call-overload]
    lazy, stream, boot = rows[fmt.MODE_LAZY], rows[fmt.MODE_STREAM], rows[fmt.MODE_BOOT]
    per_mac_lazy = (lazy.first_inference_instructions - lazy.inference_instructions) / macs
    per_mac_stream = (stream.inference_instructions - folded.inference_instructions) / macs
    per_mac_boot = (boot.setup_instructions - folded.setup_instructions) / macs
    steady = boot.inference_instructions / folded.inference_instructions - 1
    lines += [
        "",
        f"- Instructions per synthesis MAC: {per_mac_lazy:.2f} (lazy: first inference minus steady state), "
        f"{per_mac_stream:.2f} (stream: inference minus folded inference), {per_mac_boot:.2f} (boot: setup minus "
        "folded setup, which also holds each op's input validation and CRC-32).",
        f"- Steady state, hyper (boot) vs folded: {boot.inference_instructions:,} vs "
        f"{folded.inference_instructions:,} instructions per inference ({100 * steady:+.3f}%; "
        f"{'within' if abs(steady) <= 0.01 else 'NOT within'} 1%).",
        f"- Budget mode (cached-kernel budget {BUDGET_BYTES:,} bytes) chose per layer: "
        f"{', '.join(facts['budget_modes'])}.",  # type: ignore[arg-type]
    ]
    if preset == "64k":
        verdict = "meets" if boot.setup_instructions <= SETUP_LIMIT else "does NOT meet"
        lines.append(f"- 64k boot setup: {boot.setup_instructions:,} instructions ({_ms(boot.setup_instructions)} ms "
                     f"at 64 MHz); {verdict} the 16 M-instruction (0.25 s) target.")
    return lines


def main() -> None:
    firmware = qemu.build_runner()
    body = [
        "## TFLM on a Cortex-M4: the ECG presets per synthesis mode",
        "",
        f"Command: `{COMMAND}` ({machine_line()}). `arm-none-eabi-gcc` 12.2 `-mcpu=cortex-m4 -mfpu=auto"
        " -mfloat-abi=hard` (TFLM's flags; `readelf -A`: VFPv4-D16), TFLM with CMSIS-NN kernels,",
        f"run under `{' '.join(qemu.qemu_command(firmware)[:3])}` with `-icount shift={qemu.ICOUNT_SHIFT}`: "
        f"instructions counted with the board's timer ({qemu.INSTRUCTIONS_PER_TICK} per tick, checked on a loop of",
        "known length by tests/test_tflm_m4.py). Untrained QAT models (weights do not change instruction counts",
        "or sizes). Flash = file + the op's code (`arm-none-eabi-size` of our kernel and core objects); SRAM =",
        "the measured arena (`arena_used_bytes()`), which holds the cached kernels. Times assume one instruction",
        "per cycle at 64 MHz (QEMU models no cycles; a real Cortex-M4 needs more cycles than instructions, so",
        "real times are longer: the Arduino example in tflm_harness/arduino/ measures them with `micros()`).",
        "Setup = interpreter construction + AllocateTensors (boot mode synthesizes here); instructions per",
        "inference = steady state (lazy synthesizes at its first inference; stream at every one).",
        "",
    ]
    for preset in PRESETS:
        rows, facts = _measure(preset)
        body += [*_table(preset, rows, facts), ""]
    write_section("tflm_m4", "\n".join(body))
    print("\n".join(body))


if __name__ == "__main__":
    main()
