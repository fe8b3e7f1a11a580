"""hyper_tinypw_tf.app.stages: a stage runs once, writes its file whole, and is skipped once the file exists.

The full train → QAT → export → score chain, stopped and resumed with the same numbers, is tested
through its two users: ``tests/test_pipeline.py`` (``main``) and ``tests/test_frontier.py``.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from hyper_tinypw_tf.app import stages


def test_done_skips_an_existing_output_and_prepares_the_folder_of_a_missing_one(tmp_path):
    lines: list[str] = []
    output = tmp_path / "a" / "b" / "model.keras"
    assert not stages.done(output, "train", lines.append)
    assert output.parent.is_dir() and not output.exists()
    output.write_text("x")
    assert stages.done(output, "train", lines.append)
    assert lines == [f"train: running -> {output}", f"train: skipped, {output} exists"]


def test_cached_json_computes_once_and_returns_the_stored_record(tmp_path):
    calls = []

    def compute() -> dict:
        calls.append(1)
        return {"macro_f1": 0.5, "n": len(calls)}

    path = tmp_path / "result.json"
    first = stages.cached_json(path, compute)
    second = stages.cached_json(path, compute)
    assert first == second == {"macro_f1": 0.5, "n": 1}
    assert len(calls) == 1
    assert not [p for p in tmp_path.iterdir() if p.name != "result.json"]  # no temporary file left


def _data(n_val: int, n_test: int):
    rng = np.random.default_rng(0)
    datasets = {split: tf.data.Dataset.from_tensor_slices((rng.normal(size=(n, 4)).astype(np.float32),
                                                           np.arange(n) % 3)).batch(2)
                for split, n in (("val", n_val), ("test", n_test))}
    info = SimpleNamespace(groups={"test": [f"r{i % 2}" for i in range(n_test)]})
    return datasets, info


def test_score_writes_logits_labels_and_groups_once(tmp_path):
    datasets, info = _data(3, 5)
    weights = np.arange(12, dtype=np.float32).reshape(4, 3)
    output = tmp_path / "scores.npz"
    stages.score(output, tmp_path / "unused.tflite", lambda: (datasets, info), predict=lambda x: x @ weights,
                 extra=lambda d, i: {"arena_bytes": 123})
    with np.load(output) as z:
        x_test = np.concatenate([x for x, _ in datasets["test"].as_numpy_iterator()])
        np.testing.assert_array_equal(z["test_logits"], x_test @ weights)
        np.testing.assert_array_equal(z["test_labels"], np.arange(5) % 3)
        assert z["val_logits"].shape == (3, 3)
        assert list(z["test_groups"]) == ["r0", "r1", "r0", "r1", "r0"]
        assert int(z["arena_bytes"]) == 123

    def never(_):
        raise AssertionError("a finished stage ran again")

    stages.score(output, tmp_path / "unused.tflite", lambda: (datasets, info), predict=never)


def test_score_leaves_no_file_when_prediction_fails(tmp_path):
    datasets, info = _data(2, 2)

    def broken(_):
        raise RuntimeError("runner crashed")

    with pytest.raises(RuntimeError, match="runner crashed"):
        stages.score(tmp_path / "scores.npz", tmp_path / "m.tflite", lambda: (datasets, info), predict=broken)
    assert not list(tmp_path.glob("*scores*"))
