"""Build the Cortex-M4 runner and run it under QEMU (``mps2-an386``, semihosting), counting instructions.

The firmware is ``m4/main.cc`` (file I/O and timing) around the one shared inference file
``runner/htpw_runner.cc``, linked against the Cortex-M4F + CMSIS-NN libraries of :mod:`build`, with
CMSIS's Cortex_DFP startup for ARMCM4 (compiled from ``TFLM_DIR``, never copied) and our linker
script ``m4/mps2_an386.ld``. The ELF is cached beside the libraries.

Instruction counts: QEMU models no DWT cycle counter, so QEMU runs with ``-icount shift=0`` (its
virtual clock advances exactly 1 ns per executed instruction) and the firmware reads the board's
CMSDK timer 0, clocked at 25 MHz of that virtual clock: one tick is :data:`INSTRUCTIONS_PER_TICK`
instructions, which is the resolution. (Debian's QEMU can load TCG plugins, but ships neither the
``libinsn.so`` example nor ``qemu-plugin.h`` to build one.) :func:`calibrate` runs a loop of known
length to check the conversion; ``tests/test_tflm_m4.py`` holds it to the loop's count.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tflm_harness import build
from tflm_harness.result import ModelError, RunResult, read_kernels

HARNESS = Path(__file__).resolve().parent
M4 = HARNESS / "m4"
LINKER_SCRIPT = M4 / "mps2_an386.ld"
QEMU = "qemu-system-arm"
MACHINE = "mps2-an386"
ICOUNT_SHIFT = 0  # 2**0 ns of QEMU virtual time per instruction
TIMER_HZ = 25_000_000  # PCLK of the MPS2 AN386 image's CMSDK APB timers
INSTRUCTIONS_PER_TICK = 10**9 // (TIMER_HZ << ICOUNT_SHIFT)
DFP_DEVICE = "tensorflow/lite/micro/tools/make/downloads/cmsis/Cortex_DFP/Device/ARMCM4/Source"
LINK_FLAGS = ("--specs=rdimon.specs", "-nostartfiles", "-Wl,--gc-sections")
TIMEOUT_S = 600  # the largest preset's setup and inference take well under a minute under QEMU


class QemuError(RuntimeError):
    """QEMU is missing, or the firmware failed; the message holds the command and its output."""


def qemu_command(elf: Path) -> list[str]:
    """QEMU's command line: no UART, semihosting for file I/O and exit status, 1 ns per instruction."""
    return [
        QEMU, "-M", MACHINE, "-cpu", "cortex-m4", "-nographic", "-monitor", "none", "-serial", "none",
        "-semihosting-config", "enable=on,target=native", "-icount", f"shift={ICOUNT_SHIFT}", "-kernel", str(elf),
    ]


def _platform_sources(tc: build.Toolchain) -> list[Path]:
    device = Path(tc.tflm_dir) / DFP_DEVICE
    return [M4 / "m4_platform.c", device / "startup_ARMCM4.c", device / "system_ARMCM4.c"]


