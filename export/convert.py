"""Keras model → folded full-integer INT8 ``.tflite`` bytes.

"Folded" means every generated PW kernel sits in the file as an ordinary CONV_2D filter, with
BatchNorm folded in. The TFLite converter does the graph work; this module then makes each
generated filter exactly what the device will synthesize: the int8 bytes and per-channel scales
of ``hyper_tinypw_tf.encode.synthesize`` (the converter starts from the float QAT simulation,
which can differ from the integer path by a few units), with the bias requantized to the new
scale. Constant tensors are renamed to the stored-tensor names of ``hyper_tinypw_tf.storage``
(``<layer>/kernel``, ``<layer>/bias``) so accounting and ``hyper`` find them without guessing.

QAT models (``hyper_tinypw_tf.quantization.quantize_model``) convert with their learned ranges;
a float model needs ``representative_data`` for calibration and is refused without it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from hyper_tinypw_tf import encode, inspect, synthesis
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import slim
from hyper_tinypw_tf.layers import HyperPWConv2D
from hyper_tinypw_tf.storage import StoredTensor

log = logging.getLogger("export")

_WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


@dataclass(frozen=True)
class GeneratedLayer:
    """One HyperPWConv2D as the integer synthesis sees it, with the tensors a hyper file stores for it."""

    name: str
    generator_name: str
    generator: encode.EncodedGenerator
    layer: encode.EncodedLayer
    shared_tensors: tuple[StoredTensor, ...]  # the generator's, stored once per model
    layer_tensors: tuple[StoredTensor, ...]  # codes, head, requant, signs
    input_roles: tuple[str, ...]  # the op's inputs in order, as the strategy declares them
    kernel: np.ndarray  # int8 (C_out, C_in), synthesize's output
    scales: np.ndarray  # float32 (C_out,)
    bn_factor: np.ndarray  # signed per-channel gain of the BatchNorm folded in (ones without BN)

    def unfolded_kernel(self) -> np.ndarray:
        """Float (C_out, C_in) kernel that, once the converter folds BatchNorm in, dequantizes the synthesized one."""
        folded = self.kernel.astype(np.float64) * self.scales.astype(np.float64)[:, None]
        safe = np.where(self.bn_factor == 0, 1.0, self.bn_factor)[:, None]
        return np.where(self.bn_factor[:, None] == 0, 0.0, folded / safe).astype(np.float32)


def check_layers(model: keras.Model) -> None:
    """Raise ValueError naming the first layer the exporter cannot lower."""
    for layer in model.layers:
        if inspect.is_quantize_input(layer):
            continue
        inner = inspect.unwrap(layer)
        if not inspect.is_supported(layer):
            raise ValueError(
                f"convert: layer {inner.name!r} of type {type(inner).__name__} is not supported; "
                f"supported layers: {sorted({c.__name__ for c in inspect.SUPPORTED_LAYERS})}"
            )
        # Layers are matched to the converter's ops in graph order, which is only unambiguous for
        # a chain: refuse branches rather than risk a kernel in the wrong op.
        fan_in = sum(len(node.keras_inputs) for node in layer.inbound_nodes)
        if len(layer.outbound_nodes) > 1 or fan_in > 1:
            raise ValueError(
                f"convert: layer {inner.name!r} branches (fan-in {fan_in}, fan-out {len(layer.outbound_nodes)}); "
                "the exporter supports chains of layers, like the reference models"
            )


def generated_layers(model: keras.Model) -> list[GeneratedLayer]:
    """Encode every HyperPWConv2D of ``model`` (each generator once), in model order."""
    folds = inspect.folded_batchnorms(model)
    encoded: dict[int, encode.EncodedGenerator] = {}
    out = []
    for wrapper in model.layers:
        layer = inspect.unwrap(wrapper)
        if not isinstance(layer, HyperPWConv2D):
            continue
        gen = layer.generator
        if id(gen) not in encoded:
            encoded[id(gen)] = encode.encode_generator(gen)
        enc = encoded[id(gen)]
        bn = folds.get(layer.name)
        factor = None if bn is None else inspect.batchnorm_gain(bn)
        enc_layer = encode.encode_layer(layer, enc, channel_factor=factor)
        kernel, scales = encode.synthesize(enc, enc_layer)
        out.append(
            GeneratedLayer(
                layer.name, gen.shared_name, enc, enc_layer, tuple(gen.shared_tensors()),
                tuple(gen.layer_tensors(layer.name, layer.in_channels, layer.filters)), gen.input_roles(),
                kernel, scales, np.ones(layer.filters) if factor is None else factor,
            )
        )
    return out


def _weight_layers(model: keras.Model) -> list[tuple[str, list[int]]]:
    """Weight layers in graph order with the filter shape TFLite gives them."""
    out = []
    for layer in model.layers:
        inner = inspect.unwrap(layer)
        if isinstance(inner, HyperPWConv2D):
            out.append((inner.name, [inner.filters, 1, 1, inner.in_channels]))
        elif isinstance(inner, keras.layers.DepthwiseConv2D):
            kh, kw, c_in, mult = (int(d) for d in inner.depthwise_kernel.shape)
            out.append((inner.name, [1, kh, kw, c_in * mult]))
        elif isinstance(inner, keras.layers.Conv2D):
            kh, kw, c_in, c_out = (int(d) for d in inner.kernel.shape)
            out.append((inner.name, [c_out, kh, kw, c_in]))
        elif isinstance(inner, keras.layers.Dense):
            c_in, c_out = (int(d) for d in inner.kernel.shape)
            out.append((inner.name, [c_out, c_in]))
    return out


def _rename_and_map(model_t: fb.schema.ModelT, layers: list[tuple[str, list[int]]]) -> dict[str, fb.schema.OperatorT]:
    """Pair weight layers with weight ops (both in graph order, shapes checked) and rename their constants.

    The converter's tensor names are not stable (folded constants get names like
    ``arith.constant10``), so layers are matched by order and filter shape instead.
    """
    subgraph = model_t.subgraphs[0]
    ops = [op for op in subgraph.operators if fb.op_name(model_t, op) in _WEIGHT_OPS]
    if len(ops) != len(layers):
        raise RuntimeError(
            f"convert: the converter made {len(ops)} conv/dense ops for {len(layers)} weight layers; "
            "some layer was not lowered to a single builtin op"
        )
    found: dict[str, fb.schema.OperatorT] = {}
    for (name, shape), op in zip(layers, ops, strict=True):
        weight = subgraph.tensors[op.inputs[1]]
        if [int(d) for d in weight.shape] != shape:
            raise RuntimeError(
                f"convert: layer {name!r} should own a filter of shape {shape}, but the op in its place has "
                f"{fb.tensor_name(weight)!r} of shape {[int(d) for d in weight.shape]}"
            )
        found[name] = op
        weight.name = f"{name}/kernel".encode()
        if len(op.inputs) < 3 or op.inputs[2] < 0:
            _add_zero_bias(model_t, op, shape[-1] if fb.op_name(model_t, op) == "DEPTHWISE_CONV_2D" else shape[0])
        subgraph.tensors[op.inputs[2]].name = f"{name}/bias".encode()
    return found


def _add_zero_bias(model_t: fb.schema.ModelT, op: fb.schema.OperatorT, channels: int) -> None:
    """Give a conv/dense whose bias the converter dropped (all zeros) an explicit zero int32 bias.

    Every exported conv and dense carries a bias (``storage.channel_metadata``), so the file
    layout does not depend on whether a trained bias happens to be zero.
    """
    buffer = fb.schema.BufferT()
    buffer.data = np.zeros(4 * channels, np.uint8)
    model_t.buffers.append(buffer)
    tensor = fb.schema.TensorT()
    tensor.shape = np.array([channels], np.int32)
    tensor.type = fb.schema.TensorType.INT32
    tensor.buffer = len(model_t.buffers) - 1
    subgraph = model_t.subgraphs[0]
    subgraph.tensors.append(tensor)
    inputs = [int(i) for i in op.inputs][:2]
    op.inputs = np.array([*inputs, len(subgraph.tensors) - 1], np.int32)


def _place_kernel(model_t: fb.schema.ModelT, op: fb.schema.OperatorT, gen: GeneratedLayer) -> None:
    """Make a generated layer's filter synthesize's bytes and scales; requantize its bias to match."""
    subgraph = model_t.subgraphs[0]
    filt = subgraph.tensors[op.inputs[1]]
    c_out, c_in = gen.kernel.shape
    if filt.type != fb.schema.TensorType.INT8 or list(filt.shape) != [c_out, 1, 1, c_in]:
        raise RuntimeError(
            f"convert: filter of layer {gen.name!r} is {fb.type_name(filt.type)} {list(filt.shape)}, "
            f"expected INT8 {[c_out, 1, 1, c_in]}"
        )
    old_scales = np.asarray(filt.quantization.scale, np.float64)
    previous = np.frombuffer(fb.buffer_bytes(model_t, filt), np.int8).reshape(gen.kernel.shape)
    differing = int(np.sum(previous != gen.kernel))
    if differing:
        log.warning("convert: layer %r: %d filter entries of the converter differ from synthesis; "
                    "using synthesis", gen.name, differing)
    fb.set_buffer(model_t, filt, gen.kernel.astype(np.int8).tobytes())
    filt.quantization.scale = gen.scales.astype(np.float32)
    filt.quantization.zeroPoint = np.zeros(c_out, np.int64)
    filt.quantization.quantizedDimension = 0
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        bias = subgraph.tensors[op.inputs[2]]
        old = np.frombuffer(fb.buffer_bytes(model_t, bias), np.int32).astype(np.float64)
        new = synthesis.round_half_away(old * old_scales / gen.scales.astype(np.float64))
        fb.set_buffer(model_t, bias, np.clip(new, synthesis.INT32_MIN, synthesis.INT32_MAX).astype(np.int32).tobytes())


def _drop_bias_quantization(model_t: fb.schema.ModelT, ops: Iterable[fb.schema.OperatorT]) -> None:
    """Remove the int32 biases' quantization tables: no int8 kernel reads them (scale = input × filter)."""
    subgraph = model_t.subgraphs[0]
    for op in ops:
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            subgraph.tensors[op.inputs[2]].quantization = None


