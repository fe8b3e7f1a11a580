"""Instructions per synthesis MAC of the C core on a Cortex-M4 (QEMU), in three builds that make the same bytes.

Reproduce: ``python -m bench.bench_synthesis_m4`` from the repository root. Builds
``bench/synthesis_m4.c`` with the core, TFLM's Cortex-M4 flags (``tflm_harness.build``; they
define ``CMSIS_NN``) and CMSIS-NN's ``arm_nn_mat_mult_nt_t_s8_s32.c``: the default (SMLAD pair
products for the tile values, CMSIS-NN for the small dense steps), ``-DHTPW_NO_CMSIS_NN``, and
``-DHTPW_NO_CMSIS_NN -DHTPW_NO_DSP`` (portable C only). Each runs under ``qemu-system-arm`` with
``-icount shift=0``; instructions are counted with the board timer (``tflm_harness.qemu``), and
the kernels' CRC-32 must agree between builds. Layer shapes are the generated PW layers of the
64k ECG preset (tiled, b=8, d_z=4, d_h=32).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench._report import write_section
from hyper_tinypw_tf.generators import PaperGenerator, TiledGenerator
from tflm_harness import build, qemu

COMMAND = "python -m bench.bench_synthesis_m4"
FIRMWARE = Path(__file__).resolve().parent / "synthesis_m4.c"
CMSIS_MATMUL = ("tensorflow/lite/micro/tools/make/downloads/cmsis_nn/Source/NNSupportFunctions/"
                "arm_nn_mat_mult_nt_t_s8_s32.c")
LAYERS = ((128, 64), (256, 128), (256, 256), (256, 256), (256, 256))  # (c_out, c_in), 64k preset
TILE, CODE_DIM, HIDDEN_DIM = 8, 4, 32
FACTORIZED_HIDDEN = 16  # F_HIDDEN of the firmware
STEPS = (  # where the tiled synthesis marks its steps (HTPW_BENCH_STEPS), in order
    "set-up: bias, W1 and W2 as pair words (once per layer)",
    "step 1: codes × W1 (pair blocks)",
    "step 1: bias, ReLU requantization, h as pair words",
    "step 2: tile values h × W2 (pair blocks)",
    "steps 3-4: per-channel quantization and signs",
)


def synthesis_macs(strategy: str, c_out: int, c_in: int) -> int:
    """MACs of docs/synthesis.md §3 (as ``generators.*.synthesis_macs``)."""
    if strategy == TiledGenerator.FORMAT:
        tiles = -(-c_out // TILE) * -(-c_in // TILE)
        return tiles * (CODE_DIM * HIDDEN_DIM + HIDDEN_DIM * TILE * TILE)
    return CODE_DIM * FACTORIZED_HIDDEN + c_out * FACTORIZED_HIDDEN * (1 + c_in)


def build_firmware(out: Path, extra: list[str], layers: tuple[tuple[int, int], ...] = LAYERS, tile: int = TILE,
                   code_dim: int = CODE_DIM, hidden_dim: int = HIDDEN_DIM) -> Path:
    """Compile and link the bench firmware for the Cortex-M4 with ``extra`` compiler flags.

    ``layers`` are (c_out, c_in) pairs up to 256 each; the other shapes are the tiled generator's
    (tests/test_synthesis_m4.py builds odd ones)."""
    tc = build.toolchain("cortex-m4")
    tree = Path(tc.tflm_dir)
    shapes = ",".join(f"{{{o},{i}}}" for o, i in layers)
    defines = [f"-DLAYERS={shapes}", f"-DTILE={tile}", f"-DCODE_DIM={code_dim}", f"-DHIDDEN_DIM={hidden_dim}"]
    sources = [FIRMWARE, *build.core_sources(), tree / CMSIS_MATMUL,
               *qemu._platform_sources(tc)]
    objects = []
    for src in sources:
        obj = out / (src.name + ".o")
        cmd = build._compile_command(tc, src, tc.kernel_opt, [f"-I{qemu.M4}", *build.harness_includes(), *defines,
                                                              *extra])
        build._run([*cmd, "-o", str(obj)], tree)
        objects.append(obj)
    flags = [f for f in tc.ccflags if f.startswith(("-mcpu", "-mfpu", "-mthumb", "-mfloat-abi", "-mlittle"))]
    elf = out / "synthesis_m4.elf"
    build._run([*tc.cc, *flags, *qemu.LINK_FLAGS, "-T", str(qemu.LINKER_SCRIPT), *map(str, objects), "-lm",
                "-o", str(elf)], out)
    return elf


def _run(extra: list[str], **shapes: object) -> list[list[str]]:
    """The firmware's output lines, split, for one build."""
    with tempfile.TemporaryDirectory(prefix="htpw_bench_m4_") as folder:
        work = Path(folder)
        elf = build_firmware(work, extra, **shapes)  # type: ignore[arg-type]
        qemu.run_firmware(elf, work)
        return [line.split() for line in (work / "synthesis_m4.txt").read_text().splitlines()]


