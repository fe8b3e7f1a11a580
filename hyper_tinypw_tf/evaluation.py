"""Evaluation protocol: macro-F1 and friends, a validation-tuned threshold, clustered CIs.

Two rules are enforced by construction rather than by convention:

* the decision threshold of a binary task comes only from :func:`tune_threshold`
  (validation scores and labels); :func:`evaluate` applies it and never tunes, so test
  labels cannot influence it;
* confidence intervals resample whole groups (records / speakers) with replacement, because
  beats of one patient are not independent and an example-level bootstrap is too narrow.

Everything is numpy; there is no scikit-learn dependency.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

_TUNED = object()  # only tune_threshold / Threshold.fixed may build a Threshold


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``cm[i, j]`` = number of examples of true class i predicted as j."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes)


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)


def per_class_prf(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 and support from a confusion matrix (0 where undefined)."""
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * tp, support + predicted)
    return precision, recall, f1, support


def _present(cm: np.ndarray) -> np.ndarray:
    """Classes that occur in the labels or the predictions (sklearn's default label set)."""
    return (cm.sum(axis=0) + cm.sum(axis=1)) > 0


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int | None = None) -> float:
    """Unweighted mean F1 over the classes present in labels or predictions."""
    n = n_classes or int(max(np.max(y_true, initial=0), np.max(y_pred, initial=0)) + 1)
    cm = confusion_matrix(y_true, y_pred, n)
    return float(per_class_prf(cm)[2][_present(cm)].mean())


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray,
                      n_classes: int | None = None) -> float:
    """Mean recall over the classes that occur in the labels."""
    n = n_classes or int(max(np.max(y_true, initial=0), np.max(y_pred, initial=0)) + 1)
    cm = confusion_matrix(y_true, y_pred, n)
    _, recall, _, support = per_class_prf(cm)
    return float(recall[support > 0].mean())


