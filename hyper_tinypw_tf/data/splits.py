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
