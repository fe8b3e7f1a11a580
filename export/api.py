"""What ``hyper-tinypw export`` and ``hyper-tinypw expand`` call: bytes functions plus atomic file writing.

``export_model`` and ``expand`` are pure (bytes out). ``export_files`` and ``expand_file`` write
through ``write_atomic``: every output goes to a temporary file in the target directory and is
renamed only when all outputs are complete, so a failing command leaves no partial file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hyper_tinypw_tf import accounting, atomic
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.export import c_array, convert, hyper, peers, slim
from hyper_tinypw_tf.export import expand as _expand
from hyper_tinypw_tf.export import format as fmt
from hyper_tinypw_tf.export.report import FileReport, file_report

FOLDED = "folded"
HYPER = "hyper"
FORMATS = (FOLDED, HYPER)


def _validate(fmt_name: Any, mode: Any = fmt.MODE_BOOT, lut_bits: Any = None) -> None:
    if fmt_name not in FORMATS:
        raise ValueError(f"export: fmt must be one of {FORMATS}, received fmt={fmt_name!r}")
    if mode not in hyper.EXPORT_MODES:
        raise ValueError(f"export: mode must be one of {hyper.EXPORT_MODES}, received mode={mode!r}")
    if lut_bits is not None:
        peers.check_lut_bits(lut_bits, "export", "lut_bits")


def export_model(
    model: keras.Model, *, fmt: str, mode: str = fmt.MODE_BOOT, representative_data: Any = None,
    slim_zero_points: bool = False, sram_budget: int | None = None, lut_bits: int | None = None,
) -> bytes:
    """``.tflite`` bytes of ``model``: "folded" (kernels stored) or "hyper" (kernels made by HyperTinyPW ops).

    Args:
      model: a QAT model (``quantize_model``) or a float model with ``representative_data``.
      fmt: "folded" or "hyper".
      mode: "boot", "lazy" or "stream" (hyper only; written into each op's options), or "budget":
        per layer boot or stream so that cached kernels fit ``sram_budget`` (``hyper.budget_modes``).
      representative_data: calibration inputs for a float model.
      sram_budget: bytes of SRAM for cached kernels, with mode="budget".
      slim_zero_points: folded only: one zero point per per-channel tensor, as hyper files store them,
        for byte comparisons at a budget (TFLM reads such a file; LiteRT's reader refuses it).
      lut_bits: LUT-compress each stored 1×1 filter where a table pays (``peers.lut_compress``) to
        ``lut_bits``-bit indices, decoded by TFLM's DECODE op: the model must be clustered to at most
        ``2**lut_bits`` values per channel (``hyper_tinypw_tf.clustering``, ``hyper-tinypw cluster``).
        Zero points are then slimmed in either format (only TFLM runs DECODE anyway).
    """
    _validate(fmt, mode, lut_bits)
    folded = convert.convert_model(model, representative_data=representative_data)
    if fmt == FOLDED:
        data = folded
    else:
        macs = accounting.synthesis_macs_by_layer(model) if mode == hyper.BUDGET else None
        data = hyper.to_hyper(folded, convert.generated_layers(model), mode=mode, sram_budget=sram_budget,
                              synthesis_macs=macs)
    if lut_bits is not None:  # TFLM's compressor reads the plain file; the zero points are slimmed after it
        return slim.slim_zero_points_bytes(peers.lut_compress(data, lut_bits))
    return slim.slim_zero_points_bytes(data) if fmt == FOLDED and slim_zero_points else data


def expand(hyper_bytes: bytes) -> bytes:
    """Folded bytes of a hyper file, kernels synthesized on the host."""
    return _expand.expand(hyper_bytes)


def byte_report(model: keras.Model, data: bytes, *, fmt: str, lut_bits: int | None = None) -> FileReport:
    """The exported file's byte table: stored tensors checked against ``data`` plus flatbuffer overhead."""
    _validate(fmt, lut_bits=lut_bits)
    report = accounting.packed_bytes(model) if fmt == HYPER else accounting.folded_bytes(model)
    return file_report(report if lut_bits is None else peers.lut_report(report, lut_bits), data)


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename."""
    atomic.write_all({Path(path): data})


def export_files(
    model: keras.Model,
    output: str | os.PathLike[str],
    *,
    fmt: str,
    mode: str = fmt.MODE_BOOT,
    representative_data: Any = None,
    c_array_name: str | None = None,
    print_fn: Callable[[str], None] | None = print,
    slim_zero_points: bool = False,
    sram_budget: int | None = None,
    lut_bits: int | None = None,
) -> FileReport:
    """Export ``model`` to ``output`` (and ``NAME.h``/``NAME.cc`` beside it), print the byte table.

    Nothing is written unless every step succeeded.
    """
    _validate(fmt, mode, lut_bits)
    output = Path(output)
    if not output.parent.is_dir():
        raise ValueError(f"export: the directory of output={str(output)!r} does not exist")
    if c_array_name is not None:
        c_array.to_c_array(b"\0", c_array_name)  # validates the name before any work
    data = export_model(
        model, fmt=fmt, mode=mode, representative_data=representative_data, slim_zero_points=slim_zero_points,
        sram_budget=sram_budget, lut_bits=lut_bits,
    )
    report = byte_report(model, data, fmt=fmt, lut_bits=lut_bits)
    outputs: dict[Path, bytes | str] = {output: data}
    if c_array_name is not None:
        header, source = c_array.to_c_array(data, c_array_name)
        outputs[output.parent / f"{c_array_name}.h"] = header
        outputs[output.parent / f"{c_array_name}.cc"] = source
    atomic.write_all(outputs)
    if print_fn is not None:
        report.summary(print_fn)
        if mode == hyper.BUDGET and fmt == HYPER:
            layers = convert.generated_layers(model)
            costs = hyper.budget_costs(layers, accounting.synthesis_macs_by_layer(model))
            print_fn(hyper.budget_table(layers, hyper.budget_modes(costs, sram_budget), costs, sram_budget))
    return report


def expand_file(source: str | os.PathLike[str], output: str | os.PathLike[str]) -> None:
    """Read a hyper file, write its folded equivalent atomically."""
    data = Path(source).read_bytes()
    write_atomic(output, expand(data))