def roc_auc_binary(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied ranks averaged); NaN if one class."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0
    ranks = avg_rank[inv]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Binary AUC for 1-D scores; one-vs-rest macro AUC for (N, C) scores."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        return roc_auc_binary(y_true, s)
    y = np.asarray(y_true)
    aucs = [roc_auc_binary(y == c, s[:, c]) for c in range(s.shape[1])]
    aucs = [a for a in aucs if not np.isnan(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


@dataclass(frozen=True)
class Threshold:
    """A binary decision threshold: predict 1 when ``score >= value``.

    Build it with :func:`tune_threshold` (validation data only) or :meth:`fixed`; a plain
    float is refused by :func:`evaluate`, so a threshold cannot silently come from test data.
    """

    value: float | np.ndarray
    source: str
    val_score: float | None = None
    n_val: int | None = None
    folds: tuple[float, ...] | None = None  # per_example: each fold's value, in pooling order
    _token: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._token is not _TUNED:
            raise TypeError("create a Threshold with tune_threshold(val_scores, val_labels) "
                            "or Threshold.fixed(value)")

    @classmethod
    def fixed(cls, value: float = 0.5) -> Threshold:
        """An untuned threshold chosen a priori (e.g. 0.5), labelled as such in reports."""
        return cls(float(value), "fixed", _token=_TUNED)

    @classmethod
    def per_example(cls, parts: Sequence[Threshold], sizes: Sequence[int]) -> Threshold:
        """Pooled out-of-fold predictions: fold ``i``'s ``parts[i]`` (tuned on that fold's validation) for its
        ``sizes[i]`` examples, so each example keeps the decision rule of the model that scored it."""
        if len(parts) != len(sizes) or not parts:
            raise ValueError(f"per_example: {len(parts)} thresholds for {len(sizes)} parts")
        value = np.concatenate([np.broadcast_to(np.asarray(t.value, np.float64), (n,))
                                for t, n in zip(parts, sizes, strict=True)])
        folds = tuple(v for t in parts for v in (t.folds if t.folds is not None else (float(t.value),)))
        return cls(value, "per fold: " + ", ".join(sorted({t.source for t in parts})), folds=folds, _token=_TUNED)

    def reported(self) -> float | list[float]:
        """The value as a report shows it: one number, or each fold's (in the order pooled)."""
        return list(self.folds) if self.folds is not None else float(self.value)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from logits (the reference models and their .tflite files output logits)."""
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _binary_scores(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 2 and s.shape[1] == 2:
        return s[:, 1]
    if s.ndim == 2 and s.shape[1] == 1:
        return s[:, 0]
    if s.ndim != 1:
        raise ValueError(f"binary scores must be (N,), (N, 1) or (N, 2); got {s.shape}")
    return s


def tune_threshold(val_scores: np.ndarray, val_labels: np.ndarray,
                   objective: str = "macro_f1") -> Threshold:
    """Threshold maximising F1 on the *validation* set ("macro_f1" or positive-class "f1").

    Every distinct score is a candidate cut; the returned value is the midpoint between the
    chosen cut and the next lower score, so it is not glued to one validation example.
    """
    s = _binary_scores(val_scores)
    y = np.asarray(val_labels).astype(bool)
    if len(s) != len(y) or len(s) == 0:
        raise ValueError("val_scores and val_labels must be non-empty and of equal length")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    # Cut after position k (predict positive for the k+1 highest scores); only at tie ends.
    ends = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])
    tp = np.cumsum(y_sorted)[ends].astype(np.float64)
    fp = (ends + 1) - tp
    pos, neg = float(y.sum()), float((~y).sum())
    fn, tn = pos - tp, neg - fp
    f1_pos = _safe_div(2 * tp, 2 * tp + fp + fn)
    if objective == "f1":
        score = f1_pos
    elif objective == "macro_f1":
        score = (f1_pos + _safe_div(2 * tn, 2 * tn + fn + fp)) / 2.0
    else:
        raise ValueError(f"objective must be 'macro_f1' or 'f1', got {objective!r}")
    best = int(np.argmax(score))
    cut = s_sorted[ends[best]]
    below = s_sorted[ends[best] + 1] if ends[best] + 1 < len(s_sorted) else cut - 1e-6
    return Threshold(float((cut + below) / 2.0), f"validation:{objective}",
                     float(score[best]), len(s), _token=_TUNED)


def decision_threshold(val_scores: np.ndarray | None, val_labels: np.ndarray | None,
                       num_classes: int) -> Threshold | None:
    """The decision rule every scorer uses: binary tasks tune on validation when it holds both classes
    (else a fixed 0.5); multi-class tasks take the argmax (None)."""
    if num_classes != 2:
        return None
    if val_scores is None or val_labels is None or len(np.unique(np.asarray(val_labels))) < 2:
        return Threshold.fixed(0.5)
    return tune_threshold(val_scores, val_labels)


def cluster_bootstrap_indices(groups: Sequence[object] | np.ndarray, n_boot: int = 1000,
                              seed: int = 0) -> Iterator[np.ndarray]:
    """Yield ``n_boot`` index arrays, each the examples of G groups drawn with replacement.

    A group drawn k times contributes all of its examples k times; no group is ever split.
    """
    g = np.asarray(groups)
    uniq, inv = np.unique(g, return_inverse=True)
    order = np.argsort(inv, kind="mergesort")
    bounds = np.r_[0, np.cumsum(np.bincount(inv, minlength=len(uniq)))]
    members = [order[bounds[k]: bounds[k + 1]] for k in range(len(uniq))]
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        picks = rng.integers(0, len(uniq), len(uniq))
        yield np.concatenate([members[k] for k in picks])


def bootstrap_metric(
    metric: Callable[[np.ndarray], float], groups: Sequence[object] | np.ndarray,
    n_boot: int = 1000, seed: int = 0,
) -> np.ndarray:
    """Clustered-bootstrap distribution of ``metric(indices)`` (NaN results kept as NaN)."""
    return np.array([metric(idx) for idx in cluster_bootstrap_indices(groups, n_boot, seed)])


def json_safe(o: object) -> object:
    """A copy of ``o`` with NaN as None and tuples as lists, for strict JSON."""
    if isinstance(o, float) and np.isnan(o):
        return None
    if isinstance(o, dict):
        return {k: json_safe(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [json_safe(v) for v in o]
    return o


@dataclass
class EvaluationReport:
    """Point estimates, clustered-bootstrap CIs and per-class numbers for one split."""

    task: str
    class_names: list[str]
    n_examples: int
    n_groups: int
    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]]
    per_class: dict[str, dict[str, float]]
    threshold: float | list[float] | None = None  # a list: pooled folds, each fold's own
    threshold_source: str | None = None
    n_boot: int = 0
    ci_level: float = 0.95
    seed: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def to_json_dict(self) -> dict[str, object]:
        """The report as plain JSON values (NaN becomes null so any JSON reader accepts it)."""
        return json_safe(self.to_dict())  # type: ignore[return-value]

    def save_json(self, path: str | Path) -> None:
        """Write the report as JSON."""
        Path(path).write_text(json.dumps(self.to_json_dict(), indent=2) + "\n")

    def to_table(self) -> str:
        """Plain-text table: summary metrics with CIs, then per-class P/R/F1/support."""
        pct = int(round(self.ci_level * 100))
        head = f"{self.task or 'evaluation'}: {self.n_examples} examples, {self.n_groups} groups"
        if isinstance(self.threshold, list):
            head += f", thresholds {', '.join(f'{t:.4f}' for t in self.threshold)} ({self.threshold_source})"
        elif self.threshold is not None:
            head += f", threshold {self.threshold:.4f} ({self.threshold_source})"
        lines = [head, f"{'metric':<20}{'value':>10}   {pct}% CI ({self.n_boot} clustered boot)"]
        for k, v in self.metrics.items():
            lo, hi = self.ci.get(k, (float("nan"), float("nan")))
            lines.append(f"{k:<20}{v:>10.4f}   [{lo:.4f}, {hi:.4f}]")
        lines.append(f"{'class':<20}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
        for name, d in self.per_class.items():
            lines.append(f"{name:<20}{d['precision']:>10.4f}{d['recall']:>10.4f}"
                         f"{d['f1']:>10.4f}{int(d['support']):>10d}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_table()


def _decisions(scores: np.ndarray, threshold: Threshold | None) -> tuple[np.ndarray, np.ndarray, int]:
    """(scores as scored, predicted class, number of classes) under the one decision rule.

    Binary tasks (1-D or (N, 2) scores) need a :class:`Threshold`; multi-class tasks take the argmax.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1 or (s.ndim == 2 and s.shape[1] <= 2):
        if not isinstance(threshold, Threshold):
            raise TypeError("binary evaluation needs threshold=tune_threshold(val_scores, "
                            "val_labels) or Threshold.fixed(...), not "
                            f"{type(threshold).__name__}")
        s = _binary_scores(s)
        return s, (s >= threshold.value).astype(np.int64), 2
    if threshold is not None:
        raise ValueError("threshold applies to binary tasks only")
    return s, np.argmax(s, axis=1), s.shape[1]


def _summary(
    y: np.ndarray, s: np.ndarray, pred: np.ndarray, n_classes: int
) -> Callable[[np.ndarray], dict[str, float]]:
    """The headline metrics of the examples at ``idx`` (what every bootstrap resample computes)."""
    def summary(idx: np.ndarray) -> dict[str, float]:
        yt, yp = y[idx], pred[idx]
        return {
            "macro_f1": macro_f1(yt, yp, n_classes),
            "balanced_accuracy": balanced_accuracy(yt, yp, n_classes),
            "accuracy": float(np.mean(yt == yp)) if len(yt) else float("nan"),
            "roc_auc": roc_auc(yt, s[idx]),
        }
    return summary


def _groups(groups: Sequence[object] | np.ndarray | None, n: int) -> np.ndarray:
    g = np.arange(n) if groups is None else np.asarray(groups)
    if len(g) != n:
        raise ValueError(f"{len(g)} groups but {n} labels")
    return g


def _percentile_ci(values: Sequence[float], ci_level: float) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    alpha = (1.0 - ci_level) / 2.0
    if not len(v):
        return (float("nan"), float("nan"))
    return (float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha)))


