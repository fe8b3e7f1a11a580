"""Metadata slimming shared by every exported file, folded and hyper alike.

When a hyper file is compared with a stored file at a byte budget, a byte difference must come
from the method, not from the format. Both kinds therefore follow the same two rules here:

* no names on tensors nobody looks up (every exported file): only the stored-tensor names
  (``<layer>/kernel``, ``<layer>/bias``, the hyper inputs) that accounting and ``expand`` find
  tensors by, and the graph's input and output names, are kept. Activation names
  (``model/pw3_relu/Relu;...``) run to about 80 bytes each and carry the Keras model's name, so
  two models differed by the length of their names;
* one zero point (0) per symmetric per-channel tensor instead of one int64 per channel: every
  hyper file, and a folded file exported with ``slim_zero_points=True`` (what the main job's
  stored CNN ships as). TFLM reads that layout; LiteRT's reader refuses it, so plain folded files
  (and ``expand``'s output) keep the converter's one zero point per channel.

Both kinds also end the same way (:func:`sealed`): the file CRC-32 of docs/format.md §7 in the
metadata entry ``hyper_tinypw_crc32``, written last, which the runners check before they build
the interpreter. A stock runtime ignores metadata it does not know.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import numpy as np

from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import format as fmt

schema = fb.schema


def _per_channel(tensor: schema.TensorT) -> bool:
    quant = tensor.quantization
    return quant is not None and quant.scale is not None and len(quant.scale) > 1


def slim_zero_points(model_t: schema.ModelT) -> None:
    """Store one zero point (0) for each per-channel tensor instead of one int64 per channel.

    Symmetric per-channel tensors have all-zero zero points; TFLM's allocator accepts a single
    one for them (tests/test_export_hyper.py runs a slimmed file against the converter's layout in
    TFLM). This saves 8 bytes per output channel of every conv in the file. Slimming a slimmed
    file changes nothing.
    """
    for tensor in model_t.subgraphs[0].tensors:
        if _per_channel(tensor):
            zero_points = np.asarray(tensor.quantization.zeroPoint, np.int64)
            if zero_points.size not in (1, len(tensor.quantization.scale)) or zero_points.any():
                raise ValueError(
                    f"slim_zero_points: tensor {fb.tensor_name(tensor)!r} has zero points "
                    f"{zero_points.tolist()[:4]}..., expected one 0 per channel"
                )
            tensor.quantization.zeroPoint = np.zeros(1, np.int64)


def slim_zero_points_bytes(data: bytes) -> bytes:
    """:func:`slim_zero_points` on the bytes of a file (sealed again: :func:`sealed`)."""
    model_t = fb.read(data, "model")
    slim_zero_points(model_t)
    return sealed(model_t)


def strip_file_crc(model_t: schema.ModelT) -> None:
    """Remove the file-CRC metadata entries and the buffers only they use (indices renumbered)."""
    metadata = model_t.metadata or []
    crc = [m for m in metadata if fb.metadata_name(m) == fmt.METADATA_CRC32]
    if not crc:
        return
    model_t.metadata = [m for m in metadata if all(m is not c for c in crc)] or None
    used = {int(t.buffer) for g in model_t.subgraphs for t in g.tensors}
    used |= {int(m.buffer) for m in model_t.metadata or []} | {int(b) for b in model_t.metadataBuffer or []}
    gone = {int(m.buffer) for m in crc} - used - {0}
    keep = [i for i in range(len(model_t.buffers)) if i not in gone]
    remap = {old: new for new, old in enumerate(keep)}
    model_t.buffers = [model_t.buffers[i] for i in keep]
    for graph in model_t.subgraphs:
        for tensor in graph.tensors:
            tensor.buffer = remap[int(tensor.buffer)]
    for meta in model_t.metadata or []:
        meta.buffer = remap[int(meta.buffer)]
    if model_t.metadataBuffer is not None:
        model_t.metadataBuffer = [remap[int(b)] for b in model_t.metadataBuffer]


def sealed(model_t: schema.ModelT) -> bytes:
    """The bytes of ``model_t`` with one file-CRC entry appended last (any old one removed) and sealed."""
    strip_file_crc(model_t)
    buffer = schema.BufferT()
    buffer.data = np.zeros(fmt.METADATA_CRC32_BYTES, np.uint8)
    model_t.buffers.append(buffer)
    meta = schema.MetadataT()
    meta.name = fmt.METADATA_CRC32.encode()
    meta.buffer = len(model_t.buffers) - 1
    model_t.metadata = [*(model_t.metadata or []), meta]
    return seal(fb.write(model_t))


def seal(data: bytes) -> bytes:
    """``data`` with its file CRC-32 written into the ``hyper_tinypw_crc32`` metadata (docs/format.md §7).

    The CRC is taken with those 4 bytes read as zero, so sealing a sealed file gives the same bytes.

    Raises:
      ValueError: the file has no such metadata entry of 4 bytes.
    """
    span = fb.metadata_span(data, fmt.METADATA_CRC32)
    if span is None or span[1] != fmt.METADATA_CRC32_BYTES:
        raise ValueError(f"seal: the file has no {fmt.METADATA_CRC32_BYTES}-byte metadata {fmt.METADATA_CRC32!r}")
    offset = span[0]
    crc = fmt.file_crc32(data, offset)
    return data[:offset] + struct.pack("<I", crc) + data[offset + fmt.METADATA_CRC32_BYTES :]


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


def strip_names(model_t: schema.ModelT, keep: Iterable[int]) -> None:
    """Drop the name of every tensor except those at the indices ``keep`` and the graph's inputs/outputs."""
    subgraph = model_t.subgraphs[0]
    kept = {int(i) for i in keep} | {int(i) for i in [*subgraph.inputs, *subgraph.outputs]}
    for index, tensor in enumerate(subgraph.tensors):
        if index not in kept:
            tensor.name = None
