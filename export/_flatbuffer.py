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


def read(data: bytes | bytearray, what: str = "model") -> schema.ModelT:
    """Parse ``.tflite`` bytes into the mutable object API."""
    raw = bytes(data)
    if len(raw) < 8 or raw[4:8] != FILE_IDENTIFIER:
        raise ValueError(
            f"{what}: not a .tflite flatbuffer (file identifier {raw[4:8]!r}, expected {FILE_IDENTIFIER!r})"
        )
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(raw, 0))
    except Exception as error:  # noqa: BLE001 - any parse failure means the same thing to the caller
        raise ValueError(f"{what}: corrupt .tflite flatbuffer: {error}") from error
    if len(model.subgraphs or []) != 1:
        raise ValueError(f"{what}: expected exactly one subgraph, found {len(model.subgraphs or [])}")
    return model


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
    return name.decode() if isinstance(name, bytes) else str(name or "")


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


def find_tensor(subgraph: schema.SubGraphT, name: str) -> int:
    """Index of the one tensor called ``name``."""
    hits = [i for i, t in enumerate(subgraph.tensors) if tensor_name(t) == name]
    if len(hits) != 1:
        raise ValueError(f"expected one tensor named {name!r}, found {len(hits)}")
    return hits[0]
