"""Folded ``.tflite`` bytes → hyper bytes: each generated filter becomes a ``HyperTinyPW`` custom op's output.

The rewrite only appends: new constant tensors (codes, heads, requant, signs, and each shared
generator tensor once), their buffers, one operator code, and one custom op inserted before the
CONV_2D that consumes the filter. The filter tensor keeps its index, shape and per-channel
quantization; only its buffer is emptied. ``expand`` undoes exactly this, so expanding a hyper
file gives back the folded file. Tensor names are the stored-tensor names the strategies declare
(``hyper_tinypw_tf.storage.StoredTensor``), and each buffer's size is checked against its record.
"""

from __future__ import annotations

import numpy as np

from export import _flatbuffer as fb
from export import format as fmt
from export.convert import GeneratedLayer
from hyper_tinypw_tf import synthesis
from hyper_tinypw_tf.storage import StoredTensor

schema = fb.schema


def strategy_of(gen: GeneratedLayer) -> str:
    """The format's strategy name for an encoded generator."""
    if gen.generator.strategy == "tiled":
        return fmt.TILED
    return fmt.PAPER_DENSE if gen.generator.head == "dense" else fmt.PAPER_FACTORIZED


def role_of_name(name: str) -> str:
    """The input role of a stored tensor, from its name (a paper layer's single "code" is its codes)."""
    suffix = name.rsplit("/", 1)[-1]
    return fmt.ROLE_CODES if suffix == "code" else suffix


def _role(record: StoredTensor) -> str:
    return role_of_name(record.name)


def _stored_values(gen: GeneratedLayer, role: str) -> tuple[np.ndarray, int]:
    """The integer values of one input and their stored bits."""
    g, layer = gen.generator, gen.layer
    values = {
        fmt.ROLE_CODES: (layer.codes, g.code_bits),
        fmt.ROLE_W1: (g.w1, g.weight_bits),
        fmt.ROLE_B1: (g.b1, 32),
        fmt.ROLE_W2: (g.extra, g.weight_bits),
        fmt.ROLE_HEAD: (layer.head, g.weight_bits),
        fmt.ROLE_B_SHARED: (g.extra, g.weight_bits),
        fmt.ROLE_REQUANT: (np.array([layer.requant.multiplier, layer.requant.shift], np.int32), 32),
        fmt.ROLE_SIGNS: (np.asarray(layer.signs, np.uint8), 1),
    }
    return values[role]


def tensor_type(role: str, bits: int) -> int:
    """TFLite tensor type of an input: INT4 (packed) or INT8 for matrices, INT32, UINT8 for sign bits."""
    if role == fmt.ROLE_SIGNS:
        return schema.TensorType.UINT8
    if bits == 32:
        return schema.TensorType.INT32
    return schema.TensorType.INT4 if bits == 4 else schema.TensorType.INT8


def _payload(values: np.ndarray, role: str, bits: int) -> tuple[bytes, list[int]]:
    """Stored bytes and file shape of one input (int4 packed two per byte, signs as packed bytes)."""
    values = np.asarray(values)
    if role == fmt.ROLE_SIGNS:
        return values.astype(np.uint8).tobytes(), [int(values.size)]
    shape = [int(d) for d in values.shape]
    if bits == 4:
        return synthesis.pack_int4(values).tobytes(), shape
    return values.astype(np.int32 if bits == 32 else np.int8).tobytes(), shape


def _add_tensor(model_t: schema.ModelT, record: StoredTensor, gen: GeneratedLayer) -> int:
    role = _role(record)
    values, bits = _stored_values(gen, role)
    raw, shape = _payload(values, role, bits)
    if len(raw) != record.nbytes:
        raise RuntimeError(
            f"hyper: tensor {record.name!r} holds {len(raw)} bytes but its stored-tensor record counts "
            f"{record.nbytes}; accounting and export disagree"
        )
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(raw, np.uint8).copy()
    model_t.buffers.append(buffer)
    tensor = schema.TensorT()
    tensor.name = record.name.encode()
    tensor.shape = np.array(shape, np.int32)
    tensor.type = tensor_type(role, bits)
    tensor.buffer = len(model_t.buffers) - 1
    subgraph = model_t.subgraphs[0]
    subgraph.tensors.append(tensor)
    return len(subgraph.tensors) - 1


def _custom_opcode(model_t: schema.ModelT) -> int:
    code = schema.OperatorCodeT()
    code.builtinCode = schema.BuiltinOperator.CUSTOM
    code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = fmt.CUSTOM_OP_NAME.encode()
    code.version = 1
    model_t.operatorCodes.append(code)
    return len(model_t.operatorCodes) - 1


