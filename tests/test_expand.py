"""expand(hyper) reproduces the folded file: tensor for tensor, filter buffers byte-identical."""

from __future__ import annotations

import numpy as np
import pytest

from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import api
from hyper_tinypw_tf.export import format as fmt
from tests.conftest_export import GENERATORS, large_exports, tiny_exports


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_expand_reproduces_folded_bytes(generator: str) -> None:
    folded, data = tiny_exports(generator)
    assert api.expand(data) == folded


@pytest.mark.parametrize("mode", fmt.MODES)
def test_expand_ignores_mode(mode: str) -> None:
    folded, data = tiny_exports("tiled", mode)
    assert api.expand(data) == folded


def test_expand_is_tensor_for_tensor() -> None:
    folded, data = tiny_exports("paper_factorized")
    a, b = fb.read(folded), fb.read(api.expand(data))
    ta, tb = a.subgraphs[0].tensors, b.subgraphs[0].tensors
    assert [fb.tensor_name(t) for t in ta] == [fb.tensor_name(t) for t in tb]
    for x, y in zip(ta, tb, strict=True):
        assert x.type == y.type and list(x.shape) == list(y.shape)
        assert fb.buffer_bytes(a, x) == fb.buffer_bytes(b, y), fb.tensor_name(x)
        if x.quantization is not None and x.quantization.scale is not None:
            np.testing.assert_array_equal(x.quantization.scale, y.quantization.scale)
    assert [fb.op_name(a, op) for op in a.subgraphs[0].operators] == [
        fb.op_name(b, op) for op in b.subgraphs[0].operators
    ]


def test_expand_large_preset() -> None:
    _, folded, data = large_exports()
    assert api.expand(data) == folded


def test_expand_file_writes_folded(tmp_path) -> None:
    folded, data = tiny_exports("tiled")
    (tmp_path / "m.tflite").write_bytes(data)
    api.expand_file(tmp_path / "m.tflite", tmp_path / "folded.tflite")
    assert (tmp_path / "folded.tflite").read_bytes() == folded
