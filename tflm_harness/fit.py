"""``hyper-tinypw fit``: does a model fit a board, in which synthesis mode, at what cost?

Per mode (each ``HyperTinyPW`` op's mode rewritten to boot, lazy or stream; a folded file has one
row), measured on the Cortex-M4 under QEMU (:mod:`tflm_harness.qemu`):

- flash = the file's bytes + the op's code: text + data of our kernel and core objects for the
  Cortex-M4 (``arm-none-eabi-size`` of those members of ``libhtpw.a``; 0 for a folded file), less
  ``htpw_file.c`` (the runners' file check, there for any model like the runner and TFLM).
- SRAM = the arena the interpreter used (``arena_used_bytes()``). It holds every tensor, the
  persistent kernels that boot and lazy ops cache and the kernel buffer stream ops plan; the
  cached part is shown on its own.
- compute = the backbone's MACs (from the file's conv shapes), the measured instructions of one
  steady-state inference, the setup instructions, and the synthesis MACs once at setup or first
  inference (boot, lazy) or on every inference (stream).

A mode fits when both flash and SRAM are within the board's; defaults are the Arduino Nano 33
BLE's 1 MB flash and 256 KB SRAM. Instruction counts on the board are those of QEMU's Cortex-M4
for the same code (the same compiler, flags and CMSIS-NN kernels).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from tflm_harness import build, qemu

NANO_33_BLE_FLASH = 1 << 20  # nRF52840: 1 MB flash
NANO_33_BLE_SRAM = 256 << 10  # 256 KB SRAM
FOLDED = "folded"  # the row name of a file without HyperTinyPW ops
MIXED = "as file"  # the row of a file whose ops have different modes (the exporter's budget choice)
OP_SOURCE_DIRS = ("core", "kernel")  # the op's code; the runner and TFLM are there for any model
RUNNER_CORE_SOURCES = ("htpw_file.c",)  # in core/, but the runners' file check, run for any model


@dataclass(frozen=True)
class ModeFit:
    """Flash, SRAM and compute of one model in one synthesis mode, and the verdict."""

    mode: str
    file_bytes: int
    op_code_bytes: int
    sram_bytes: int  # measured arena use
    cached_kernel_bytes: int  # of sram_bytes: kernels kept by boot/lazy ops
    setup_instructions: int
    inference_instructions: int  # steady state
    first_inference_instructions: int
    synthesis_macs_setup: int  # once, at setup (boot) or at the first inference (lazy)
    synthesis_macs_per_inference: int  # stream
    flash_budget: int
    sram_budget: int

    @property
    def flash_bytes(self) -> int:
        return self.file_bytes + self.op_code_bytes

    @property
    def fits_flash(self) -> bool:
        return self.flash_bytes <= self.flash_budget

    @property
    def fits_sram(self) -> bool:
        return self.sram_bytes <= self.sram_budget

    @property
    def fits(self) -> bool:
        return self.fits_flash and self.fits_sram

    @property
    def verdict(self) -> str:
        if self.fits:
            return "fits"
        over = [name for name, ok in (("flash", self.fits_flash), ("SRAM", self.fits_sram)) if not ok]
        return "too large: " + " and ".join(over)


@dataclass(frozen=True)
class FitReport:
    """Every mode's :class:`ModeFit` for one model, with the board's budgets and the backbone MACs."""

    model: str
    flash_budget: int
    sram_budget: int
    backbone_macs: int
    rows: tuple[ModeFit, ...]

    @property
    def any_fits(self) -> bool:
        return any(row.fits for row in self.rows)

    def table(self) -> str:
        """The report as text: one line per mode, then the verdict."""
        header = (f"{'mode':<8}{'flash (file + op)':>26}{'SRAM (cached kernels)':>26}{'setup instr':>14}"
                  f"{'instr/inference':>17}{'synthesis MACs':>22}  verdict")
        lines = [
            f"Fit of {self.model} on a board with {self.flash_budget:,} bytes of flash and {self.sram_budget:,} "
            f"bytes of SRAM (Cortex-M4, measured under QEMU)",
            f"backbone MACs per inference: {self.backbone_macs:,}",
            header,
            "-" * len(header),
        ]
        for row in self.rows:
            flash = f"{row.flash_bytes:,} ({row.file_bytes:,} + {row.op_code_bytes:,})"
            sram = f"{row.sram_bytes:,} ({row.cached_kernel_bytes:,})"
            if row.synthesis_macs_per_inference:
                synthesis = f"{row.synthesis_macs_per_inference:,} / inference"
            else:
                synthesis = f"{row.synthesis_macs_setup:,} once" if row.synthesis_macs_setup else "0"
            lines.append(f"{row.mode:<8}{flash:>26}{sram:>26}{row.setup_instructions:>14,}"
                         f"{row.inference_instructions:>17,}{synthesis:>22}  {row.verdict}")
        fitting = [row.mode for row in self.rows if row.fits]
        lines.append(f"verdict: fits in {', '.join(fitting)}" if fitting else "verdict: fits in no mode")
        return "\n".join(lines)


def _size_tool(tc: build.Toolchain) -> str:
    """``arm-none-eabi-size`` beside the target's archiver."""
    return re.sub(r"ar$", "size", tc.ar)


