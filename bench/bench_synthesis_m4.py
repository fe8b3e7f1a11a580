"""Instructions per synthesis MAC of the C core on a Cortex-M4 (QEMU), CMSIS-NN product vs portable C.

Reproduce: ``python -m bench.bench_synthesis_m4`` from the repository root. Builds
``bench/synthesis_m4.c`` with the core, TFLM's Cortex-M4 flags (``tflm_harness.build``, which
define ``CMSIS_NN``) and CMSIS-NN's ``arm_nn_mat_mult_nt_t_s8_s32.c``, twice (default: CMSIS-NN;
``-DHTPW_NO_CMSIS_NN``: the portable loops), runs each under ``qemu-system-arm`` with
``-icount shift=0`` and counts instructions with the board timer (``tflm_harness.qemu``).
Layer shapes are the generated PW layers of the 64k ECG preset (tiled, b=8, d_z=4, d_h=32).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench._report import write_section
from tflm_harness import build, qemu

COMMAND = "python -m bench.bench_synthesis_m4"
FIRMWARE = Path(__file__).resolve().parent / "synthesis_m4.c"
CMSIS_MATMUL = "tensorflow/lite/micro/tools/make/downloads/cmsis_nn/Source/NNSupportFunctions/arm_nn_mat_mult_nt_t_s8_s32.c"
LAYERS = ((128, 64), (256, 128), (256, 256), (256, 256), (256, 256))  # (c_out, c_in), 64k preset
TILE, CODE_DIM, HIDDEN_DIM = 8, 4, 32


def synthesis_macs(c_out: int, c_in: int) -> int:
    """Tiled MACs: per tile d_z·d_h (hidden) + d_h·b² (tile values), as docs/synthesis.md §3."""
    tiles = -(-c_out // TILE) * -(-c_in // TILE)
    return tiles * (CODE_DIM * HIDDEN_DIM + HIDDEN_DIM * TILE * TILE)


def build_firmware(out: Path, extra: list[str]) -> Path:
    """Compile and link the bench firmware for the Cortex-M4 with ``extra`` compiler flags."""
    tc = build.toolchain("cortex-m4")
    tree = Path(tc.tflm_dir)
    layers = ",".join(f"{{{o},{i}}}" for o, i in LAYERS)
    defines = [f"-DLAYERS={layers}", f"-DTILE={TILE}", f"-DCODE_DIM={CODE_DIM}", f"-DHIDDEN_DIM={HIDDEN_DIM}"]
    sources = [FIRMWARE, *build.HARNESS.joinpath("core").glob("*.c"), tree / CMSIS_MATMUL,
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


def measure(extra: list[str]) -> list[tuple[int, int, int, int, str]]:
    """(c_out, c_in, validate instructions, synthesis instructions, kernel CRC-32) per layer."""
    with tempfile.TemporaryDirectory(prefix="htpw_bench_m4_") as folder:
        work = Path(folder)
        elf = build_firmware(work, extra)
        qemu.run_firmware(elf, work)
        rows = []
        for line in (work / "synthesis_m4.txt").read_text().splitlines():
            c_out, c_in, validate, synth, crc = line.split()
            rows.append((int(c_out), int(c_in), int(validate) * qemu.INSTRUCTIONS_PER_TICK,
                         int(synth) * qemu.INSTRUCTIONS_PER_TICK, crc))
        return rows


def main() -> None:
    results = {
        "default (SMLAD pairs + CMSIS-NN)": measure([]),
        "SMLAD pairs, no CMSIS-NN": measure(["-DHTPW_NO_CMSIS_NN"]),
        "portable C only": measure(["-DHTPW_NO_CMSIS_NN", "-DHTPW_NO_DSP"]),
    }
    crcs = {name: [row[4] for row in rows] for name, rows in results.items()}
    assert len({tuple(c) for c in crcs.values()}) == 1, f"kernels differ between builds: {crcs}"
    lines = [
        "## Synthesis core on a Cortex-M4 (QEMU)",
        "",
        f"Command: `{COMMAND}`. `qemu-system-arm -M mps2-an386 -icount shift=0`, instructions counted with",
        f"the board timer ({qemu.INSTRUCTIONS_PER_TICK} instructions per tick). Tiled generator b={TILE},",
        f"d_z={CODE_DIM}, d_h={HIDDEN_DIM}, int8; the generated PW layers of the 64k ECG preset.",
        "Validate = every input check plus the CRC-32 of the inputs (once, in Prepare). The three builds",
        "make the same kernel bytes (CRC-32 per layer compared by the script).",
        "",
        "| build | layer (C_out×C_in) | synthesis MACs | validate instr. | synthesis instr. | instr./MAC |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, rows in results.items():
        total_macs = total_instr = total_validate = 0
        for c_out, c_in, validate, synth, _ in rows:
            macs = synthesis_macs(c_out, c_in)
            total_macs, total_instr, total_validate = total_macs + macs, total_instr + synth, total_validate + validate
            lines.append(f"| {name} | {c_out}×{c_in} | {macs:,} | {validate:,} | {synth:,} | {synth / macs:.2f} |")
        lines.append(f"| {name} | **all** | {total_macs:,} | {total_validate:,} | {total_instr:,} | "
                     f"**{total_instr / total_macs:.2f}** |")
    write_section("synthesis_m4", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
