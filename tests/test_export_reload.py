"""A QAT model saved as H5 and loaded again exports in both formats, as ``hyper-tinypw export`` does it.

Inside a reloaded tfmot wrapper the user's layer was never called itself, so the byte report must
take shapes from the wrapper (issue 7: ``The layer "stem" has never been called``).
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import pytest

from hyper_tinypw_tf import accounting, models, quantization
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.export import api
from tests.conftest_export import TINY


@functools.cache
def _reloaded() -> tuple[keras.Model, keras.Model]:
    keras.utils.set_random_seed(0)
    qat = quantization.quantize_model(models.build_backbone(TINY, 2, pw="hyper"))
    path = Path(tempfile.mkdtemp(prefix="htpw_reload_")) / "model_qat.h5"
    qat.save(path)
    with quantization.quantize_scope():
        return qat, keras.models.load_model(path)


@pytest.mark.parametrize("fmt", api.FORMATS)
def test_reloaded_qat_model_exports_with_its_byte_table(fmt: str, tmp_path: Path) -> None:
    original, loaded = _reloaded()
    out = tmp_path / f"m_{fmt}.tflite"
    lines: list[str] = []
    report = api.export_files(loaded, out, fmt=fmt, print_fn=lines.append)
    data = out.read_bytes()
    assert report.total == len(data)
    assert data == api.export_model(original, fmt=fmt), "the reloaded model exports the same bytes"
    assert f"{len(data):,}" in lines[0]


def test_reloaded_model_counts_like_the_original() -> None:
    original, loaded = _reloaded()
    assert accounting.packed_bytes(loaded).total == accounting.packed_bytes(original).total
    assert accounting.folded_bytes(loaded).total == accounting.folded_bytes(original).total
    assert accounting.runtime_bill(loaded) == accounting.runtime_bill(original)


def test_expand_of_the_reloaded_hyper_export_is_its_folded_export() -> None:
    _, loaded = _reloaded()
    assert api.expand(api.export_model(loaded, fmt="hyper")) == api.export_model(loaded, fmt="folded")