def evaluate(
    scores: np.ndarray,
    labels: np.ndarray,
    groups: Sequence[object] | np.ndarray | None = None,
    *,
    threshold: Threshold | None = None,
    class_names: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    ci_level: float = 0.95,
    task: str = "",
) -> EvaluationReport:
    """Score a split with a fixed decision rule; never tunes anything on these labels.

    Binary tasks (1-D or (N, 2) scores) need a :class:`Threshold`; multi-class tasks take
    the argmax. ``groups`` (record/speaker per example) drive the clustered bootstrap; without
    them every example is its own group.
    """
    y = np.asarray(labels, dtype=np.int64)
    s, pred, n_classes = _decisions(scores, threshold)
    if len(y) != len(s):
        raise ValueError(f"{len(s)} scores but {len(y)} labels")
    names = list(class_names) if class_names is not None else [str(i) for i in range(n_classes)]
    g = _groups(groups, len(y))
    summary = _summary(y, s, pred, n_classes)
    metrics = summary(np.arange(len(y)))
    samples = [summary(idx) for idx in cluster_bootstrap_indices(g, n_boot, seed)]
    ci = {k: _percentile_ci([d[k] for d in samples], ci_level) for k in metrics}
    p, r, f, sup = per_class_prf(confusion_matrix(y, pred, n_classes))
    per_class = {names[c]: {"precision": float(p[c]), "recall": float(r[c]), "f1": float(f[c]),
                            "support": float(sup[c])} for c in range(n_classes)}
    return EvaluationReport(
        task=task, class_names=names, n_examples=len(y), n_groups=len(np.unique(g)),
        metrics=metrics, ci=ci, per_class=per_class,
        threshold=threshold.reported() if threshold is not None else None,
        threshold_source=threshold.source if threshold is not None else None,
        n_boot=n_boot, ci_level=ci_level, seed=seed,
    )


