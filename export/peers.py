"""TFLM's own compression of a folded file: the peer a generated mixer must beat at equal bytes.

``lut_compress`` rewrites the 1×1 ``CONV_2D`` filters of a folded INT8 file as ``bits``-wide
indices into per-channel value tables, with ``tflite_micro.compression`` (the module shipped in
the pinned ``tflite-micro`` wheel). TFLM's ``DECODE`` op expands them at run time, so the file
runs in the stock TFLM interpreter. A filter qualifies only if every output channel holds at most
``2**bits`` distinct values, which is what tfmot clustering (``hyper_tinypw_tf.clustering``)
produces; anything else is refused by name rather than silently quantized further.

A per-channel table costs ``C_out * 2**bits`` bytes, so on a small filter (few input channels)
the indices plus the table outweigh the int8 values; such filters are left stored, and
``lut_compress`` says which ones it compressed.

The same module's Huffman and pruning methods are stubs in the pinned wheel (they raise
``CompressionError: ... not yet implemented`` for every tensor; ``tests/test_peers.py`` notices
when an upgrade implements them), so LUT is the only TFLM compression peer there is to measure.
"""

from __future__ import annotations

import math

import numpy as np

from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import format as fmt
from hyper_tinypw_tf.export import slim

LUT_BITS = (1, 2, 3, 4, 5, 6, 7)


def pointwise_filters(folded: bytes) -> list[int]:
    """Tensor indices of the 1×1 ``CONV_2D`` filters of subgraph 0, in op order."""
    model_t = fb.read(folded, "folded model")
    subgraph = model_t.subgraphs[0]
    found = []
    for op in subgraph.operators:
        if fb.op_name(model_t, op) != "CONV_2D":
            continue
        shape = list(subgraph.tensors[op.inputs[1]].shape)
        if len(shape) == 4 and shape[1:3] == [1, 1]:
            found.append(int(op.inputs[1]))
    return found


def bits_for_clusters(n_clusters: int) -> int:
    """Index width that holds ``n_clusters`` values (16 → 4, 8 → 3)."""
    return max(1, math.ceil(math.log2(n_clusters)))


def lut_pays(c_out: int, c_in: int, bits: int) -> bool:
    """Whether ``bits``-bit indices plus per-channel tables are smaller than the int8 filter."""
    return -(-c_out * c_in * bits // 8) + c_out * 2**bits < c_out * c_in


def lut_compress(folded: bytes, bits: int) -> bytes:
    """``folded`` with each 1×1 conv filter where it pays (:func:`lut_pays`) LUT-compressed to ``bits``-bit indices.

    Raises:
      ValueError: ``bits`` outside 1..7, no 1×1 filter, or a compressed filter's channel with more than
        ``2**bits`` distinct values (naming the tensor and the count).
    """
    from tflite_micro.tensorflow.lite.micro import compression
    from tflite_micro.tensorflow.lite.micro.compression import spec

    if bits not in LUT_BITS:
        raise ValueError(f"lut_compress: bits must be one of {LUT_BITS}, received bits={bits!r}")
    indices = pointwise_filters(folded)
    if not indices:
        raise ValueError("lut_compress: the model has no 1x1 CONV_2D filter to compress")
    model_t = fb.read(folded, "folded model")
    subgraph = model_t.subgraphs[0]
    builder = compression.SpecBuilder()
    chosen = 0
    for index in indices:
        tensor = subgraph.tensors[index]
        if not lut_pays(int(tensor.shape[0]), int(tensor.shape[3]), bits):
            continue
        rows = np.frombuffer(fb.buffer_bytes(model_t, tensor), np.int8).reshape(tensor.shape[0], -1)
        most = max(len(np.unique(row)) for row in rows)
        if most > 2**bits:
            raise ValueError(
                f"lut_compress: tensor {fb.tensor_name(tensor)!r} has {most} distinct values in one output "
                f"channel, more than 2**{bits}; cluster the model to at most {2**bits} centroids first"
            )
        builder.add_tensor(subgraph=0, tensor=index).with_lut(index_bitwidth=bits, mode=spec.PerChannel(0))
        chosen += 1
    if not chosen:
        return folded  # no filter is large enough for a table to pay: the stored file is the smallest
    compressed = bytes(compression.compress(folded, builder.build()))
    # The compressor keeps the metadata; the file CRC-32 (docs/format.md §7) is re-taken over the new bytes.
    return slim.seal(compressed) if fb.metadata_span(compressed, fmt.METADATA_CRC32) else compressed
