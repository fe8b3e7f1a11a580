"""Scoring speed: the bit-exact ways to run a file on many examples, timed on the frontier's largest ECG file.

Reproduce: ``python -m bench.bench_scoring [--examples 2000] [--preset 64k]`` from the repository root.
Scoring is part of the frontier's budget (issue 16): every fold scores its validation and test beats
in TFLM, and a hyper 64k file costs 5.8× the stored CNN's MACs. The preset is built untrained and
wrapped for QAT (weights do not change the integer kernels' work), exported as a hyper file and as
the folded file of the same model, and every path below runs the same seeded random int8 examples.
Each path's outputs are compared with the first's, so a path is listed as bit-exact only if it is.

- ``host runner, hyper``: the frontier's path for hyper files: the compiled TFLM host runner with the
  ``HyperTinyPW`` op, one process for the whole batch (kernels synthesized once, at setup).
- ``host runner, folded``: the same runner on the folded file.
- ``tflm python, folded``: the tflite_micro wheel's interpreter, the frontier's path for stored files.
- ``litert ref, folded``: LiteRT's reference kernels (``BUILTIN_REF``), one invoke per example (LiteRT
  refuses the slimmed zero points of the frontier's files, so it is listed, not used).
- ``frontier: ...``: ``pipeline.op_predict``: the expanded hyper file in the wheel, after the file itself
  gave equal outputs through the op on the first 64 examples.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench._report import machine_line, write_section
from hyper_tinypw_tf import accounting, models, quantization
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import api, interpreters
from tflm_harness import build, run

COMMAND = "python -m bench.bench_scoring"


def _files(preset: str) -> tuple[bytes, bytes, int]:
    """The hyper and folded files of the untrained QAT model of ``preset``, and its MACs per example."""
    keras.utils.set_random_seed(0)
    model = models.separable_cnn_1d(preset, pw="hyper")
    qat = quantization.quantize_model(model)
    return (api.export_model(qat, fmt=api.HYPER), api.export_model(qat, fmt=api.FOLDED),
            accounting.runtime_bill(model).inference_macs)


def _paths(hyper: bytes, folded: bytes, folder: Path) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    (folder / "hyper.tflite").write_bytes(hyper)
    (folder / "folded.tflite").write_bytes(folded)
    return {
        "host runner, hyper": lambda x: run.run_host(folder / "hyper.tflite", x).outputs,
        "host runner, folded": lambda x: run.run_host(folder / "folded.tflite", x).outputs,
        "tflm python, folded": lambda x: interpreters.run_int8(folded, x, "tflm"),
        "litert ref, folded": lambda x: interpreters.run_int8(folded, x, "litert"),
        "frontier: pipeline.op_predict (hyper expanded in tflm python, op checked on 64)": lambda x: _op_predict(
            hyper, folder / "hyper.tflite", x),
    }


def _op_predict(hyper: bytes, path: Path, x: np.ndarray) -> np.ndarray:
    """``pipeline.op_predict`` on ``x`` given as the floats that quantize back to it, its logits back as int8."""
    from hyper_tinypw_tf.app import pipeline

    (in_scale, in_zero), (out_scale, out_zero) = interpreters.io_quantization(hyper)
    logits = pipeline.op_predict(path, hyper, (x.astype(np.float32) - in_zero) * in_scale)
    return np.round(logits / out_scale + out_zero).astype(np.int8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--preset", default="64k")
    args = parser.parse_args()

    build.build_host_runner()  # built (and cached) before any clock starts
    hyper, folded, macs = _files(args.preset)
    graph = fb.read(folded, "folded").subgraphs[0]
    shape = [int(d) for d in graph.tensors[graph.inputs[0]].shape[1:]]
    x = np.random.default_rng(0).integers(-128, 128, size=(args.examples, *shape), dtype=np.int8)
    rows, reference = [], None
    with tempfile.TemporaryDirectory(prefix="bench_scoring_") as tmp:
        for name, path in _paths(hyper, folded, Path(tmp)).items():
            start = time.perf_counter()
            y = path(x)
            seconds = time.perf_counter() - start
            reference = y if reference is None else reference
            exact = "reference" if y is reference else ("yes" if np.array_equal(y, reference) else "**no**")
            rows.append(f"| {name} | {seconds:.1f} | {1000 * seconds / args.examples:.2f} | {exact} |")
            print(rows[-1], flush=True)
    body = "\n".join([
        "## Scoring speed: bit-exact paths for many examples (issue 16)",
        "",
        f"Command: `{COMMAND} --examples {args.examples} --preset {args.preset}`  ",
        f"Machine: {machine_line()}  ",
        f"Model: preset {args.preset}, hyper PW, untrained, QAT-wrapped, exported hyper ({len(hyper):,} B) and "
        f"folded ({len(folded):,} B); {macs:,} MACs per example; {args.examples:,} seeded random int8 examples "
        f"of shape {tuple(shape)}. Seconds are wall time for the whole batch, setup included (the host runner "
        "builds its arena and synthesizes the kernels once per call).",
        "",
        "| path | seconds | ms per example | outputs equal to the first path's |",
        "|---|---:|---:|---|",
        *rows,
    ])
    write_section("scoring", body)


if __name__ == "__main__":
    main()
