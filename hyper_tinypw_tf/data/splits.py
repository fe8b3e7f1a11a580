"""Group-disjoint split rules: no record or speaker may appear in two splits.

Splitting by example would put beats of one patient in both train and test and inflate
scores; every rule here assigns whole groups.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

SPLITS = ("train", "val", "test")
MAX_NUM_WAVS_PER_CLASS = 2**27 - 1  # ~134M, from the Speech Commands README


def split_groups(
    groups: Iterable[str],
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> dict[str, list[str]]:
    """Shuffle the unique groups with ``seed`` and cut them into train/val/test.

    Deterministic for a given seed and group set (the input order does not matter). Val and
    test get at least one group each when there are three or more groups.
    """
    uniq = sorted(set(groups))
    if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
        raise ValueError(f"fractions must be three non-negative numbers, got {fractions}")
    total = float(sum(fractions))
    n = len(uniq)
    order = [uniq[i] for i in np.random.default_rng(seed).permutation(n)]
    n_test = int(round(n * fractions[2] / total))
    n_val = int(round(n * fractions[1] / total))
    if n >= 3:
        n_test = max(n_test, 1 if fractions[2] > 0 else 0)
        n_val = max(n_val, 1 if fractions[1] > 0 else 0)
    n_val = min(n_val, n - n_test)
    return {
        "test": sorted(order[:n_test]),
        "val": sorted(order[n_test : n_test + n_val]),
        "train": sorted(order[n_test + n_val :]),
    }


def speaker_id(filename: str) -> str:
    """Speaker (hash) part of a Speech Commands file name: what precedes ``_nohash_``."""
    base = re.split(r"[\\/]", filename)[-1]
    return re.sub(r"_nohash_.*$", "", base)


def which_set(filename: str, validation_percentage: float = 10.0,
              testing_percentage: float = 10.0) -> str:
    """Speech Commands' own partition rule (dataset README), keyed on the speaker id.

    Returns ``"val"``, ``"test"`` or ``"train"`` (the README's validation/testing/training).
    All clips of one speaker land in the same split, and adding files never moves old ones.
    """
    hashed = hashlib.sha1(speaker_id(filename).encode("utf-8")).hexdigest()
    percentage = (int(hashed, 16) % (MAX_NUM_WAVS_PER_CLASS + 1)) * (
        100.0 / MAX_NUM_WAVS_PER_CLASS
    )
    if percentage < validation_percentage:
        return "val"
    if percentage < validation_percentage + testing_percentage:
        return "test"
    return "train"


def check_disjoint(assignment: Mapping[str, Iterable[str]]) -> None:
    """Raise if any group appears in two splits (a guard against leakage bugs)."""
    seen: dict[str, str] = {}
    for split, groups in assignment.items():
        for g in set(groups):
            if g in seen and seen[g] != split:
                raise AssertionError(f"group {g!r} is in both {seen[g]!r} and {split!r}")
            seen[g] = split


# --- cross-validation ---------------------------------------------------------------------------

CV_PREFIX = "cv:"
DEFAULT_FOLDS = 5
CV_SEED = 0  # folds are fixed by the group set and K alone, so every training seed and point shares them


def parse_cv(protocol: str) -> int | None:
    """The fold count of a ``cv:K`` protocol spelling (K >= 3), or None for any other protocol.

    Raises:
      ValueError: ``cv:`` followed by anything but an integer of at least 3.
    """
    if not protocol.startswith(CV_PREFIX):
        return None
    k = protocol[len(CV_PREFIX):]
    if not k.isdigit() or int(k) < 3:
        raise ValueError(f"protocol: cv:K needs an integer K >= 3 (train, val and test folds), "
                         f"received protocol={protocol!r}")
    return int(k)


def cv_folds(
    group_labels: Mapping[str, np.ndarray], k: int, n_classes: int, seed: int = 0
) -> list[list[str]]:
    """``k`` disjoint folds of the groups (records, speakers), stratified by class where groups allow it.

    Greedy stratified group k-fold (as scikit-learn's ``StratifiedGroupKFold``): groups are visited
    from the most class-skewed to the least (a seeded shuffle breaks ties) and each joins the fold
    that keeps every class's share across folds most even, then the fold with fewest examples. On
    MIT-BIH a few records hold most S and F beats; a plain shuffle can put them all in one fold and
    leave every other fold's training split without them. Deterministic for (groups, k, seed).

    Raises:
      ValueError: fewer groups than folds.
    """
    names = sorted(group_labels)
    if len(names) < k:
        raise ValueError(f"cv:{k} needs at least {k} groups (records or speakers); {len(names)} are available")
    counts = np.stack([np.bincount(np.asarray(group_labels[g], np.int64), minlength=n_classes)[:n_classes]
                       for g in names]).astype(np.float64)
    totals = np.maximum(counts.sum(axis=0), 1.0)
    order = np.random.default_rng(seed).permutation(len(names))
    skew = np.array([np.std(counts[i] / max(counts[i].sum(), 1.0)) for i in range(len(names))])
    order = order[np.argsort(-skew[order], kind="stable")]
    fold_counts = np.zeros((k, n_classes))
    folds: list[list[str]] = [[] for _ in range(k)]
    for i in order:
        best, best_key = 0, None
        for f in range(k):
            trial = fold_counts.copy()
            trial[f] += counts[i]
            spread = float(np.mean(np.std(trial / totals, axis=0)))
            key = (spread, fold_counts[f].sum(), f)
            if best_key is None or key < best_key:
                best, best_key = f, key
        fold_counts[best] += counts[i]
        folds[best].append(names[i])
    return [sorted(f) for f in folds]


def cv_assignment(folds: Sequence[Sequence[str]], fold: int) -> dict[str, list[str]]:
    """Groups per split in fold ``fold``: test = that fold, val = the next, train = the other K − 2.

    Over the K folds every group is tested exactly once and validated exactly once.

    Raises:
      ValueError: ``fold`` outside 0..K−1.
    """
    k = len(folds)
    if not 0 <= fold < k:
        raise ValueError(f"fold must be in 0..{k - 1} for cv:{k}, received fold={fold}")
    out = {"test": sorted(folds[fold]), "val": sorted(folds[(fold + 1) % k]),
           "train": sorted(g for f in range(k) if f not in (fold, (fold + 1) % k) for g in folds[f])}
    check_disjoint(out)
    return out