def _validate_options(model: Any, representative_data: Any) -> bool:
    """Check the arguments before any work; returns whether the model is a QAT model."""
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(f"convert: model must be a built tf_keras Model, received model={model!r}")
    check_layers(model)
    qat = inspect.is_qat(model)
    if not qat and representative_data is None:
        raise ValueError(
            f"convert: model {model.name!r} is a float model, and full-integer conversion needs calibration: "
            "pass representative_data=<array of example inputs>, or make it a QAT model with "
            "hyper_tinypw_tf.quantization.quantize_model and train it; received representative_data=None"
        )
    if representative_data is not None and isinstance(representative_data, np.ndarray):
        expected = tuple(model.input_shape[1:])
        if representative_data.ndim != len(expected) + 1 or tuple(representative_data.shape[1:]) != expected:
            raise ValueError(
                f"convert: representative_data must have shape (N, {', '.join(map(str, expected))}), "
                f"received representative_data.shape={representative_data.shape}"
            )
        if len(representative_data) == 0:
            raise ValueError("convert: representative_data is empty, received representative_data.shape=(0, ...)")
    return qat


def _examples(data: Any) -> Iterator[list[np.ndarray]]:
    for x in data:
        yield [np.asarray(x, np.float32)[None]]


def convert_model(model: keras.Model, *, representative_data: Any = None) -> bytes:
    """Folded INT8 ``.tflite`` bytes (int8 input and output) of a tf_keras model.

    Args:
      model: a QAT model from ``quantize_model`` (uses its learned ranges), or a float model.
      representative_data: calibration inputs (array ``(N, *input_shape)`` or an iterable of single
        examples) for a float model; ignored for a QAT model.

    Returns:
      The flatbuffer bytes; two calls on the same model give the same bytes.

    Raises:
      ValueError: an unbuilt model, an unsupported layer, or a float model without calibration data.
    """
    qat = _validate_options(model, representative_data)
    generated = generated_layers(model)
    inner = [inspect.unwrap(layer) for layer in model.layers]
    hyper = {layer.name: layer for layer in inner if isinstance(layer, HyperPWConv2D)}
    try:
        # Each generated kernel enters the graph as a constant: the converter then folds BatchNorm
        # into it as into any Conv2D (it does not constant-fold a large generator graph by itself),
        # and a float model is calibrated on the kernels the device will make.
        for gen in generated:
            constant = tf.constant(gen.unfolded_kernel())
            hyper[gen.name].generated_kernel = lambda quantize=None, k=constant: k
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        if not qat:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.representative_dataset = lambda: _examples(representative_data)
            # Per-tensor dense weights, as QAT makes them: one file layout for both paths, and the
            # layout storage.channel_metadata counts (one scale for a dense layer).
            converter._experimental_disable_per_channel_quantization_for_dense_layers = True
        raw = converter.convert()
    finally:
        for layer in hyper.values():
            layer.__dict__.pop("generated_kernel", None)
    return finalize(raw, model, generated)