def options_for(gen: GeneratedLayer, mode: str) -> fmt.HyperOptions:
    """The custom options of one layer's op."""
    g, layer = gen.generator, gen.layer
    return fmt.HyperOptions(
        version=fmt.FORMAT_VERSION, mode=mode, strategy=strategy_of(gen), c_out=layer.c_out, c_in=layer.c_in,
        code_dim=int(g.w1.shape[0]), hidden_dim=int(g.w1.shape[1]), tile_size=g.tile_size,
        code_bits=g.code_bits, weight_bits=g.weight_bits,
    )


def to_hyper(folded: bytes, layers: list[GeneratedLayer], *, mode: str = fmt.MODE_BOOT) -> bytes:
    """Replace each generated layer's filter in ``folded`` by a ``HyperTinyPW`` op making it.

    Args:
      folded: bytes from ``convert.convert_model`` of the same model.
      layers: ``convert.generated_layers(model)``.
      mode: one of ``format.MODES``; how the device keeps the kernels (docs/format.md §4).

    Raises:
      ValueError: a bad mode, no generated layer, or a folded filter that is not the synthesized one.
    """
    if mode not in fmt.MODES:
        raise ValueError(f"to_hyper: mode must be one of {fmt.MODES}, received mode={mode!r}")
    if not layers:
        raise ValueError("to_hyper: the model has no HyperPWConv2D layer; export it with fmt='folded'")
    model_t = fb.read(folded, "folded model")
    subgraph = model_t.subgraphs[0]
    opcode = _custom_opcode(model_t)
    shared: dict[str, int] = {}
    for gen in layers:
        kernel_name = f"{gen.name}/kernel"
        index = fb.find_tensor(subgraph, kernel_name)
        filt = subgraph.tensors[index]
        if fb.buffer_bytes(model_t, filt) != gen.kernel.astype(np.int8).tobytes() or not np.array_equal(
            np.asarray(filt.quantization.scale, np.float32), gen.scales
        ):
            raise ValueError(
                f"to_hyper: tensor {kernel_name!r} of the folded model is not the synthesized kernel of layer "
                f"{gen.name!r}; export the folded model from this model"
            )
        records = {_role(r): r for r in (*gen.shared_tensors, *gen.layer_tensors)}
        inputs = []
        for role in fmt.INPUT_ROLES[strategy_of(gen)]:
            record = records[role]
            if role in fmt.SHARED_ROLES:
                if record.name not in shared:
                    shared[record.name] = _add_tensor(model_t, record, gen)
                inputs.append(shared[record.name])
            else:
                inputs.append(_add_tensor(model_t, record, gen))
        fb.set_buffer(model_t, filt, None)
        op = schema.OperatorT()
        op.opcodeIndex = opcode
        op.inputs = np.array(inputs, np.int32)
        op.outputs = np.array([index], np.int32)
        op.customOptions = np.frombuffer(fmt.encode_options(options_for(gen, mode)), np.uint8).copy()
        op.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
        consumer = next(i for i, o in enumerate(subgraph.operators) if index in list(o.inputs))
        subgraph.operators.insert(consumer, op)
    slim_zero_points(model_t)
    return fb.write(model_t)


def _per_channel(tensor: schema.TensorT) -> bool:
    quant = tensor.quantization
    return quant is not None and quant.scale is not None and len(quant.scale) > 1


def slim_zero_points(model_t: schema.ModelT) -> None:
    """Store one zero point (0) for each per-channel tensor instead of one int64 per channel.

    Symmetric per-channel tensors have all-zero zero points; TFLM's allocator accepts a single
    one for them (tests/test_export_hyper.py runs a slimmed folded file in TFLM). This saves
    8 bytes per output channel of every conv in the file.
    """
    for tensor in model_t.subgraphs[0].tensors:
        if _per_channel(tensor):
            zero_points = np.asarray(tensor.quantization.zeroPoint, np.int64)
            if zero_points.size != len(tensor.quantization.scale) or zero_points.any():
                raise ValueError(
                    f"slim_zero_points: tensor {fb.tensor_name(tensor)!r} has zero points "
                    f"{zero_points.tolist()[:4]}..., expected one 0 per channel"
                )
            tensor.quantization.zeroPoint = np.zeros(1, np.int64)


def restore_zero_points(model_t: schema.ModelT) -> None:
    """Inverse of :func:`slim_zero_points`: one 0 per channel again, as the converter writes them."""
    for tensor in model_t.subgraphs[0].tensors:
        if _per_channel(tensor):
            zero_points = np.asarray(tensor.quantization.zeroPoint, np.int64)
            if zero_points.size == 1:
                if zero_points[0] != 0:
                    raise ValueError(
                        f"restore_zero_points: tensor {fb.tensor_name(tensor)!r} has zero point {int(zero_points[0])}, "
                        "expected 0"
                    )
                tensor.quantization.zeroPoint = np.zeros(len(tensor.quantization.scale), np.int64)
