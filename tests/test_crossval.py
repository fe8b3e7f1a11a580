"""The cv:K protocol: folds over records (MIT-BIH) and speakers (Speech Commands), and out-of-fold pooling."""

from __future__ import annotations

import numpy as np
import pytest

from hyper_tinypw_tf import crossval, evaluation
from hyper_tinypw_tf.data import load, load_arrays, splits
from hyper_tinypw_tf.data.options import LoadOptions, default_data_dir

DATA = default_data_dir()


def _check_folds(test_groups: list[set[str]], every_split: list[dict[str, set[str]]], pool: set[str]) -> None:
    """Every group tested exactly once over the folds, and no group in two splits of one fold."""
    tested = [g for groups in test_groups for g in groups]
    assert sorted(tested) == sorted(pool), "each record/speaker is tested exactly once"
    for fold, parts in enumerate(every_split):
        names = list(parts)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                assert not parts[a] & parts[b], f"fold {fold}: {a} and {b} share {parts[a] & parts[b]}"
        assert set().union(*parts.values()) == pool, f"fold {fold} leaves a group out"


@pytest.mark.usefixtures("shared_data")
def test_mitdb_cv5_tests_every_record_once_and_no_fold_shares_one(tmp_path):
    options = LoadOptions(cache_dir=str(tmp_path))
    tests, every = [], []
    for fold in range(5):
        arrays, info = load_arrays("mitdb_aami", DATA / "mitdb", options, protocol="cv:5", fold=fold)
        every.append({s: set(arrays[s].groups.tolist()) for s in splits.SPLITS})
        tests.append(every[-1]["test"])
        assert info.notes["fold"] == fold and info.notes["protocol"] == "cv:5"
        # val is the next fold's test set: thresholds and early stopping never see the fold's test records
        assert every[-1]["val"] == set(load_arrays("mitdb_aami", DATA / "mitdb", options, protocol="cv:5",
                                                   fold=(fold + 1) % 5)[0]["test"].groups.tolist())
    ds1_present = {r for r in (p.stem for p in (DATA / "mitdb").glob("*.hea"))} - {"102", "104", "107", "217"}
    _check_folds(tests, every, ds1_present)
    # The folds are the same for every training seed: pairing two models fold by fold depends on it.
    again, _ = load_arrays("mitdb_aami", DATA / "mitdb", options, protocol="cv:5", fold=3, seed=7)
    assert set(again["test"].groups.tolist()) == tests[3]


@pytest.mark.usefixtures("shared_data")
def test_speech_commands_cv5_tests_every_speaker_once():
    tests, every = [], []
    speakers: set[str] = set()
    for fold in range(5):
        _, info = load("speech_commands", DATA / "speech_commands", protocol="cv:5", fold=fold)
        parts = {s: {g for g in info.groups[s].tolist() if not g.startswith("noise:")} for s in splits.SPLITS}
        every.append(parts)
        tests.append(parts["test"])
        speakers |= set().union(*parts.values())
    _check_folds(tests, every, speakers)
    assert len(speakers) > 100


@pytest.mark.parametrize("protocol, match", [("cv:2", r"cv:K needs an integer K >= 3"),
                                             ("cv:x", r"received protocol='cv:x'")])
def test_bad_cv_spelling_is_refused(protocol, match):
    with pytest.raises(ValueError, match=match):
        splits.parse_cv(protocol)


def test_fold_out_of_range_is_refused():
    with pytest.raises(ValueError, match=r"fold must be in 0..2 for cv:3, received fold=3"):
        splits.cv_assignment([["a"], ["b"], ["c"]], 3)


def test_cv_folds_spread_a_rare_class_over_folds():
    # Four groups hold the rare class; a stratified assignment gives four different folds one each.
    labels = {f"g{i}": np.array([0] * 100 + ([1] * 20 if i < 4 else [])) for i in range(12)}
    folds = splits.cv_folds(labels, 4, 2)
    with_rare = [sum(g in {"g0", "g1", "g2", "g3"} for g in f) for f in folds]
    assert with_rare == [1, 1, 1, 1]
    assert sorted(g for f in folds for g in f) == sorted(labels)


def _fold(fold: int, groups: list[str], logits: np.ndarray, labels: np.ndarray, strict: bool = False):
    """A fold whose validation split tunes a low threshold (about 0.37), or with ``strict`` a high one (about 0.94)."""
    val = np.array([[0.0, 2.0 if strict else 1.0], [0.0, -5.0], [0.0, 5.0]])
    val_labels = np.array([0 if strict else 1, 0, 1])
    return crossval.FoldScores.from_logits(fold, logits, labels, np.array(groups), val, val_labels)


def test_pool_keeps_each_folds_threshold_and_refuses_a_group_tested_twice():
    a = _fold(0, ["r1", "r1"], np.array([[0.0, 0.3], [0.0, -0.3]]), np.array([1, 0]))
    b = _fold(1, ["r2", "r2"], np.array([[0.0, 0.3], [0.0, -0.3]]), np.array([1, 0]), strict=True)
    pooled = crossval.pool([b, a])  # fold order, whatever the order given
    assert pooled.groups.tolist() == ["r1", "r1", "r2", "r2"]
    assert pooled.threshold.folds == (a.threshold.value, b.threshold.value)
    # Fold 1's threshold lies above its positive score: a per-fold decision rule gives a different answer.
    report = pooled.evaluate(["rest", "V"], n_boot=20, seed=0)
    assert report.threshold == [a.threshold.value, b.threshold.value]
    assert report.per_class["V"]["recall"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"group 'r1' is tested in folds 0 and 1"):
        crossval.pool([a, _fold(1, ["r1", "r3"], np.zeros((2, 2)), np.array([1, 0]))])


def test_paired_difference_needs_the_same_examples():
    a = _fold(0, ["r1", "r2"], np.array([[0.0, 1.0], [0.0, -1.0]]), np.array([1, 0]))
    b = _fold(0, ["r1", "r2"], np.array([[0.0, -1.0], [0.0, 1.0]]), np.array([1, 0]))
    diff = crossval.paired(a, b, n_boot=50, seed=0)["macro_f1"]
    assert diff.a == pytest.approx(1.0) and diff.difference == pytest.approx(diff.a - diff.b)
    other = _fold(0, ["r1", "r3"], np.zeros((2, 2)), np.array([1, 0]))
    with pytest.raises(ValueError, match=r"cover different examples"):
        crossval.paired(a, other, n_boot=10, seed=0)
    stacked = crossval.stack([a, a])
    assert len(stacked.labels) == 4 and len(stacked.threshold.value) == 4


def test_decision_threshold_is_fixed_without_both_classes_in_validation():
    assert evaluation.decision_threshold(np.array([0.2, 0.7]), np.array([1, 1]), 2).source == "fixed"
    assert evaluation.decision_threshold(None, None, 5) is None
