"""Reading and writing ``.tflite`` flatbuffers through the TFLite schema object API.

Every rewrite in ``export`` is ModelT → ModelT between :func:`read` and :func:`write`, so no
module hand-assembles binary. ``write`` packs buffer data 16-byte aligned (the converter's own
alignment, which TFLM relies on for in-place tensors) and is deterministic: the same ModelT
always gives the same bytes.
"""

from __future__ import annotations

import flatbuffers
import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

FILE_IDENTIFIER = b"TFL3"
BUFFER_ALIGNMENT = 16
TENSOR_TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
BUILTIN_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


class _AlignedBufferT(schema.BufferT):
    """A BufferT whose data vector starts on a 16-byte boundary."""

    def Pack(self, builder: flatbuffers.Builder) -> int:  # noqa: N802 (schema API name)
        data = None
        if self.data is not None and len(self.data):
            raw = np.asarray(self.data, np.uint8).tobytes()
            builder.StartVector(1, len(raw), BUFFER_ALIGNMENT)
            builder.head -= len(raw)
            builder.Bytes[builder.head : builder.head + len(raw)] = raw
            data = builder.EndVector()
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        if self.offset:
            schema.BufferAddOffset(builder, self.offset)
        if self.size:
            schema.BufferAddSize(builder, self.size)
        return schema.BufferEnd(builder)


def check_identifier(raw: bytes, what: str = "model") -> None:
    """Refuse bytes that do not carry the TFLite file identifier."""
    if len(raw) < 8 or raw[4:8] != FILE_IDENTIFIER:
        raise ValueError(
            f"{what}: not a .tflite flatbuffer (file identifier {raw[4:8]!r}, expected {FILE_IDENTIFIER!r})"
        )


def read(data: bytes | bytearray, what: str = "model") -> schema.ModelT:
    """Parse ``.tflite`` bytes into the mutable object API."""
    raw = bytes(data)
    check_identifier(raw, what)
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(raw, 0))
    except Exception as error:  # noqa: BLE001 - any parse failure means the same thing to the caller
        raise ValueError(f"{what}: corrupt .tflite flatbuffer: {error}") from error
    if len(model.subgraphs or []) != 1:
        raise ValueError(f"{what}: expected exactly one subgraph, found {len(model.subgraphs or [])}")
    check_indices(model, what)
    return model


def _check_range(values: object, size: int, what: str, field: str, optional: bool = False) -> None:
    for value in [] if values is None else np.asarray(values).reshape(-1).tolist():
        if not (0 <= value < size or (optional and value == -1)):
            raise ValueError(f"{what}: {field} {value} is out of range (the file has {size})")


def check_indices(model: schema.ModelT, what: str = "model") -> None:
    """Refuse a file whose tables point outside themselves (operator codes, tensors, buffers).

    Every later step indexes these lists; a corrupt index must be one named error, not an IndexError
    or a silent wrap-around of a negative Python index.
    """
    buffers, codes = len(model.buffers or []), len(model.operatorCodes or [])
    subgraph = model.subgraphs[0]
    tensors = len(subgraph.tensors or [])
    for i, tensor in enumerate(subgraph.tensors or []):
        _check_range([tensor.buffer], buffers, what, f"tensor {i} ({tensor_name(tensor)!r}): buffer index")
    for i, op in enumerate(subgraph.operators or []):
        _check_range([op.opcodeIndex], codes, what, f"operator {i}: opcode index")
        _check_range(op.inputs, tensors, what, f"operator {i}: input tensor index", optional=True)
        _check_range(op.outputs, tensors, what, f"operator {i}: output tensor index")
    _check_range(subgraph.inputs, tensors, what, "subgraph input tensor index")
    _check_range(subgraph.outputs, tensors, what, "subgraph output tensor index")
    for meta in model.metadata or []:
        _check_range([meta.buffer], buffers, what, f"metadata {metadata_name(meta)!r}: buffer index")
    for signature in model.signatureDefs or []:
        for item in [*(signature.inputs or []), *(signature.outputs or [])]:
            _check_range([item.tensorIndex], tensors, what, "signature tensor index")


