"""Return types shared by the loaders: arrays per split and a small metadata record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np


class SplitArrays(NamedTuple):
    """One split as numpy arrays; ``groups[i]`` is the record/speaker of example ``i``."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray


@dataclass
class DatasetInfo:
    """What a trainer/evaluator needs besides the tensors.

    ``groups[split]`` is aligned with the example order of that split's dataset (as long as
    it is not shuffled), which the clustered bootstrap in :mod:`hyper_tinypw_tf.evaluation`
    relies on.
    """

    task: str
    class_names: list[str]
    input_shape: tuple[int, ...]
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped: int = 0
    skipped_files: list[str] = field(default_factory=list)
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def class_counts(y: np.ndarray, class_names: list[str]) -> dict[str, int]:
    """Per-class example counts of a label vector."""
    c = np.bincount(np.asarray(y, dtype=np.int64), minlength=len(class_names))
    return {name: int(c[i]) for i, name in enumerate(class_names)}
