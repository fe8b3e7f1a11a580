"""Run a ``.tflite`` (folded or hyper) in the TFLM runner on a batch of int8 examples, from Python.

The host runner (``runner/host_main.cc``, built and cached by :mod:`tflm_harness.build`) registers
the ``HyperTinyPW`` op, invokes once per example and prints its statistics as JSON; this module
writes the inputs, runs it and reads the outputs back. ``TARGETS`` is the dispatch point: each
target maps to one function with :func:`run_host`'s signature (the cortex-m4 runner adds its own).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tflm_harness import build
from tflm_harness.result import ModelError, RunResult, read_kernels

__all__ = ["ModelError", "RunResult", "run", "run_cortex_m4", "run_files", "run_host"]

DEFAULT_ARENA_BYTES = 16 << 20  # host: large enough for every preset's cached kernels


def _examples(model: Path, inputs: np.ndarray | None) -> np.ndarray:
    """``inputs`` as int8 (N, ...); None means one all-zero example of the model's input shape."""
    if inputs is not None:
        array = np.asarray(inputs)
        if array.dtype != np.int8:
            raise ValueError(f"inputs must be int8 (the model's quantized input), received dtype={array.dtype}")
        if array.ndim < 1 or len(array) == 0:
            raise ValueError(f"inputs must be a batch (N, ...) with N >= 1, received shape={array.shape}")
        return array
    from hyper_tinypw_tf.export import _flatbuffer as fb

    model_t = fb.read(model.read_bytes(), str(model))
    graph = model_t.subgraphs[0]
    shape = [int(d) for d in graph.tensors[graph.inputs[0]].shape]
    return np.zeros([1, *shape[1:]], np.int8)


def run_host(model: Path, inputs: np.ndarray | None = None, *, kernels: bool = False,
             arena_bytes: int = DEFAULT_ARENA_BYTES, sanitize: bool = False) -> RunResult:
    """Run ``model`` in the host runner; ``kernels`` also returns every kernel the op synthesized.

    Raises:
      ModelError: the runner refused the model (a HyperTinyPW status such as HTPW_ERR_CRC, or its own).
      build.BuildError: the runner could not be built.
    """
    exe = build.build_host_runner(sanitize=sanitize)
    model = Path(model)
    x = _examples(model, inputs)
    with tempfile.TemporaryDirectory(prefix="htpw_run_") as tmp:
        x_path, y_path, k_path = Path(tmp) / "x.npy", Path(tmp) / "y.npy", Path(tmp) / "kernels.bin"
        np.save(x_path, np.ascontiguousarray(x))
        cmd = [str(exe), f"--model={model}", f"--input={x_path}", f"--output={y_path}",
               f"--arena_bytes={arena_bytes}"] + ([f"--kernels={k_path}"] if kernels else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode == 3:
            info = json.loads(proc.stdout.strip().splitlines()[-1])
            raise ModelError(str(model), info["status"], info["phase"], info["failed_tensor"])
        if proc.returncode == 2:  # the runner's usage errors: examples that do not fit the model, unreadable files
            prefix = "htpw_host_runner: error: "
            message = next(ln for ln in proc.stderr.splitlines() if ln.startswith(prefix)).removeprefix(prefix)
            raise ValueError(f"{model}: {message}")
        if proc.returncode != 0:
            raise RuntimeError(f"TFLM host runner exited with status {proc.returncode} on {model}: "
                               f"{proc.stderr.strip()[-2000:]}")
        stats = json.loads(proc.stdout.strip().splitlines()[-1])
        return RunResult(np.load(y_path), stats, read_kernels(k_path.read_bytes()) if kernels else {})


# target name → runner function (model, inputs, **options) → RunResult
def run_cortex_m4(model: Path, inputs: np.ndarray | None = None, *, kernels: bool = False) -> RunResult:
    """The Cortex-M4 runner under QEMU (:func:`tflm_harness.qemu.run_target`), imported when used."""
    from tflm_harness import qemu

    return qemu.run_target(model, inputs, kernels=kernels)


TARGETS: dict[str, Callable[..., RunResult]] = {"host": run_host, "cortex-m4": run_cortex_m4}


def run(model: str | Path, inputs: np.ndarray | None = None, target: str = "host", **options: object) -> RunResult:
    """Run ``model`` on ``target`` (one of :data:`TARGETS`)."""
    if target not in TARGETS:
        raise ValueError(f"--target must be one of {sorted(TARGETS)}, received target={target!r}")
    return TARGETS[target](Path(model), inputs, **options)


def run_files(model: str | Path, target: str = "host", input_path: str | Path | None = None,
              output_path: str | Path | None = None) -> dict[str, object]:
    """The ``hyper-tinypw tflm`` command: run, optionally save the outputs as .npy, return the stats."""
    inputs = None
    if input_path is not None:
        try:
            inputs = np.load(input_path, allow_pickle=False)
        except ValueError as error:
            raise ValueError(f"--input={input_path}: not a .npy array ({error})") from None
    result = run(model, inputs, target)
    if output_path is not None:
        np.save(output_path, result.outputs)
    return {"model": str(model), **result.stats}