def finalize(raw: bytes, model: keras.Model, generated: list[GeneratedLayer]) -> bytes:
    """Converter output → folded bytes: canonical names, exact generated filters, no bias quantization.

    Tensor names then follow ``export/slim.py``, as in hyper files.
    """
    model_t = fb.read(raw, "converter output")
    ops = _rename_and_map(model_t, _weight_layers(model))
    for gen in generated:
        _place_kernel(model_t, ops[gen.name], gen)
    _drop_bias_quantization(model_t, ops.values())
    _unshare_buffers(model_t)
    # The names rule of every exported file (export/slim.py), so byte comparisons are fair.
    slim.strip_names(model_t, (int(i) for op in ops.values() for i in op.inputs[1:3]))
    return slim.sealed(model_t)  # the file CRC-32 (docs/format.md §7), as every exported file carries


def _unshare_buffers(model_t: fb.schema.ModelT) -> None:
    """Give every constant tensor its own buffer.

    The converter stores equal constants once (all-zero biases of an untrained model, say), which
    would make the file smaller than the sum of what each layer stores by a data-dependent amount.
    One buffer per tensor keeps ``accounting total == len(file)`` true for every model.
    """
    seen: set[int] = set()
    for tensor in model_t.subgraphs[0].tensors:
        if not tensor.buffer or not len(fb.buffer_bytes(model_t, tensor)):
            continue
        if tensor.buffer in seen:
            copy = fb.schema.BufferT()
            copy.data = np.array(model_t.buffers[tensor.buffer].data, np.uint8).copy()
            model_t.buffers.append(copy)
            tensor.buffer = len(model_t.buffers) - 1
        seen.add(tensor.buffer)