def _key(payload: Sequence[object], files: Sequence[Path]) -> str:
    digest = hashlib.sha256(json.dumps([str(p) for p in payload]).encode())
    for path in files:
        digest.update(str(path).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _link(tc: build.Toolchain, sources: Sequence[Path], libraries: Sequence[Path], out: Path, jobs: int) -> Path:
    """Compile ``sources`` (C with CC, C++ with CXX) and link them with ``libraries`` into ``out``."""
    objects, compiles = [], []
    for src in sources:
        obj = out.parent / "obj" / (src.name + ".o")
        objects.append(obj)
        ours = src.is_relative_to(HARNESS)
        warnings = ["-Wall", "-Wextra", "-Werror"] if ours else []
        compiles.append((build._compile_command(tc, src, tc.kernel_opt, [f"-I{M4}", *build.harness_includes(),
                                                                          *warnings]), obj))
    build._compile_all(compiles, Path(tc.tflm_dir), jobs)
    flags = [f for f in tc.cxxflags if f.startswith(("-mcpu", "-mfpu", "-mthumb", "-mfloat-abi", "-mlittle"))]
    tmp = out.with_suffix(".tmp.elf")
    cmd = [*tc.cxx, *flags, *LINK_FLAGS, "-T", str(LINKER_SCRIPT), *map(str, objects),
           "-Wl,--start-group", *map(str, libraries), "-lm", "-Wl,--end-group", "-o", str(tmp)]
    build._run(cmd, out.parent)
    tmp.replace(out)
    return out


def build_calibration(jobs: int = 2) -> Path:
    """The calibration firmware (``m4/calibrate.c``): no TFLM, seconds to build."""
    tc = build.toolchain("cortex-m4")
    sources = [M4 / "calibrate.c", *_platform_sources(tc)]
    key = _key([tc.cc, tc.ccflags, tc.includes, LINK_FLAGS], [*sources, LINKER_SCRIPT, M4 / "m4_platform.h"])
    elf = build.cache_dir() / f"m4-calibrate-{key}" / "calibrate.elf"
    if elf.is_file():
        return elf
    elf.parent.mkdir(parents=True, exist_ok=True)
    return _link(tc, sources, [], elf, jobs)


def build_runner(jobs: int = 2, defines: Sequence[str] = ()) -> Path:
    """The Cortex-M4 runner firmware (``m4/main.cc`` + shared runner + TFLM + CMSIS-NN), cached.

    ``defines`` go to our library (:func:`build.build_harness`), e.g. ``-DHTPW_RUNNER_NO_VERIFIER``.
    """
    tflm, htpw = build.build_harness("cortex-m4", jobs, defines=defines)
    tc = tflm.toolchain
    sources = [M4 / "main.cc", *_platform_sources(tc)]
    key = _key([tflm.path, htpw, tc.cxx, tc.cxxflags, LINK_FLAGS],
               [*sources, LINKER_SCRIPT, M4 / "m4_platform.h", htpw])
    elf = build.cache_dir() / f"m4-runner-{key}" / "htpw_m4_runner.elf"
    if elf.is_file():
        return elf
    elf.parent.mkdir(parents=True, exist_ok=True)
    return _link(tc, sources, [htpw, tflm.path], elf, jobs)


SHIM = M4 / "arduino_shim"


def build_sketch(folder: Path, jobs: int = 2) -> Path:
    """The Arduino sketch in ``folder`` (``arduino/prepare.py``'s output) as Cortex-M4 firmware for QEMU.

    Every ``.ino``/``.c``/``.cc`` of the folder is compiled as the Arduino IDE would, plus
    ``m4/arduino_shim`` (Serial on semihosting, ``micros()`` from the instruction counter), and linked
    with the Cortex-M4 TFLM library. Built fresh into ``folder/build`` (a sketch is built once).
    """
    tflm = build.build_tflm("cortex-m4", jobs)
    tc = tflm.toolchain
    out = Path(folder) / "build"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    sources = sorted(p for p in Path(folder).iterdir() if p.suffix in (".ino", ".c", ".cc"))
    shim = [SHIM / "shim_main.cc", *_platform_sources(tc)]
    includes = [f"-I{folder}", f"-I{SHIM}", f"-I{M4}", f"-DHTPW_INSTRUCTIONS_PER_TICK={INSTRUCTIONS_PER_TICK}"]
    objects, compiles = [], []
    for src in [*sources, *shim]:
        obj = out / (src.name + ".o")
        objects.append(obj)
        language = ["-x", "c++"] if src.suffix == ".ino" else []
        compiles.append((build._compile_command(tc, src, tc.kernel_opt, [*includes, *language]), obj))
    build._compile_all(compiles, Path(tc.tflm_dir), jobs)
    flags = [f for f in tc.cxxflags if f.startswith(("-mcpu", "-mfpu", "-mthumb", "-mfloat-abi", "-mlittle"))]
    elf = out / "sketch.elf"
    build._run([*tc.cxx, *flags, *LINK_FLAGS, "-T", str(LINKER_SCRIPT), *map(str, objects), str(tflm.path), "-lm",
                "-o", str(elf)], out)
    return elf


def run_sketch(folder: Path) -> dict[str, object]:
    """Build and run the sketch in ``folder`` under QEMU; its one JSON line, parsed."""
    elf = build_sketch(folder)
    proc = run_firmware(elf, Path(folder) / "build")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if len(lines) != 1:
        raise QemuError(f"the sketch printed {len(lines)} JSON lines, expected 1:\n{proc.stdout[-2000:]}")
    return json.loads(lines[0])


def run_firmware(elf: Path, workdir: Path, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run ``elf`` under QEMU with ``workdir`` as the semihosting file root; raise on a non-zero exit."""
    if shutil.which(QEMU) is None:
        raise QemuError(f"{QEMU} not found; install it (Debian: apt-get install qemu-system-arm)")
    cmd = qemu_command(elf)
    try:
        proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as error:
        raise QemuError(f"{shlex.join(cmd)} did not finish within {timeout} s") from error
    if proc.returncode != 0:
        raise QemuError(f"firmware exited with status {proc.returncode}: {shlex.join(cmd)}\n"
                        f"{(proc.stdout + proc.stderr)[-4000:]}")
    return proc


@dataclass(frozen=True)
class Calibration:
    """One loop of ``length`` iterations: ``2 * length + 1`` instructions, measured as ``ticks``."""

    length: int
    ticks: int

    @property
    def instructions(self) -> int:
        return 2 * self.length + 1

    @property
    def measured(self) -> int:
        return self.ticks * INSTRUCTIONS_PER_TICK


def calibrate() -> list[Calibration]:
    """Run ``m4/calibrate.c`` under QEMU: loops of known length and the ticks each took."""
    elf = build_calibration()
    with tempfile.TemporaryDirectory(prefix="htpw_m4_") as tmp:
        run_firmware(elf, Path(tmp))
        lines = (Path(tmp) / "calibrate.txt").read_text().split("\n")
    return [Calibration(*map(int, line.split())) for line in lines if line]


@dataclass(frozen=True)
class M4Run:
    """What one QEMU run of the Cortex-M4 runner measured.

    Instruction counts are timer ticks times :data:`INSTRUCTIONS_PER_TICK` (resolution: one tick).
    ``setup_instructions`` covers the interpreter's construction and AllocateTensors (every Prepare,
    so boot-mode synthesis); ``invoke_instructions`` holds one count per example (the first one
    includes lazy-mode synthesis); ``steady_instructions`` is example 0 run again after all others.
    ``stats`` holds the runner's JSON (the host runner's keys) with these counts added.
    """

    outputs: np.ndarray  # int8, (examples, output bytes)
    stats: dict[str, object]
    kernels: dict[int, bytes]  # by output tensor index, when asked for (dump_kernels)
    setup_instructions: int
    invoke_instructions: tuple[int, ...]
    steady_instructions: int

    @property
    def arena_used_bytes(self) -> int:
        return int(self.stats["arena_used_bytes"])  # type: ignore[call-overload]

    @property
    def cached_kernel_bytes(self) -> int:
        return int(self.stats["cached_kernel_bytes"])  # type: ignore[call-overload]


def _error(model: str, result: dict[str, object], stderr: str) -> ValueError:
    """The host runner's error type (``result.ModelError``), so both targets fail the same way."""
    error = ModelError(model, str(result["status"]), str(result["phase"]), int(result["failed_tensor"]))
    log = stderr.strip().splitlines()
    if log:
        error.add_note(f"runner log: {log[-1]}")
    return error