def measure(extra: list[str], **shapes: object) -> list[tuple[str, int, int, int, int, str]]:
    """(strategy, c_out, c_in, validate instructions, synthesis instructions, kernel CRC-32) per layer.

    ``shapes`` go to :func:`build_firmware` (default: the 64k preset's layers)."""
    rows = []
    for strategy, c_out, c_in, validate, synth, crc in (f for f in _run(extra, **shapes) if f[0] != "steps"):
        rows.append((strategy, int(c_out), int(c_in), int(validate) * qemu.INSTRUCTIONS_PER_TICK,
                     int(synth) * qemu.INSTRUCTIONS_PER_TICK, crc))
    return rows


def measure_steps() -> list[int]:
    """Instructions per tiled step (:data:`STEPS`) over the 64k preset's layers, default build.

    A profiling build (``-DHTPW_BENCH_STEPS``): the core marks where each step ends and the
    firmware reads the timer there, which adds a call per mark to the counts."""
    totals = [0] * len(STEPS)
    for fields in _run(["-DHTPW_BENCH_STEPS"]):
        if fields[0] == "steps":
            totals = [t + int(v) * qemu.INSTRUCTIONS_PER_TICK for t, v in zip(totals, fields[3:], strict=True)]
    return totals


def main() -> None:
    results = {
        "default (Thumb-2 pair blocks + CMSIS-NN)": measure([]),
        "Thumb-2 pair blocks, no CMSIS-NN": measure(["-DHTPW_NO_CMSIS_NN"]),
        "pair blocks in C (SMLAD), no CMSIS-NN": measure(["-DHTPW_NO_ASM", "-DHTPW_NO_CMSIS_NN"]),
        "portable C only": measure(["-DHTPW_NO_CMSIS_NN", "-DHTPW_NO_DSP"]),
    }
    steps = measure_steps()
    crcs = {name: [row[5] for row in rows] for name, rows in results.items()}
    assert len({tuple(c) for c in crcs.values()}) == 1, f"kernels differ between builds: {crcs}"
    lines = [
        "## Synthesis core on a Cortex-M4 (QEMU)",
        "",
        f"Command: `{COMMAND}`. `qemu-system-arm -M mps2-an386 -icount shift=0`, instructions counted with",
        f"the board timer ({qemu.INSTRUCTIONS_PER_TICK} instructions per tick). Tiled generator b={TILE},",
        f"d_z={CODE_DIM}, d_h={HIDDEN_DIM}, int8, on the generated PW layers of the 64k ECG preset; then the",
        f"same shapes with a paper_factorized generator (d_z={CODE_DIM}, d_h={FACTORIZED_HIDDEN}).",
        "Validate = every input check plus the CRC-32 of the inputs (once, in Prepare). The builds",
        "make the same kernel bytes (CRC-32 per layer compared by the script). These are instructions,",
        "not cycles: an LDM of n words is one instruction but 1 + n cycles on a Cortex-M4, so a Thumb-2",
        "pair block step (16 MACs in 11 instructions: one 4-word and two 2-word LDMs, eight SMLADs) takes",
        "about 19 cycles; the instruction counts understate its cycles more than the C builds'.",
        "",
        "| build | strategy | layer (C_out×C_in) | synthesis MACs | validate instr. | synthesis instr. | instr./MAC |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for name, rows in results.items():
        for strategy in (TiledGenerator.FORMAT, PaperGenerator.FORMAT_FACTORIZED):
            total_macs = total_instr = total_validate = 0
            for kind, c_out, c_in, validate, synth, _ in rows:
                if kind != strategy:
                    continue
                macs = synthesis_macs(strategy, c_out, c_in)
                total_macs, total_instr = total_macs + macs, total_instr + synth
                total_validate += validate
                lines.append(f"| {name} | {strategy} | {c_out}×{c_in} | {macs:,} | {validate:,} | {synth:,} | "
                             f"{synth / macs:.2f} |")
            lines.append(f"| {name} | {strategy} | **all** | {total_macs:,} | {total_validate:,} | {total_instr:,} | "
                         f"**{total_instr / total_macs:.2f}** |")
    tiles = sum(-(-o // TILE) * -(-i // TILE) for o, i in LAYERS)
    work = (tiles, tiles * CODE_DIM * HIDDEN_DIM, tiles * HIDDEN_DIM, tiles * HIDDEN_DIM * TILE * TILE,
            sum(o * i for o, i in LAYERS))
    units = ("tiles", "MACs", "hidden values", "MACs", "kernel values")
    lines += [
        "",
        "Where the default build spends the tiled synthesis of these layers (a profiling build,",
        "`-DHTPW_BENCH_STEPS`: the core marks the end of each step and the firmware reads the timer",
        f"there, which adds its calls to the counts; total {sum(steps):,} instructions):",
        "",
        "| step | instructions | work | instructions per unit |",
        "|---|---:|---:|---:|",
    ]
    for name, instr, count, unit in zip(STEPS, steps, work, units, strict=True):
        lines.append(f"| {name} | {instr:,} | {count:,} {unit} | {instr / count:.2f} |")
    write_section("synthesis_m4", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
