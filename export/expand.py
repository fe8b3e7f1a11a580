"""Hyper ``.tflite`` bytes → folded bytes: run each ``HyperTinyPW`` op's synthesis on the host.

The inverse of ``hyper.to_hyper``: every custom op's inputs and options are parsed and checked
(the file's CRC-32 first; then types, shapes, lengths, ranges and each op's CRC-32 of its inputs, each
error naming the op's output tensor, the input and the value received), the kernel is made with
``hyper_tinypw_tf.synthesis`` through ``encode.accumulators`` (the one integer path), written back
as the filter's constant buffer, and the op, its inputs and the CRC metadata are removed. It is also
how a hyper file is checked on a machine without the TFLM kernel.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from hyper_tinypw_tf import encode, generators, synthesis
from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import format as fmt
from hyper_tinypw_tf.export import hyper, slim

schema = fb.schema


def _shape(tensor: schema.TensorT) -> list[int]:
    return [] if tensor.shape is None else [int(d) for d in tensor.shape]


def check_file_crc(data: bytes, what: str = "hyper model", required: bool = True) -> None:
    """Verify the file CRC-32 of docs/format.md §7 (``slim.sealed`` writes it).

    ``required=False`` (folded files, which carry it since format version 2's exporter but may come
    from elsewhere): a file without the entry passes; one with it is checked.

    Raises:
      ValueError: the ``hyper_tinypw_crc32`` metadata is missing (when required), malformed, or
        disagrees with the file.
    """
    try:
        span = fb.metadata_span(data, fmt.METADATA_CRC32)
    except ValueError as error:
        raise ValueError(f"{what}: {error}") from error
    if span is None and not required:
        return
    if span is None:
        raise ValueError(
            f"{what}: no {fmt.METADATA_CRC32!r} metadata (the file CRC-32 of format version {fmt.FORMAT_VERSION}); "
            "the file is corrupt or was written by an older exporter"
        )
    offset, length = span
    if length != fmt.METADATA_CRC32_BYTES:
        raise ValueError(
            f"{what}: metadata {fmt.METADATA_CRC32!r} holds {length} bytes, expected {fmt.METADATA_CRC32_BYTES}"
        )
    (stored,) = struct.unpack_from("<I", data, offset)
    actual = fmt.file_crc32(data, offset)
    if stored != actual:
        raise ValueError(
            f"{what}: file CRC-32 mismatch: metadata {fmt.METADATA_CRC32!r} says 0x{stored:08x}, "
            f"the file's bytes give 0x{actual:08x}; the file is corrupt"
        )


def _values(model_t: schema.ModelT, tensor: schema.TensorT, where: str) -> np.ndarray:
    """Integer values of a checked constant input (int4 unpacked)."""
    raw = fb.buffer_bytes(model_t, tensor)
    count = math.prod(_shape(tensor))
    kind = tensor.type
    expected = {
        schema.TensorType.INT4: -(-count // 2),
        schema.TensorType.INT8: count,
        schema.TensorType.UINT8: count,
        schema.TensorType.INT32: 4 * count,
    }[kind]
    if len(raw) != expected:
        raise ValueError(
            f"{where}: holds {len(raw)} bytes, expected {expected} for {fb.type_name(kind)} {list(tensor.shape)}"
        )
    if kind == schema.TensorType.INT4:
        return synthesis.unpack_int4(np.frombuffer(raw, np.uint8), count).reshape(_shape(tensor))
    dtype = {schema.TensorType.INT8: np.int8, schema.TensorType.UINT8: np.uint8, schema.TensorType.INT32: np.int32}
    return np.frombuffer(raw, dtype[kind]).reshape(_shape(tensor))


# The Keras name of the generators made to read ops; an explicit name leaves the layer-name counters alone.
_OP_GENERATOR_NAME = "hyper_tinypw_expand_op"


def _op_generator(opts: fmt.HyperOptions, input_shapes: dict[str, list[int]]) -> generators.HyperGenerator:
    """A generator shaped like the op: the strategy's own declaration of what its inputs must be."""
    return generators.from_op(opts, input_shapes=input_shapes, name=_OP_GENERATOR_NAME)


