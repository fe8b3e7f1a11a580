"""htpw_file_check (tflm_harness/core/htpw_file.c): the whole-file CRC-32 every runner checks first.

It must agree with the exporter's CRC (``format.file_crc32``), find the entry in hyper, folded and
LUT files, and, because the CRC spans the whole file, refuse a change to any byte of every
constant the model uses: the HyperTinyPW op's inputs, and also what its per-op CRC does not see
(depthwise kernels, stored pointwise kernels, biases), the graph and the quantization.
"""

from __future__ import annotations

import numpy as np
import pytest

from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import format as fmt
from hyper_tinypw_tf.export import slim
from tests import core_lib
from tests.conftest_export import tiny_exports

lib = core_lib.library  # the session's build of the core


def _hyper_codes(data: bytes) -> int:
    """Operator codes named HyperTinyPW (one per file, however many ops use it)."""
    return sum(code.customCode is not None and bytes(code.customCode).decode() == fmt.CUSTOM_OP_NAME
               for code in fb.read(data).operatorCodes)


@pytest.mark.parametrize("kind", ["folded", "hyper"])
def test_exported_files_pass_with_the_exporters_crc(lib, kind):
    folded, hyper = tiny_exports("paper_factorized")
    data = hyper if kind == "hyper" else folded
    status, info = core_lib.file_check(lib, data)
    offset, length = fb.metadata_span(data, fmt.METADATA_CRC32)
    assert (status, info.has_crc, info.crc_offset, length) == ("HTPW_OK", 1, offset, fmt.METADATA_CRC32_BYTES)
    assert info.stored_crc == info.computed_crc == fmt.file_crc32(data, offset)
    assert info.hyper_ops == _hyper_codes(data) == (0 if kind == "folded" else 1)


def test_a_file_without_the_entry_passes_only_without_hyper_ops(lib):
    folded, hyper = tiny_exports("tiled")
    for data, expected in ((folded, "HTPW_OK"), (hyper, "HTPW_ERR_FILE_NO_CRC")):
        model_t = fb.read(data)
        slim.strip_file_crc(model_t)
        stripped = fb.write(model_t)
        assert fb.metadata_span(stripped, fmt.METADATA_CRC32) is None
        assert core_lib.file_check(lib, stripped)[0] == expected


def _constant_spans(data: bytes) -> dict[str, tuple[int, int]]:
    """Tensor name → (offset, length) in ``data`` of every constant tensor's buffer bytes."""
    model_t = fb.read(data)
    spans = {}
    for tensor in model_t.subgraphs[0].tensors:
        raw = fb.buffer_bytes(model_t, tensor)
        if len(raw):
            offset = data.find(raw)  # each constant has its own buffer (convert._unshare_buffers)
            assert offset >= 0
            spans[fb.tensor_name(tensor) or f"tensor{id(tensor)}"] = (offset, len(raw))
    return spans


@pytest.mark.parametrize("generator", ["tiled", "paper_factorized_int4"])
def test_the_file_crc_covers_every_constant_the_model_uses(lib, generator):
    """A flip in the first, middle and last byte of every constant buffer is refused: HTPW_ERR_FILE_CRC."""
    _, hyper = tiny_exports(generator)
    spans = _constant_spans(hyper)
    names = set(spans)
    # Not only the op's inputs: what its per-op CRC cannot see is covered too.
    # Not only the op's inputs (codes, generator): what its per-op CRC cannot see is covered too.
    assert {"stem/kernel", "dw1/kernel", "dw1/bias", "pw1/kernel", "pw1/bias", "pw2/bias", "classifier/kernel"} <= names
    for name, (offset, length) in spans.items():
        for at in {offset, offset + length // 2, offset + length - 1}:
            mutant = bytearray(hyper)
            mutant[at] ^= 0x10
            status, info = core_lib.file_check(lib, bytes(mutant))
            assert (status, info.has_crc) == ("HTPW_ERR_FILE_CRC", 1), f"{name} byte {at - offset}"


@pytest.mark.parametrize("kind", ["folded", "hyper"])
def test_every_single_byte_flip_is_refused_or_leaves_the_entry_unfound(lib, kind):
    """Exhaustive over the file: a hyper file refuses every flip; a folded file every flip except those
    that make its CRC entry unfindable (the metadata's own bytes, which no inference reads)."""
    folded, hyper = tiny_exports("tiled")
    data = hyper if kind == "hyper" else folded
    metadata_span = fb.metadata_span(data, fmt.METADATA_CRC32)
    unfound = []
    for at in range(len(data)):
        mutant = bytearray(data)
        mutant[at] ^= 0xFF
        status, info = core_lib.file_check(lib, bytes(mutant))
        if status == "HTPW_OK":
            assert kind == "folded" and not info.has_crc, f"byte {at}: accepted with its CRC entry"
            unfound.append(at)
        else:
            assert status in ("HTPW_ERR_FILE_CRC", "HTPW_ERR_FILE_FORMAT", "HTPW_ERR_FILE_NO_CRC"), (at, status)
    assert metadata_span[0] not in unfound
    assert len(unfound) < 64, unfound  # the metadata table, its vtable and name: a few dozen bytes


def test_walk_stays_inside_truncated_and_random_files(lib):
    """Truncations and noise: a status, never a read outside the buffer (tests/test_c_fuzz.py runs this under ASan)."""
    _, hyper = tiny_exports("tiled")
    rng = np.random.default_rng(0)
    for cut in sorted({0, 3, 7, 8, *rng.integers(8, len(hyper), 40).tolist(), len(hyper) - 1}):
        status, _ = core_lib.file_check(lib, hyper[:cut])
        assert status in ("HTPW_ERR_FILE_FORMAT", "HTPW_ERR_FILE_CRC", "HTPW_ERR_FILE_NO_CRC"), (cut, status)
    for _ in range(200):
        noise = rng.integers(0, 256, int(rng.integers(8, 256)), dtype=np.uint8).tobytes()
        status, _ = core_lib.file_check(lib, noise)
        assert status.startswith("HTPW_"), status