def op_code_bytes() -> int:
    """Text + data of the HyperTinyPW kernel and core objects built for the Cortex-M4."""
    tflm, htpw = build.build_harness("cortex-m4")
    members = {src.name + ".o" for src in build.harness_sources()
               if src.parent.name in OP_SOURCE_DIRS and src.name not in RUNNER_CORE_SOURCES}
    proc = subprocess.run([_size_tool(tflm.toolchain), str(htpw)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise build.BuildError(f"{_size_tool(tflm.toolchain)} {htpw} failed:\n{proc.stderr}")
    total, seen = 0, set()
    for line in proc.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 6 and fields[5] in members:
            total += int(fields[0]) + int(fields[1])
            seen.add(fields[5])
    if seen != members:
        raise build.BuildError(f"{htpw} lacks the op's objects {sorted(members - seen)}")
    return total


def _model_t(data: bytes, what: str):  # noqa: ANN202 (schema.ModelT lives in a generated module)
    from hyper_tinypw_tf.export import _flatbuffer as fb

    return fb.read(data, what)


def hyper_ops(data: bytes, what: str = "model") -> list:  # noqa: ANN201
    """The decoded options of every HyperTinyPW op of ``data``, in graph order."""
    from hyper_tinypw_tf.export import _flatbuffer as fb
    from hyper_tinypw_tf.export import format as fmt

    model_t = _model_t(data, what)
    return [fmt.decode_options(None if op.customOptions is None else np.asarray(op.customOptions, np.uint8).tobytes())
            for op in model_t.subgraphs[0].operators if fb.op_name(model_t, op) == fmt.CUSTOM_OP_NAME]


def with_mode(data: bytes, mode: str, what: str = "model") -> bytes:
    """``data`` with every HyperTinyPW op's ``mode`` option set to ``mode`` (file CRC resealed)."""
    from hyper_tinypw_tf.export import _flatbuffer as fb
    from hyper_tinypw_tf.export import format as fmt
    from hyper_tinypw_tf.export import hyper

    if mode not in fmt.MODES:
        raise ValueError(f"fit: mode must be one of {fmt.MODES}, received mode={mode!r}")
    model_t = _model_t(data, what)
    for op in model_t.subgraphs[0].operators:
        if fb.op_name(model_t, op) == fmt.CUSTOM_OP_NAME:
            options = fmt.decode_options(np.asarray(op.customOptions, np.uint8).tobytes())
            op.customOptions = np.frombuffer(fmt.encode_options(replace(options, mode=mode)), np.uint8).copy()
    return hyper.seal(fb.write(model_t))


def backbone_macs(data: bytes, what: str = "model") -> int:
    """Multiply-accumulates of one inference: CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED of the file."""
    from hyper_tinypw_tf.export import _flatbuffer as fb

    model_t = _model_t(data, what)
    tensors = model_t.subgraphs[0].tensors
    total = 0
    for op in model_t.subgraphs[0].operators:
        name = fb.op_name(model_t, op)
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        out = [int(d) for d in tensors[op.outputs[0]].shape]
        filt = [int(d) for d in tensors[op.inputs[1]].shape]
        if name == "CONV_2D":  # filter (C_out, kh, kw, C_in), output (1, H, W, C_out)
            total += int(np.prod(out)) * int(np.prod(filt[1:]))
        elif name == "DEPTHWISE_CONV_2D":  # filter (1, kh, kw, C_out)
            total += int(np.prod(out)) * int(np.prod(filt[1:3]))
        else:  # weights (C_out, C_in)
            total += int(np.prod(filt))
    return total


def synthesis_macs(options: Sequence) -> int:
    """MACs to make every kernel of these ops once (the generators' own count, docs/synthesis.md §3)."""
    from hyper_tinypw_tf import generators

    total = 0
    for o in options:
        generator = generators.from_op(o)
        total += generator.synthesis_macs(o.c_in, o.c_out)
    return total


def fit(data: bytes, *, name: str = "model", flash: int = NANO_33_BLE_FLASH, sram: int = NANO_33_BLE_SRAM,
        modes: Sequence[str] | None = None) -> FitReport:
    """Measure ``data`` on the Cortex-M4 in each mode and judge it against ``flash`` and ``sram`` bytes.

    Args:
      data: a hyper or folded ``.tflite``.
      name: how the report names the model (e.g. its file name).
      flash, sram: the board's budgets in bytes.
      modes: the modes to measure (default: boot, lazy and stream; a folded file has one row). A file
        whose ops have different modes (``--mode=budget``) also gets a row as it is (:data:`MIXED`);
        ``modes=()`` measures only the file as it is.

    Raises:
      ValueError: a bad budget or mode, a file that is no model, or a model the runner rejects.
    """
    from hyper_tinypw_tf.export import format as fmt

    for label, value in (("flash", flash), ("sram", sram)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"fit: {label} must be a positive number of bytes, received {label}={value!r}")
    ops = hyper_ops(data, name)
    code = op_code_bytes() if ops else 0
    if not ops:
        variants = {FOLDED: data}
    else:
        chosen = tuple(modes) if modes is not None else fmt.MODES
        variants = {mode: with_mode(data, mode, name) for mode in chosen}
        own = {o.mode for o in ops}
        if len(own) > 1:  # a per-layer choice (--mode=budget): the file as it is, too
            variants[MIXED] = data
        elif not chosen:  # modes=(): the file as it is, under its one mode
            variants[own.pop()] = data
    rows = []
    for mode, variant in variants.items():
        mode_ops = hyper_ops(variant, name)
        measured = qemu.run(variant, name=name)
        rows.append(ModeFit(
            mode=mode, file_bytes=len(variant), op_code_bytes=code, sram_bytes=measured.arena_used_bytes,
            cached_kernel_bytes=measured.cached_kernel_bytes, setup_instructions=measured.setup_instructions,
            inference_instructions=measured.steady_instructions,
            first_inference_instructions=measured.invoke_instructions[0],
            synthesis_macs_setup=synthesis_macs([o for o in mode_ops if o.mode != fmt.MODE_STREAM]),
            synthesis_macs_per_inference=synthesis_macs([o for o in mode_ops if o.mode == fmt.MODE_STREAM]),
            flash_budget=flash, sram_budget=sram,
        ))
    return FitReport(name, flash, sram, backbone_macs(data, name), tuple(rows))


def fit_file(path: str | Path, *, flash: int = NANO_33_BLE_FLASH, sram: int = NANO_33_BLE_SRAM) -> FitReport:
    """:func:`fit` of a file, named by its path in the report."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"fit: --model={str(path)!r} is not a file")
    return fit(path.read_bytes(), name=str(path), flash=flash, sram=sram)
