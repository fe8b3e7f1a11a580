"""hyper_tinypw_tf.evaluation: metrics against hand-computed values, clustered bootstrap, validation-only threshold."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest

from hyper_tinypw_tf import evaluation as ev


def test_macro_f1_hand_computed() -> None:
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    # class 0: P=2/2 R=2/3 F1=0.8; class 1: P=1/2 R=1/2 F1=0.5; class 2: P=1/2 R=1 F1=2/3
    assert ev.macro_f1(y_true, y_pred, 3) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert ev.balanced_accuracy(y_true, y_pred, 3) == pytest.approx((2 / 3 + 0.5 + 1) / 3)
    p, r, f, s = ev.per_class_prf(ev.confusion_matrix(y_true, y_pred, 3))
    np.testing.assert_allclose(p, [1, 0.5, 0.5])
    np.testing.assert_allclose(r, [2 / 3, 0.5, 1])
    np.testing.assert_allclose(s, [3, 2, 1])


def test_roc_auc_hand_computed() -> None:
    # pairs (pos, neg): (0.35 > 0.1), (0.35 < 0.4), (0.8 > both) -> 3/4
    assert ev.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert ev.roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts one half
    scores = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    assert ev.roc_auc([0, 1, 2, 0], scores) == pytest.approx(1.0)


def test_bootstrap_resamples_whole_records() -> None:
    # Record A: 3 examples all right; record B: 5 examples all wrong.
    groups = np.array(["A"] * 3 + ["B"] * 5)
    correct = np.array([1.0] * 3 + [0.0] * 5)
    for idx in ev.cluster_bootstrap_indices(groups, n_boot=200, seed=1):
        n_a, n_b = int((groups[idx] == "A").sum()), int((groups[idx] == "B").sum())
        assert n_a % 3 == 0 and n_b % 5 == 0 and n_a // 3 + n_b // 5 == 2
    acc = ev.bootstrap_metric(lambda idx: float(correct[idx].mean()), groups, 500, seed=0)
    # Only AA, AB/BA and BB are possible: accuracies 1, 3/8 and 0, never e.g. 4/8.
    assert set(np.round(acc, 6)) == {0.0, 0.375, 1.0}
    # An example-level bootstrap would give many more distinct values.
    rng = np.random.default_rng(0)
    naive = {round(float(correct[rng.integers(0, 8, 8)].mean()), 6) for _ in range(500)}
    assert len(naive) > 3


def test_bootstrap_is_seeded() -> None:
    g = np.repeat(np.arange(10), 4)
    a = [i.tolist() for i in ev.cluster_bootstrap_indices(g, 5, seed=7)]
    b = [i.tolist() for i in ev.cluster_bootstrap_indices(g, 5, seed=7)]
    assert a == b


def test_threshold_tuned_on_validation_only_by_construction() -> None:
    params = list(inspect.signature(ev.tune_threshold).parameters)
    assert params[:2] == ["val_scores", "val_labels"]
    assert "threshold" in inspect.signature(ev.evaluate).parameters
    with pytest.raises(TypeError, match=r"create a Threshold with tune_threshold\(val_scores, val_labels\)"):
        ev.Threshold(0.3, "made up")  # cannot be built from arbitrary (e.g. test) numbers
    t = ev.tune_threshold(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1]))
    assert t.value == pytest.approx(0.5) and t.val_score == pytest.approx(1.0)
    assert t.source.startswith("validation")
    scores = np.array([0.3, 0.45, 0.55, 0.7, 0.2, 0.9])
    groups = np.arange(6)
    with pytest.raises(TypeError, match="binary evaluation needs threshold=.*not float"):
        ev.evaluate(scores, np.array([0, 0, 1, 1, 0, 1]), groups, threshold=0.5)  # type: ignore
    # Different test labels cannot move the threshold: evaluate only applies it.
    r1 = ev.evaluate(scores, np.array([0, 0, 1, 1, 0, 1]), groups, threshold=t, n_boot=20)
    r2 = ev.evaluate(scores, np.array([1, 1, 0, 0, 1, 0]), groups, threshold=t, n_boot=20)
    assert r1.threshold == r2.threshold == t.value
    assert r1.metrics["macro_f1"] == pytest.approx(1.0)
    assert r2.metrics["macro_f1"] == pytest.approx(0.0)


def test_tune_threshold_handles_ties_and_f1_objective() -> None:
    s = np.array([0.2, 0.2, 0.6, 0.6, 0.6, 0.9])
    y = np.array([0, 0, 0, 1, 1, 1])
    t = ev.tune_threshold(s, y, objective="f1")
    # Cutting inside the 0.6 tie is impossible; best is "predict 1 for >= 0.6".
    assert 0.2 < t.value <= 0.6


def test_report_table_json_and_multiclass(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    scores = rng.random((300, 3))
    scores[np.arange(300), y] += 0.5
    groups = np.repeat(np.arange(30), 10)
    r = ev.evaluate(scores, y, groups, class_names=["a", "b", "c"], n_boot=100, task="demo")
    assert r.n_groups == 30 and r.threshold is None
    lo, hi = r.ci["macro_f1"]
    assert lo <= r.metrics["macro_f1"] <= hi
    table = r.to_table()
    assert "macro_f1" in table and "balanced_accuracy" in table and "roc_auc" in table
    assert all(name in table for name in "abc")
    r.save_json(tmp_path / "r.json")
    back = json.loads((tmp_path / "r.json").read_text())
    assert back["metrics"]["macro_f1"] == pytest.approx(r.metrics["macro_f1"])
    assert back["n_boot"] == 100
    with pytest.raises(ValueError, match="threshold applies to binary tasks only"):
        ev.evaluate(scores, y, groups, threshold=ev.Threshold.fixed(0.5), n_boot=5)


def _one_hot(pred: list[int], n: int = 3) -> np.ndarray:
    return np.eye(n)[np.asarray(pred)]


def test_paired_difference_cancels_what_both_models_share() -> None:
    # Two records with the same 4 labels; a is always right, b misses the second "0" of each record.
    # Every resample holds the same mix, so the difference is the same in all of them:
    # accuracy 1 - 6/8 = 1/4; b's macro-F1: class 0 P=1 R=1/2 F1=2/3, class 1 P=1/2 R=1 F1=2/3,
    # class 2 F1=1 -> 7/9, so the macro-F1 difference is 2/9, with a zero-width paired CI.
    labels = np.array([0, 1, 2, 0] * 2)
    groups = np.array(["A"] * 4 + ["B"] * 4)
    a = _one_hot(labels.tolist())
    b = _one_hot([0, 1, 2, 1] * 2)
    d = ev.paired_difference(a, b, labels, groups, n_boot=200, seed=3)
    assert d["accuracy"].difference == pytest.approx(0.25)
    assert d["accuracy"].ci == pytest.approx((0.25, 0.25))
    assert d["macro_f1"].a == pytest.approx(1.0) and d["macro_f1"].b == pytest.approx(7 / 9)
    assert d["macro_f1"].difference == pytest.approx(2 / 9)
    assert d["macro_f1"].ci == pytest.approx((2 / 9, 2 / 9))
    # The paired point values are the ones each model's own report gives.
    assert ev.evaluate(b, labels, groups, n_boot=10).metrics["macro_f1"] == pytest.approx(7 / 9)


def test_paired_difference_resamples_whole_records_for_both_models() -> None:
    # Record A (3 examples): a right, b wrong on all; record B (5 examples): both right.
    # Resamples are AA, AB/BA or BB: accuracy differences 1, 3/8 and 0, nothing else.
    labels = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    groups = np.array(["A"] * 3 + ["B"] * 5)
    a = labels.astype(np.float64)
    b = np.where(groups == "A", 1 - labels, labels).astype(np.float64)
    half = ev.Threshold.fixed(0.5)
    d = ev.paired_difference(a, b, labels, groups, threshold_a=half, threshold_b=half, n_boot=500, seed=0)
    assert d["accuracy"].difference == pytest.approx(3 / 8)
    assert set(np.round(d["accuracy"].samples, 6)) == {0.0, 0.375, 1.0}
    assert d["accuracy"].ci[0] == pytest.approx(0.0) and d["accuracy"].ci[1] == pytest.approx(1.0)
    assert d["accuracy"].to_dict()["ci"] == list(d["accuracy"].ci)


def test_paired_difference_refuses_unpaired_inputs() -> None:
    with pytest.raises(ValueError, match="must cover the same examples"):
        ev.paired_difference(_one_hot([0, 1, 2]), _one_hot([0, 1]), np.array([0, 1, 2]), n_boot=5)
    with pytest.raises(TypeError, match="binary evaluation needs threshold"):
        ev.paired_difference(np.array([0.2, 0.8]), np.array([0.3, 0.7]), np.array([0, 1]), n_boot=5)
