"""TFLM's own compression of a folded or hyper file: the peer a generated mixer must beat, and its complement.

``lut_compress`` rewrites the constant 1×1 ``CONV_2D`` filters of an INT8 file as ``bits``-wide
indices into per-channel value tables, with ``tflite_micro.compression`` (the module shipped in
the pinned ``tflite-micro`` wheel). TFLM's ``DECODE`` op expands them at run time, so the file
runs in the stock TFLM interpreter. A filter qualifies only if every output channel holds at most
``2**bits`` distinct values, which is what tfmot clustering (``hyper_tinypw_tf.clustering``)
produces; anything else is refused by name rather than silently quantized further.

In a hyper file the same applies to the filters still stored (the first PW layer, the 1×1
classifier); a generated filter has no constant data (it is its ``HyperTinyPW`` op's output, made
at setup) and the op's own inputs are no conv filters, so both stay as they are and the op's CRC
of its inputs still holds. Depthwise and stem filters hold at most a few taps per output channel,
fewer than one table of ``2**bits`` values, so a table never pays for them.

A per-channel table costs ``C_out * 2**bits`` bytes plus DECODE's 16-byte header, so on a small
filter (few input channels) the indices plus the table outweigh the int8 values; such filters are
left stored (:func:`lut_pays`), and :func:`lut_report` is the byte report of what was compressed.

The same module's Huffman and pruning methods are stubs in the pinned wheel (they raise
``CompressionError: ... not yet implemented`` for every tensor; ``tests/test_peers.py`` notices
when an upgrade implements them), so LUT is the only TFLM compression peer there is to measure.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from hyper_tinypw_tf.accounting import ByteReport
from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import format as fmt
from hyper_tinypw_tf.export import slim
from hyper_tinypw_tf.storage import CLASSIFIER, STORED_PW, StoredTensor

LUT_BITS = (1, 2, 3, 4, 5, 6, 7)
# The tensors the compressor adds beside a compressed ``NAME`` (which keeps the packed indices):
# ``NAME_ancillary`` (DECODE's header + the value tables) and ``NAME_decoded`` (DECODE's output,
# carrying the filter's per-channel quantization).
ANCILLARY_SUFFIX = "_ancillary"
DECODED_SUFFIX = "_decoded"
TABLE_BITS = 8  # one int8 value per table entry
POINTWISE_COMPONENTS = (STORED_PW, CLASSIFIER)  # the byte report's components of 1×1 conv filters


def pointwise_filters(folded: bytes) -> list[int]:
    """Tensor indices of the constant 1×1 ``CONV_2D`` filters of subgraph 0, in op order.

    A filter without constant data (a hyper file's generated filter, the output of its
    ``HyperTinyPW`` op) is no constant for ``DECODE`` to expand and is skipped.
    """
    model_t = fb.read(folded, "folded model")
    subgraph = model_t.subgraphs[0]
    found = []
    for op in subgraph.operators:
        if fb.op_name(model_t, op) != "CONV_2D":
            continue
        shape = list(subgraph.tensors[op.inputs[1]].shape)
        if len(shape) == 4 and shape[1:3] == [1, 1] and fb.buffer_bytes(model_t, subgraph.tensors[op.inputs[1]]):
            found.append(int(op.inputs[1]))
    return found


def check_lut_bits(bits: object, where: str, name: str = "bits") -> None:
    """Refuse an index width outside :data:`LUT_BITS` before any work, naming the caller and its option."""
    if bits not in LUT_BITS:
        raise ValueError(f"{where}: {name} must be one of {LUT_BITS}, received {name}={bits!r}")


def bits_for_clusters(n_clusters: int) -> int:
    """Index width that holds ``n_clusters`` values (16 → 4, 8 → 3)."""
    return max(1, math.ceil(math.log2(n_clusters)))


def lut_tensors(name: str, c_out: int, c_in: int, bits: int, component: str) -> tuple[StoredTensor, StoredTensor]:
    """The two stored tensors a LUT-compressed ``c_out × c_in`` filter ``name`` becomes: indices and tables.

    The tables tensor is DECODE's 16-byte header plus one ``2**bits``-entry int8 table per output channel.
    """
    from tflite_micro.tensorflow.lite.micro.compression import decode

    header = decode.DecodeCommonMetadata.SIZE
    return (
        StoredTensor(name, (c_out, c_in), bits, component),
        StoredTensor(name + ANCILLARY_SUFFIX, (header + c_out * 2**bits,), TABLE_BITS, component),
    )


def lut_pays(c_out: int, c_in: int, bits: int) -> bool:
    """Whether ``bits``-bit indices plus per-channel tables (:func:`lut_tensors`) are smaller than the int8 filter."""
    return sum(t.nbytes for t in lut_tensors("filter", c_out, c_in, bits, "")) < c_out * c_in


def lut_report(report: ByteReport, bits: int) -> ByteReport:
    """``report`` (of the file before :func:`lut_compress`) as it is after: each filter LUT-compressed where it pays.

    A record is a 1×1 conv filter when it is a 4-D int8 kernel of a stored PW layer or of the 1×1
    classifier (the components ``accounting`` gives exactly those) with a scales record, whose scales
    then live on ``NAME_decoded``. The rule is :func:`lut_compress`'s, so
    ``report.file_report(lut_report(r, bits), lut_compress(data, bits))`` holds for a report ``r`` of ``data``.
    """
    scales = {t.scales_of: t for t in report.tensors if t.scales_of}
    compressed: dict[str, tuple[StoredTensor, StoredTensor]] = {}
    for record in report.tensors:
        scale = scales.get(record.name)
        filter_like = record.component in POINTWISE_COMPONENTS and len(record.shape) == 4 and record.bits == 8
        if not filter_like or record.role or scale is None:
            continue
        c_out = scale.count
        c_in = record.count // c_out
        if lut_pays(c_out, c_in, bits):
            compressed[record.name] = lut_tensors(record.name, c_out, c_in, bits, record.component)
    tensors: list[StoredTensor] = []
    for record in report.tensors:
        if record.name in compressed:
            tensors += compressed[record.name]
        elif record.scales_of in compressed:
            tensors.append(dataclasses.replace(record, scales_of=record.scales_of + DECODED_SUFFIX))
        else:
            tensors.append(record)
    return dataclasses.replace(report, tensors=tuple(tensors), name=f"{report.name} + LUT{bits}")


def _unshare_buffers(before: fb.schema.ModelT, after: fb.schema.ModelT) -> None:
    """Give back their own buffer to tensors the compressor merged with a byte-identical one.

    The compressor deduplicates buffers file-wide (two zero biases, two layers' equal sign bits); the
    LUT file then differs from its input by more than the compressed filters, and the byte report
    could not tie each record to a buffer of its own. Tensors keep their indices through the
    compressor (new tensors are appended), which is checked by name.
    """
    old, new = before.subgraphs[0].tensors, after.subgraphs[0].tensors
    if len(new) < len(old) or any(fb.tensor_name(a) != fb.tensor_name(b) for a, b in zip(old, new, strict=False)):
        raise RuntimeError("lut_compress: the compressor renumbered tensors; other tensors cannot be kept as they were")
    owner: dict[int, int] = {}  # buffer → the first tensor (by index) seen holding it
    for index, tensor in enumerate(new):
        if not fb.buffer_bytes(after, tensor):
            continue
        first = owner.setdefault(int(tensor.buffer), index)
        shared_before = first < len(old) and index < len(old) and old[first].buffer == old[index].buffer
        if first != index and not shared_before:
            copy = fb.schema.BufferT()
            copy.data = np.asarray(after.buffers[tensor.buffer].data, np.uint8).copy()
            after.buffers.append(copy)
            tensor.buffer = len(after.buffers) - 1


def lut_compress(folded: bytes, bits: int) -> bytes:
    """``folded`` (a folded or hyper file) with each constant 1×1 conv filter where it pays (:func:`lut_pays`)
    LUT-compressed to ``bits``-bit indices; every other tensor keeps its bytes and a buffer of its own.

    Raises:
      ValueError: ``bits`` outside 1..7, no 1×1 filter, or a compressed filter's channel with more than
        ``2**bits`` distinct values (naming the tensor and the count).
    """
    from tflite_micro.tensorflow.lite.micro import compression
    from tflite_micro.tensorflow.lite.micro.compression import spec

    check_lut_bits(bits, "lut_compress")
    indices = pointwise_filters(folded)
    if not indices:
        raise ValueError("lut_compress: the model has no 1x1 CONV_2D filter to compress")
    model_t = fb.read(folded, "folded model")
    subgraph = model_t.subgraphs[0]
    builder = compression.SpecBuilder()
    chosen = []
    for index in indices:
        tensor = subgraph.tensors[index]
        if not lut_pays(int(tensor.shape[0]), int(tensor.shape[3]), bits):
            continue
        rows = np.frombuffer(fb.buffer_bytes(model_t, tensor), np.int8).reshape(tensor.shape[0], -1)
        most = max(len(np.unique(row)) for row in rows)
        if most > 2**bits:
            raise ValueError(
                f"lut_compress: tensor {fb.tensor_name(tensor)!r} has {most} distinct values in one output "
                f"channel, more than 2**{bits}; cluster the model to at most {2**bits} centroids first "
                f"(hyper-tinypw cluster --clusters={2**bits}, or hyper_tinypw_tf.clustering)"
            )
        builder.add_tensor(subgraph=0, tensor=index).with_lut(index_bitwidth=bits, mode=spec.PerChannel(0))
        chosen.append(index)
    if not chosen:
        return folded  # no filter is large enough for a table to pay: the stored file is the smallest
    compressed_t = fb.read(bytes(compression.compress(folded, builder.build())), "compressed model")
    _unshare_buffers(model_t, compressed_t)
    for index in chosen:
        # The compressor means to drop the indices' quantization (its copy is on NAME_decoded, which
        # DECODE reads) but the pinned wheel's model_editor keeps the old one: C_out scales and zero points.
        compressed_t.subgraphs[0].tensors[index].quantization = None
    compressed = fb.write(compressed_t)
    # The compressor keeps the metadata; the file CRC-32 (docs/format.md §7) is re-taken over the new bytes.
    return slim.seal(compressed) if fb.metadata_span(compressed, fmt.METADATA_CRC32) else compressed
