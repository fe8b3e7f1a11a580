"""Out-of-fold pooling for the ``cv:K`` protocol: every record or speaker scored once, by a model that never saw it.

Fold ``i`` trains on K − 2 folds, tunes its decision threshold and early stopping on fold ``i + 1``
and is scored on fold ``i`` (``data.splits.cv_assignment``). :func:`pool` joins the K test folds into
one prediction set, each example keeping the threshold of the model that scored it, so the clustered
bootstrap of :mod:`hyper_tinypw_tf.evaluation` resamples all records (or speakers) at once. Two points
scored on the same folds pool to the same examples in the same order, which is what
``evaluation.paired_difference`` pairs on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hyper_tinypw_tf import evaluation


@dataclass(frozen=True)
class FoldScores:
    """One fold's test predictions (class probabilities) and the decision rule tuned on its validation split."""

    fold: int
    scores: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    threshold: evaluation.Threshold | None

    @classmethod
    def from_logits(cls, fold: int, test_logits: np.ndarray, test_labels: np.ndarray, test_groups: np.ndarray,
                    val_logits: np.ndarray | None, val_labels: np.ndarray | None) -> FoldScores:
        """Softmax of the logits, with ``evaluation.decision_threshold`` from the validation logits."""
        scores = evaluation.softmax(test_logits)
        val_scores = None if val_logits is None or not len(val_logits) else evaluation.softmax(val_logits)
        threshold = evaluation.decision_threshold(val_scores, val_labels, scores.shape[-1])
        return cls(fold, scores, np.asarray(test_labels, np.int64), np.asarray(test_groups).astype(str), threshold)

    @classmethod
    def from_npz(cls, fold: int, path: str | Path) -> FoldScores:
        """One fold's scores as ``stages.score`` keeps them (``scores.npz``: test and validation logits)."""
        with np.load(path) as z:
            return cls.from_logits(fold, z["test_logits"], z["test_labels"], z["test_groups"],
                                   z["val_logits"], z["val_labels"])

    def evaluate(self, class_names: Sequence[str], n_boot: int, seed: int,
                 task: str = "") -> evaluation.EvaluationReport:
        """Metrics and clustered-bootstrap CIs of these predictions."""
        return evaluation.evaluate(self.scores, self.labels, self.groups, threshold=self.threshold,
                                   class_names=class_names, n_boot=n_boot, seed=seed, task=task)


def pool(parts: Sequence[FoldScores]) -> FoldScores:
    """The K folds' test predictions as one set (fold order), each example with its own fold's threshold.

    Raises:
      ValueError: no parts, a fold given twice, or a group (record/speaker) tested in two folds
        (silence clips, grouped by their noise recording, are the one exception: every fold cuts its own).
    """
    if not parts:
        raise ValueError("pool: no folds to pool")
    if len(parts) == 1:
        return parts[0]
    parts = sorted(parts, key=lambda p: p.fold)
    folds = [p.fold for p in parts]
    if len(set(folds)) != len(folds):
        raise ValueError(f"pool: a fold is given twice: {folds}")
    seen: dict[str, int] = {}
    for p in parts:
        for g in np.unique(p.groups).tolist():
            if g in seen and not str(g).startswith("noise:"):
                raise ValueError(f"pool: group {g!r} is tested in folds {seen[g]} and {p.fold}")
            seen[str(g)] = p.fold
    thresholds = [p.threshold for p in parts]
    if any(t is None for t in thresholds):
        threshold = None
    else:
        threshold = evaluation.Threshold.per_example(thresholds, [len(p.labels) for p in parts])  # type: ignore[arg-type]
    return FoldScores(-1, np.concatenate([p.scores for p in parts]), np.concatenate([p.labels for p in parts]),
                      np.concatenate([p.groups for p in parts]), threshold)


def paired(a: FoldScores, b: FoldScores, n_boot: int, seed: int) -> dict[str, evaluation.Difference]:
    """``a − b`` per headline metric, paired: the same examples, each resample scoring both.

    Raises:
      ValueError: the two sets cover different examples (other folds, another data split).
    """
    if not (np.array_equal(a.labels, b.labels) and np.array_equal(a.groups, b.groups)):
        raise ValueError("paired: the two prediction sets cover different examples (different folds or splits)")
    return evaluation.paired_difference(a.scores, b.scores, a.labels, a.groups, threshold_a=a.threshold,
                                        threshold_b=b.threshold, n_boot=n_boot, seed=seed)


def stack(parts: Sequence[FoldScores]) -> FoldScores:
    """Several seeds' pooled predictions of the same examples as one set, for a paired bootstrap over all seeds.

    Each resample draws groups once and takes every seed's predictions for them, so a difference's
    interval covers the seeds' spread and the records' (or speakers') at once.

    Raises:
      ValueError: the parts cover different examples.
    """
    if not parts:
        raise ValueError("stack: nothing to stack")
    for p in parts[1:]:
        if not (np.array_equal(p.labels, parts[0].labels) and np.array_equal(p.groups, parts[0].groups)):
            raise ValueError("stack: the seeds' predictions cover different examples")
    if len(parts) == 1:
        return parts[0]
    thresholds = [p.threshold for p in parts]
    threshold = None
    if all(t is not None for t in thresholds):
        threshold = evaluation.Threshold.per_example(thresholds, [len(p.labels) for p in parts])  # type: ignore[arg-type]
    return FoldScores(-1, np.concatenate([p.scores for p in parts]), np.concatenate([p.labels for p in parts]),
                      np.concatenate([p.groups for p in parts]), threshold)