@dataclass(frozen=True)
class Difference:
    """``a − b`` of one metric on the same examples, with its paired clustered-bootstrap CI."""

    metric: str
    a: float
    b: float
    difference: float
    ci: tuple[float, float]
    samples: np.ndarray = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, object]:
        return {"metric": self.metric, "a": self.a, "b": self.b, "difference": self.difference,
                "ci": list(self.ci)}


def paired_difference(
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    labels: np.ndarray,
    groups: Sequence[object] | np.ndarray | None = None,
    *,
    threshold_a: Threshold | None = None,
    threshold_b: Threshold | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    ci_level: float = 0.95,
) -> dict[str, Difference]:
    """Metric differences ``a − b`` of two models scored on the same examples, per headline metric.

    The bootstrap is paired: each resample draws whole groups (records/speakers) once and scores
    both models on that same resample, so what the two models share (hard records, easy
    speakers) cancels in the difference instead of widening its CI. Each model keeps its own
    decision rule (``threshold_a``/``threshold_b``, tuned on validation for binary tasks).
    """
    y = np.asarray(labels, dtype=np.int64)
    s_a, pred_a, n_a = _decisions(scores_a, threshold_a)
    s_b, pred_b, n_b = _decisions(scores_b, threshold_b)
    if not len(s_a) == len(s_b) == len(y) or n_a != n_b:
        raise ValueError(f"paired_difference: scores_a {np.shape(scores_a)}, scores_b {np.shape(scores_b)} "
                         f"and {len(y)} labels must cover the same examples and classes")
    g = _groups(groups, len(y))
    summary_a, summary_b = _summary(y, s_a, pred_a, n_a), _summary(y, s_b, pred_b, n_b)
    everything = np.arange(len(y))
    point_a, point_b = summary_a(everything), summary_b(everything)
    diffs: dict[str, list[float]] = {k: [] for k in point_a}
    for idx in cluster_bootstrap_indices(g, n_boot, seed):
        ra, rb = summary_a(idx), summary_b(idx)
        for k in diffs:
            diffs[k].append(ra[k] - rb[k])
    return {
        k: Difference(k, point_a[k], point_b[k], point_a[k] - point_b[k], _percentile_ci(v, ci_level),
                      np.asarray(v, np.float64))
        for k, v in diffs.items()
    }