def write(model: schema.ModelT) -> bytes:
    """Serialize ``model`` deterministically, buffer data 16-byte aligned."""
    model.buffers = [_aligned(b) for b in model.buffers]
    builder = flatbuffers.Builder(1 << 16)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def _aligned(buffer: schema.BufferT) -> _AlignedBufferT:
    if isinstance(buffer, _AlignedBufferT):
        return buffer
    out = _AlignedBufferT()
    out.data, out.offset, out.size = buffer.data, buffer.offset, buffer.size
    return out


def tensor_name(tensor: schema.TensorT) -> str:
    name = tensor.name
    return name.decode(errors="replace") if isinstance(name, bytes) else str(name or "")


def metadata_name(meta: schema.MetadataT) -> str:
    name = meta.name
    return name.decode(errors="replace") if isinstance(name, bytes) else str(name or "")


def buffer_bytes(model: schema.ModelT, tensor: schema.TensorT) -> bytes:
    """The constant data of a tensor (empty for activations)."""
    data = model.buffers[tensor.buffer].data
    return b"" if data is None else np.asarray(data, np.uint8).tobytes()


def set_buffer(model: schema.ModelT, tensor: schema.TensorT, raw: bytes | None) -> None:
    model.buffers[tensor.buffer].data = None if raw is None else np.frombuffer(raw, np.uint8).copy()


def op_name(model: schema.ModelT, op: schema.OperatorT) -> str:
    """Builtin name (e.g. "CONV_2D") or the custom code of an operator."""
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == schema.BuiltinOperator.CUSTOM:
        custom = code.customCode
        return custom.decode() if isinstance(custom, bytes) else str(custom)
    return BUILTIN_NAMES.get(builtin, str(builtin))


def type_name(tensor_type: int) -> str:
    return TENSOR_TYPE_NAMES.get(tensor_type, str(tensor_type))


def metadata_span(data: bytes, name: str) -> tuple[int, int] | None:
    """(offset, length) in ``data`` of the buffer bytes of the metadata entry ``name``; None if there is none.

    Read with the low-level table API (not ModelT) because the caller needs file offsets, e.g. to
    zero a checksum field before recomputing it.

    Raises:
      ValueError: the entry appears twice, points at a missing buffer, or the flatbuffer is corrupt.
    """
    try:
        model = schema.Model.GetRootAs(data, 0)
        hits = [j for j in range(model.MetadataLength()) if model.Metadata(j).Name() == name.encode()]
        if not hits:
            return None
        if len(hits) > 1:
            raise ValueError(f"metadata {name!r} appears {len(hits)} times")
        index = model.Metadata(hits[0]).Buffer()
        if not 0 <= index < model.BuffersLength():
            raise ValueError(f"metadata {name!r} refers to buffer {index}, which does not exist")
        table = model.Buffers(index)._tab
        field = table.Offset(4)  # Buffer.data
        if field == 0:
            return (0, 0)
        start, length = table.Vector(field), table.VectorLen(field)
    except ValueError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure to walk the tables means a corrupt file
        raise ValueError(f"corrupt .tflite flatbuffer while reading metadata {name!r}: {error}") from error
    if not 0 <= start <= start + length <= len(data):
        raise ValueError(f"metadata {name!r}: buffer bytes [{start}, {start + length}) lie outside the file")
    return (start, length)


def find_tensor(subgraph: schema.SubGraphT, name: str) -> int:
    """Index of the one tensor called ``name``."""
    hits = [i for i, t in enumerate(subgraph.tensors) if tensor_name(t) == name]
    if len(hits) != 1:
        raise ValueError(f"expected one tensor named {name!r}, found {len(hits)}")
    return hits[0]