def _op_inputs(
    model_t: schema.ModelT, op: schema.OperatorT, opts: fmt.HyperOptions, label: str
) -> tuple[generators.HyperGenerator, dict[str, np.ndarray]]:
    """Check the op's inputs against what its strategy declares; returns the strategy and the values by role."""
    subgraph = model_t.subgraphs[0]
    roles = generators.for_format(opts.strategy).FORMATS[opts.strategy]
    inputs = [] if op.inputs is None else [int(i) for i in op.inputs]
    if len(inputs) != len(roles):
        raise ValueError(
            f"{label}: expected {len(roles)} inputs {roles} for strategy {opts.strategy!r}, received {len(inputs)}"
        )
    for role, index in zip(roles, inputs, strict=True):
        if not 0 <= index < len(subgraph.tensors):
            raise ValueError(f"{label}: input {role!r} refers to tensor index {index}, which does not exist")
    try:
        generator = _op_generator(opts, {r: _shape(subgraph.tensors[i]) for r, i in zip(roles, inputs, strict=True)})
    except ValueError as error:
        raise ValueError(f"{label}: {error}") from error
    records = {r.role: r for r in (*generator.shared_tensors(), *generator.layer_tensors(label, opts.c_in, opts.c_out))}
    values = {}
    for role, index in zip(roles, inputs, strict=True):
        tensor, record = subgraph.tensors[index], records[role]
        where = f"{label}: input {role!r} (tensor {fb.tensor_name(tensor)!r})"
        kind, shape = hyper.tensor_type(record.bits), hyper.file_shape(record)
        if tensor.type != kind:
            raise ValueError(f"{where}: expected type {fb.type_name(kind)}, received {fb.type_name(tensor.type)}")
        if _shape(tensor) != shape:
            raise ValueError(f"{where}: expected shape {shape}, received {_shape(tensor)}")
        values[role] = _values(model_t, tensor, where)
    try:
        generator.check_stored(values)
    except ValueError as error:
        raise ValueError(f"{label}: {error}") from error
    crc = fmt.inputs_crc32(fb.buffer_bytes(model_t, subgraph.tensors[i]) for i in inputs)
    if crc != opts.crc32:
        raise ValueError(
            f"{label}: CRC-32 mismatch: option 'crc32' says 0x{opts.crc32:08x}, the inputs' bytes give 0x{crc:08x}; "
            "the file is corrupt"
        )
    return generator, values


def synthesize_op(model_t: schema.ModelT, op: schema.OperatorT, label: str) -> tuple[fmt.HyperOptions, np.ndarray]:
    """Decode one custom op and return its options and int8 kernel (C_out, C_in)."""
    try:
        raw = None if op.customOptions is None else np.asarray(op.customOptions, np.uint8).tobytes()
        opts = fmt.decode_options(raw)
    except ValueError as error:
        raise ValueError(f"{label}: {error}") from error
    generator, values = _op_inputs(model_t, op, opts, label)
    enc, layer = encode.from_stored(generator, label, opts.c_in, opts.c_out, values)
    kernel, _ = encode.integer_kernel(enc, layer)
    return opts, kernel


def _check_output(tensor: schema.TensorT, opts: fmt.HyperOptions, label: str) -> None:
    shape = _shape(tensor)
    if tensor.type != schema.TensorType.INT8 or shape != [opts.c_out, 1, 1, opts.c_in]:
        raise ValueError(
            f"{label}: output must be INT8 {[opts.c_out, 1, 1, opts.c_in]}, "
            f"received {fb.type_name(tensor.type)} {shape}"
        )
    quant = tensor.quantization
    scales = [] if quant is None or quant.scale is None else list(quant.scale)
    if len(scales) != opts.c_out or quant.quantizedDimension != 0:
        raise ValueError(
            f"{label}: output needs {opts.c_out} per-channel scales on dimension 0, received {len(scales)}"
        )


def _code_name(code: schema.OperatorCodeT) -> str:
    custom = code.customCode
    return custom.decode(errors="replace") if isinstance(custom, bytes) else str(custom or "")


