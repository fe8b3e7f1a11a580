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
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from hyper_tinypw_tf.export import _flatbuffer as fb

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
    """:func:`slim_zero_points` on the bytes of a file."""
    model_t = fb.read(data, "model")
    slim_zero_points(model_t)
    return fb.write(model_t)


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