def run(model: bytes, inputs: np.ndarray | None = None, *, dump_kernels: bool = False, name: str = "model",
        timeout: float = TIMEOUT_S) -> M4Run:
    """Run ``model`` on the Cortex-M4 under QEMU, once per example of ``inputs`` (int8, batch first).

    Without ``inputs`` the runner makes one all-zero example. ``dump_kernels`` returns every
    synthesized kernel (by its tensor index) in ``M4Run.kernels``; the file writes that costs make
    that run's instruction counts meaningless, so they are reported as 0.

    Raises:
      result.ModelError: the runner refused the model (its "status" names why, e.g. HTPW_ERR_CRC).
      ValueError: ``inputs`` is not a non-empty int8 batch.
      QemuError, build.BuildError: QEMU or the toolchain failed.
    """
    if inputs is not None:
        inputs = np.asarray(inputs)
        if inputs.dtype != np.int8 or inputs.ndim < 1 or len(inputs) == 0:
            raise ValueError(f"inputs must be a non-empty int8 array, batch first; received dtype={inputs.dtype}"
                             f" shape={inputs.shape}")
    elf = build_runner()
    with tempfile.TemporaryDirectory(prefix="htpw_m4_") as tmp:
        work = Path(tmp)
        (work / "model.tflite").write_bytes(model)
        if dump_kernels:
            (work / "kernels.request").write_bytes(b"")
        if inputs is not None:
            (work / "input.bin").write_bytes(np.ascontiguousarray(inputs).tobytes())
        proc = run_firmware(elf, work, timeout)
        result = json.loads((work / "result.json").read_text())
        if result["status"] != "OK":
            raise _error(name, result, proc.stderr)
        outputs = np.frombuffer((work / "output.bin").read_bytes(), np.int8).reshape(result["examples"], -1)
        kernels = read_kernels((work / "kernels.bin").read_bytes()) if dump_kernels else {}
    per_tick = 0 if dump_kernels else INSTRUCTIONS_PER_TICK
    setup = result.pop("setup_ticks") * per_tick
    invokes = tuple(t * per_tick for t in result.pop("invoke_ticks"))
    steady = result.pop("steady_invoke_ticks") * per_tick
    checks = {"file_check_instructions": result.pop("file_check_ticks") * per_tick,
              "verify_instructions": result.pop("verify_ticks") * per_tick}
    stats = {**result, **checks, "target": "cortex-m4", "setup_instructions": setup,
             "first_inference_instructions": invokes[0], "inference_instructions": steady,
             "instruction_counter": f"qemu -icount shift={ICOUNT_SHIFT}, CMSDK timer 0: {INSTRUCTIONS_PER_TICK} "
                                    "instructions per tick"}
    return M4Run(outputs.copy(), stats, kernels, setup, invokes, steady)