def _remove_inputs(model_t: schema.ModelT, candidates: set[int]) -> None:
    """Drop the removed ops' input tensors nothing else uses, their buffers, and unused operator codes."""
    subgraph = model_t.subgraphs[0]
    used = {int(i) for op in subgraph.operators for i in [*op.inputs, *op.outputs] if i >= 0}
    used |= {int(i) for i in [*subgraph.inputs, *subgraph.outputs]}
    dropped = sorted(candidates - used)
    keep = [i for i in range(len(subgraph.tensors)) if i not in set(dropped)]
    remap = {old: new for new, old in enumerate(keep)}
    freed = {subgraph.tensors[i].buffer for i in dropped}
    subgraph.tensors = [subgraph.tensors[i] for i in keep]
    for op in subgraph.operators:
        op.inputs = np.array([remap[int(i)] if i >= 0 else -1 for i in op.inputs], np.int32)
        op.outputs = np.array([remap[int(i)] for i in op.outputs], np.int32)
    subgraph.inputs = np.array([remap[int(i)] for i in subgraph.inputs], np.int32)
    subgraph.outputs = np.array([remap[int(i)] for i in subgraph.outputs], np.int32)
    for signature in model_t.signatureDefs or []:
        for item in [*(signature.inputs or []), *(signature.outputs or [])]:
            item.tensorIndex = remap[int(item.tensorIndex)]

    still = {t.buffer for t in subgraph.tensors} | {m.buffer for m in model_t.metadata or []}
    gone = {b for b in freed if b != 0 and b not in still}
    keep_b = [i for i in range(len(model_t.buffers)) if i not in gone]
    remap_b = {old: new for new, old in enumerate(keep_b)}
    model_t.buffers = [model_t.buffers[i] for i in keep_b]
    for tensor in subgraph.tensors:
        tensor.buffer = remap_b[tensor.buffer]
    for meta in model_t.metadata or []:
        meta.buffer = remap_b[meta.buffer]

    # Drop only the HyperTinyPW code to_hyper added: other unused codes (the converter leaves some,
    # e.g. QUANTIZE after folding a QAT model's input) belong to the folded file.
    used = {op.opcodeIndex for op in subgraph.operators}
    keep_c = [
        i for i, code in enumerate(model_t.operatorCodes)
        if i in used or _code_name(code) != fmt.CUSTOM_OP_NAME
    ]
    remap_c = {old: new for new, old in enumerate(keep_c)}
    model_t.operatorCodes = [model_t.operatorCodes[i] for i in keep_c]
    for op in subgraph.operators:
        op.opcodeIndex = remap_c[op.opcodeIndex]


def _custom_ops(model_t: schema.ModelT) -> list[schema.OperatorT]:
    """The model's HyperTinyPW ops; raises if there is none (then it is no hyper file)."""
    customs = [op for op in model_t.subgraphs[0].operators if fb.op_name(model_t, op) == fmt.CUSTOM_OP_NAME]
    if not customs:
        raise ValueError(f"expand: the model has no {fmt.CUSTOM_OP_NAME} op; it is not a hyper file")
    return customs


def expand(hyper: bytes) -> bytes:
    """Folded bytes of a hyper file: each ``HyperTinyPW`` op replaced by the constant kernel it makes.

    Raises:
      ValueError: naming the op's output tensor and the option or input at fault, for missing or
        corrupt options, an unknown format version, wrong input types, shapes or lengths.
    """
    fb.check_identifier(hyper, "hyper model")
    try:
        check_file_crc(hyper)
    except ValueError:
        _custom_ops(fb.read(hyper, "hyper model"))  # a folded file is refused as such, not as a bad CRC
        raise
    model_t = fb.read(hyper, "hyper model")
    subgraph = model_t.subgraphs[0]
    customs = _custom_ops(model_t)
    for number, op in enumerate(customs):
        if len(op.outputs) != 1 or not 0 <= op.outputs[0] < len(subgraph.tensors):
            raise ValueError(f"expand: {fmt.CUSTOM_OP_NAME} op #{number} must have exactly one valid output")
        output = subgraph.tensors[op.outputs[0]]
        label = f"{fmt.CUSTOM_OP_NAME} op #{number} (output {fb.tensor_name(output)!r})"
        opts, kernel = synthesize_op(model_t, op, label)
        _check_output(output, opts, label)
        shared = sum(t.buffer == output.buffer for t in subgraph.tensors) > 1
        if output.buffer == 0 or shared:
            model_t.buffers.append(schema.BufferT())
            output.buffer = len(model_t.buffers) - 1
        fb.set_buffer(model_t, output, kernel.astype(np.int8).tobytes())
    subgraph.operators = [op for op in subgraph.operators if all(op is not c for c in customs)]
    slim.strip_file_crc(model_t)  # the hyper file's; the folded file gets its own, as the exporter writes it
    _remove_inputs(model_t, {int(i) for op in customs for i in op.inputs if i >= 0})
    slim.restore_zero_points(model_t)  # stock runtimes (LiteRT) want one zero point per channel
    return slim.sealed(model_t)
