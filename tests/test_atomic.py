"""hyper_tinypw_tf.atomic: an output appears complete or not at all, under a name its format reader accepts."""

from __future__ import annotations

import os

import pytest

from hyper_tinypw_tf import atomic


def test_temporary_sibling_keeps_every_suffix_in_the_same_folder(tmp_path) -> None:
    tmp = atomic.temporary_sibling(tmp_path / "best.weights.h5")
    assert tmp.parent == tmp_path and tmp.name == f".best.{os.getpid()}.partial.weights.h5"
    assert atomic.temporary_sibling(tmp_path / "summary").name == f".summary.{os.getpid()}.partial"


def test_atomic_path_replaces_on_success_and_leaves_the_old_file_on_failure(tmp_path) -> None:
    target = tmp_path / "model.keras"
    with atomic.atomic_path(target) as tmp:
        tmp.write_bytes(b"first")
    assert target.read_bytes() == b"first"
    with pytest.raises(RuntimeError, match="killed mid-save"), atomic.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-save")
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_a_folder_replaces_an_existing_folder(tmp_path) -> None:
    """A SavedModel saved twice to one path: the second replaces the first."""
    target = tmp_path / "saved_model"
    for content in (b"first", b"second"):
        with atomic.atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "saved_model.pb").write_bytes(content)
    assert (target / "saved_model.pb").read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved_model"]