@dataclass(frozen=True)
class FlipResult:
    """One corrupted file of :func:`run_flips`: the runner's status (``"OK"`` when it ran) and phase."""

    offset: int
    status: str
    phase: str
    outputs_sha256: str | None  # SHA-256 of all examples' int8 outputs, when it ran


def run_flips(model: bytes, inputs: np.ndarray, flips: Sequence[tuple[int, int]],
              timeout: float = TIMEOUT_S) -> list[FlipResult]:
    """Run ``model`` with each ``(offset, xor)`` byte flip applied alone, all in one QEMU boot (``m4/main.cc``).

    A firmware fault or hang raises :class:`QemuError` (the boot never writes its results).
    """
    inputs = np.asarray(inputs)
    if inputs.dtype != np.int8 or inputs.ndim < 1 or len(inputs) == 0:
        raise ValueError(f"inputs must be a non-empty int8 array, batch first; received dtype={inputs.dtype}")
    for offset, mask in flips:
        if not (0 <= offset < len(model) and 0 < mask < 256):
            raise ValueError(f"flip (offset={offset}, xor={mask}) is outside the {len(model)}-byte file or no change")
    elf = build_runner()
    with tempfile.TemporaryDirectory(prefix="htpw_m4_flips_") as tmp:
        work = Path(tmp)
        (work / "model.tflite").write_bytes(model)
        (work / "input.bin").write_bytes(np.ascontiguousarray(inputs).tobytes())
        (work / "flips.bin").write_bytes(np.asarray(flips, "<u4").tobytes())
        run_firmware(elf, work, timeout)
        lines = (work / "flips.txt").read_text().splitlines()
    results = []
    for line in lines:
        offset, status, phase, digest = line.split()
        results.append(FlipResult(int(offset), status, phase, None if digest == "-" else digest))
    if len(results) != len(flips):
        raise QemuError(f"the firmware reported {len(results)} of {len(flips)} flips")
    return results


def run_target(model: Path, inputs: np.ndarray | None = None, *, kernels: bool = False):  # noqa: ANN201
    """``run.run``'s cortex-m4 target: :func:`run` as a ``run.RunResult`` (outputs in the model's shape)."""
    from hyper_tinypw_tf.export import _flatbuffer as fb

    data = Path(model).read_bytes()
    result = run(data, inputs, dump_kernels=kernels, name=str(model))
    graph = fb.read(data, str(model)).subgraphs[0]
    shape = [int(d) for d in graph.tensors[graph.outputs[0]].shape][1:]
    return RunResult(result.outputs.reshape(len(result.outputs), *shape), result.stats, result.kernels)
