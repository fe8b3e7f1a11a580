"""Real datasets for the benchmarks: one ``load(task, data_dir, ...)`` entry point.

Tasks: ``mitdb_v`` / ``mitdb_aami`` (MIT-BIH beats), ``apnea`` (Apnea-ECG minutes),
``ptbxl`` (PTB-XL NORM vs diagnostic) and ``speech_commands`` (12-class KWS). ``load``
returns batched, prefetched ``tf.data.Dataset`` objects per split plus a
:class:`DatasetInfo`; ``load_arrays`` returns numpy ``(x, y, groups)`` per split for the
ECG tasks (what the training code consumes).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hyper_tinypw_tf.data.base import DatasetInfo, SplitArrays
from hyper_tinypw_tf.data.errors import (
    BadFileError,
    DataError,
    DatasetUnavailableError,
    EmptyDataDirError,
    MissingRecordsError,
)

TASKS = ("mitdb_v", "mitdb_aami", "apnea", "ptbxl", "speech_commands")
ECG_TASKS = TASKS[:4]

__all__ = [
    "ECG_TASKS", "TASKS", "BadFileError", "DataError", "DatasetInfo", "DatasetUnavailableError",
    "EmptyDataDirError", "MissingRecordsError", "SplitArrays", "load", "load_arrays",
]


def _array_loader(task: str) -> Callable[..., tuple[dict[str, SplitArrays], DatasetInfo]]:
    # Imported lazily so importing the package does not pull in every loader.
    if task in ("mitdb_v", "mitdb_aami"):
        from hyper_tinypw_tf.data import mitdb

        labels = "v" if task == "mitdb_v" else "aami"
        return lambda data_dir, **kw: mitdb.load_arrays(data_dir, labels=labels, **kw)
    if task == "apnea":
        from hyper_tinypw_tf.data import apnea

        return apnea.load_arrays
    if task == "ptbxl":
        from hyper_tinypw_tf.data import ptbxl

        return ptbxl.load_arrays
    raise ValueError(f"load_arrays supports the ECG tasks {ECG_TASKS}, got {task!r}")


def load_arrays(
    task: str, data_dir: str | Path, **kwargs: Any
) -> tuple[dict[str, SplitArrays], DatasetInfo]:
    """Numpy (x, y, groups) per split ("train", "val", "test") for an ECG task."""
    return _array_loader(task)(data_dir, **kwargs)


def load(
    task: str,
    data_dir: str | Path | None = None,
    batch_size: int = 64,
    shuffle_train: bool = False,
    seed: int = 0,
    **kwargs: Any,
) -> tuple[dict[str, Any], DatasetInfo]:
    """Batched, prefetched ``tf.data.Dataset`` per split, and the dataset's metadata.

    Splits stay unshuffled unless ``shuffle_train`` so ``info.groups`` lines up with the
    example order (the clustered bootstrap needs that alignment).
    """
    if task == "speech_commands":
        from hyper_tinypw_tf.data import speech_commands

        if kwargs.get("source", "auto") != "tfds":
            kwargs.update(shuffle_train=shuffle_train, seed=seed)
        return speech_commands.load(data_dir, batch_size=batch_size, **kwargs)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    if data_dir is None:
        raise ValueError(f"{task} needs data_dir (a download target if it is empty)")
    from hyper_tinypw_tf.data.ecg import to_dataset

    if task != "ptbxl":
        kwargs["seed"] = seed
    arrays, info = load_arrays(task, data_dir, **kwargs)
    datasets = {s: to_dataset(a, batch_size, shuffle=shuffle_train and s == "train", seed=seed)
                for s, a in arrays.items()}
    return datasets, info
