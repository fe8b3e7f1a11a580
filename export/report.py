"""Byte accounting of an exported file: the stored-tensor records, checked one by one against the file.

``file_report(report, data)`` finds every record of a ``hyper_tinypw_tf.accounting.ByteReport``
in the ``.tflite`` bytes (a tensor's buffer, or for ``<layer>/scale`` the per-channel scale vector
of ``<layer>/kernel``) and refuses the file if any size differs. Everything else in the file
(graph structure, names, shapes, zero points and activation quantization, custom options,
metadata, flatbuffer padding) is one line, "flatbuffer overhead", so the total is ``len(data)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hyper_tinypw_tf.accounting import ByteReport
from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.storage import BIASES_SCALES, SCALE_BITS, StoredTensor

FLATBUFFER_OVERHEAD = "flatbuffer overhead"


@dataclass(frozen=True)
class TensorBytes:
    """One stored-tensor record and the bytes the file holds for it."""

    record: StoredTensor
    file_tensor: str
    file_bytes: int


@dataclass(frozen=True)
class FileReport:
    """A byte report tied to one file: counted tensors plus the flatbuffer overhead equal the file size."""

    report: ByteReport
    file_size: int
    tensors: tuple[TensorBytes, ...]

    @property
    def overhead(self) -> int:
        """Bytes of the file that are no counted tensor."""
        return self.file_size - self.report.total

    @property
    def total(self) -> int:
        return self.report.total + self.overhead

    def rows(self) -> list[tuple[str, str, int]]:
        """(component, bits, bytes) rows, the overhead line, then the total (= file size)."""
        rows = self.report.rows()[:-1]
        return [*rows, (FLATBUFFER_OVERHEAD, "", self.overhead), ("total", "", self.total)]

    def table(self) -> str:
        lines = [f"File bytes: {self.report.name}", f"{'component':<32}{'bits':>8}{'bytes':>12}"]
        lines += [f"{c:<32}{b:>8}{n:>12,}" for c, b, n in self.rows()]
        return "\n".join(lines)

    def summary(self, print_fn: Callable[[str], None] = print) -> None:
        print_fn(self.table())


def _scale_bytes(tensor: fb.schema.TensorT) -> int:
    quant = tensor.quantization
    if quant is None or quant.scale is None or not len(quant.scale):
        return 0
    # Sized by the same rule as the records: one float32 per scale.
    return StoredTensor(fb.tensor_name(tensor), (len(quant.scale),), SCALE_BITS, BIASES_SCALES).nbytes


def file_report(report: ByteReport, data: bytes) -> FileReport:
    """Tie ``report`` to the file ``data``; raises ValueError naming the first record the file disagrees with."""
    model_t = fb.read(data, "exported model")
    subgraph = model_t.subgraphs[0]
    by_name = {fb.tensor_name(t): t for t in subgraph.tensors}
    found = []
    counted_buffers: dict[int, str] = {}
    for record in report.tensors:
        if record.scales_of:
            name = record.scales_of
            if name not in by_name:
                raise ValueError(
                    f"file_report: no tensor {name!r} in the file carries the scales of record {record.name!r}"
                )
            size = _scale_bytes(by_name[name])
        else:
            name = record.name
            if name not in by_name:
                raise ValueError(f"file_report: stored tensor {record.name!r} is not in the file")
            size = len(fb.buffer_bytes(model_t, by_name[name]))
            buffer = by_name[name].buffer
            if buffer in counted_buffers:
                raise ValueError(
                    f"file_report: records {counted_buffers[buffer]!r} and {record.name!r} share one buffer "
                    "in the file; counting both would claim bytes the file does not hold"
                )
            counted_buffers[buffer] = record.name
        if size != record.nbytes:
            raise ValueError(
                f"file_report: tensor {name!r} holds {size} bytes in the file, but record {record.name!r} "
                f"counts {record.nbytes} ({record.bits} bits × {int(np.prod(record.shape))})"
            )
        found.append(TensorBytes(record, name, size))
    result = FileReport(report, len(data), tuple(found))
    if result.overhead < 0:
        raise ValueError(
            f"file_report: the records count {report.total} bytes but the file holds {len(data)}; "
            "the accounting and the file disagree"
        )
    return result
