"""hyper_tinypw_tf.evaluation against scikit-learn as an oracle.

Our metrics are written in numpy so the package does not depend on scikit-learn; this module
checks confusion_matrix, per_class_prf, macro_f1, balanced_accuracy and roc_auc (binary and
one-vs-rest) against sklearn.metrics on random cases, including absent classes and tied scores.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sk = pytest.importorskip("sklearn.metrics")  # the test extra installs it; see setup.cfg

from hyper_tinypw_tf import evaluation as ev  # noqa: E402

CASES = 60


def _labels(rng: np.random.Generator, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Skewed labels and noisy predictions; some classes may be absent from either side."""
    n = int(rng.integers(5, 60))
    p = rng.dirichlet(np.full(n_classes, 0.6))
    y_true = rng.choice(n_classes, n, p=p)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.choice(n_classes, n))
    return y_true, y_pred


@pytest.mark.parametrize("n_classes", [2, 3, 5, 12])
def test_confusion_matrix_and_label_metrics_match_sklearn(n_classes: int) -> None:
    rng = np.random.default_rng(n_classes)
    for _ in range(CASES):
        y_true, y_pred = _labels(rng, n_classes)
        labels = np.arange(n_classes)
        cm = ev.confusion_matrix(y_true, y_pred, n_classes)
        np.testing.assert_array_equal(cm, sk.confusion_matrix(y_true, y_pred, labels=labels))
        p, r, f, s = ev.per_class_prf(cm)
        p_sk, r_sk, f_sk, s_sk = sk.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, zero_division=0)
        np.testing.assert_allclose(np.stack([p, r, f]), np.stack([p_sk, r_sk, f_sk]), rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(s, s_sk)
        assert ev.macro_f1(y_true, y_pred, n_classes) == pytest.approx(
            sk.f1_score(y_true, y_pred, average="macro", zero_division=0), rel=1e-12)
        with warnings.catch_warnings():  # sklearn warns when y_pred has a class y_true lacks
            warnings.simplefilter("ignore", UserWarning)
            expected = sk.balanced_accuracy_score(y_true, y_pred)
        assert ev.balanced_accuracy(y_true, y_pred, n_classes) == pytest.approx(expected, rel=1e-12)


def test_binary_roc_auc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(1)
    for _ in range(CASES):
        n = int(rng.integers(4, 80))
        y = rng.integers(0, 2, n)
        if y.min() == y.max():
            y[0] = 1 - y[0]
        scores = np.round(rng.normal(y * rng.uniform(0, 2), 1.0), int(rng.integers(0, 3)))  # coarse: ties
        assert ev.roc_auc(y, scores) == pytest.approx(sk.roc_auc_score(y, scores), rel=1e-12)


def test_one_class_binary_auc_is_nan_as_in_sklearn() -> None:
    from sklearn.exceptions import UndefinedMetricWarning

    y, scores = np.ones(5, int), np.linspace(0, 1, 5)
    assert np.isnan(ev.roc_auc(y, scores))
    with pytest.warns(UndefinedMetricWarning, match="Only one class"):
        assert np.isnan(sk.roc_auc_score(y, scores))


@pytest.mark.parametrize("n_classes", [3, 5, 12])
def test_multiclass_ovr_macro_auc_matches_sklearn(n_classes: int) -> None:
    rng = np.random.default_rng(100 + n_classes)
    for _ in range(CASES // 4):
        n = int(rng.integers(3 * n_classes, 120))
        y = np.concatenate([np.arange(n_classes), rng.integers(0, n_classes, n - n_classes)])
        logits = rng.normal(size=(n, n_classes)) + 1.5 * np.eye(n_classes)[y] * rng.uniform(0, 1)
        probs = ev.softmax(logits)
        expected = sk.roc_auc_score(y, probs, multi_class="ovr", average="macro", labels=np.arange(n_classes))
        assert ev.roc_auc(y, probs) == pytest.approx(expected, rel=1e-10)
