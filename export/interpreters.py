"""Run an exported ``.tflite`` in the two integer runtimes the project checks against each other.

TFLM's Python interpreter is the deployment runtime; LiteRT runs its reference kernels
(``BUILTIN_REF``): its default XNNPACK delegate requantizes differently, so only the reference
kernels implement the integer contract TFLM does. Both take int8 inputs and return int8 outputs;
``predict`` wraps the (de)quantization for float callers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

RUNTIMES = ("tflm", "litert")


def io_quantization(data: bytes) -> tuple[tuple[float, int], tuple[float, int]]:
    """(scale, zero point) of the model's input and output, read from the flatbuffer.

    Not with LiteRT's parser: it refuses files with one zero point per per-channel tensor
    (``export/slim.py``), which TFLM runs.
    """
    from hyper_tinypw_tf.export import _flatbuffer as fb

    subgraph = fb.read(data, "model").subgraphs[0]

    def io(index: int) -> tuple[float, int]:
        quant = subgraph.tensors[index].quantization
        return float(quant.scale[0]), int(quant.zeroPoint[0])

    return io(int(subgraph.inputs[0])), io(int(subgraph.outputs[0]))


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Float input → int8 with the model's input quantization (round half away from zero)."""
    q = np.sign(x / scale) * np.floor(np.abs(x / scale) + 0.5) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def run_int8(data: bytes, examples: Iterable[np.ndarray], runtime: str = "tflm") -> np.ndarray:
    """int8 output of ``runtime`` for each int8 example (one invoke per example, batch 1)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, received runtime={runtime!r}")
    from hyper_tinypw_tf.export import expand

    expand.check_file_crc(data, "model", required=False)  # a corrupted file is refused, not run
    outputs = []
    if runtime == "tflm":
        from tflite_micro.python.tflite_micro import runtime as micro

        interpreter = micro.Interpreter.from_bytes(data)
        for example in examples:
            interpreter.set_input(example[None], 0)
            interpreter.invoke()
            outputs.append(interpreter.get_output(0)[0].copy())
    else:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        interpreter = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        interpreter.allocate_tensors()
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        for example in examples:
            interpreter.set_tensor(inp["index"], example[None])
            interpreter.invoke()
            outputs.append(interpreter.get_tensor(out["index"])[0].copy())
    return np.array(outputs)


def predict(data: bytes, x: np.ndarray, runtime: str = "tflm",
            run: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Dequantized outputs (the model's logits) for float inputs ``x``.

    ``run`` maps the int8 examples to int8 outputs, one row per example, for a runtime this
    module does not host (the HyperTinyPW op's TFLM runner); by default :func:`run_int8`.
    """
    (in_scale, in_zero), (out_scale, out_zero) = io_quantization(data)
    q = quantize(np.asarray(x, np.float32), in_scale, in_zero)
    out = run(q) if run is not None else run_int8(data, q, runtime)
    return (out.astype(np.float32) - out_zero) * out_scale
