"""Real datasets for the benchmarks: one ``load(task, data_dir, options, ...)`` entry point.

Tasks: ``mitdb_v`` / ``mitdb_aami`` (MIT-BIH beats), ``apnea`` (Apnea-ECG minutes),
``ptbxl`` (PTB-XL NORM vs diagnostic) and ``speech_commands`` (12-class KWS). ``load``
returns batched, prefetched ``tf.data.Dataset`` objects per split plus a
:class:`DatasetInfo`; ``load_arrays`` returns numpy ``(x, y, groups)`` per split for the
ECG tasks (what the training code consumes).
"""

from __future__ import annotations

import functools
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
from hyper_tinypw_tf.data.options import DEFAULT_OPTIONS, LoadOptions, default_data_dir

TASKS = ("mitdb_v", "mitdb_aami", "apnea", "ptbxl", "speech_commands")
ECG_TASKS = TASKS[:4]

__all__ = [
    "ECG_TASKS", "TASKS", "BadFileError", "DataError", "DatasetInfo", "DatasetUnavailableError",
    "EmptyDataDirError", "LoadOptions", "MissingRecordsError", "SplitArrays", "default_data_dir", "load",
    "load_arrays",
]


def _array_loader(task: str) -> Callable[..., tuple[dict[str, SplitArrays], DatasetInfo]]:
    # Imported lazily so importing the package does not pull in every loader.
    if task in ("mitdb_v", "mitdb_aami"):
        from hyper_tinypw_tf.data import mitdb

        return functools.partial(mitdb.load_arrays, labels="v" if task == "mitdb_v" else "aami")
    if task == "apnea":
        from hyper_tinypw_tf.data import apnea

        return apnea.load_arrays
    if task == "ptbxl":
        from hyper_tinypw_tf.data import ptbxl

        return ptbxl.load_arrays
    raise ValueError(f"load_arrays supports the ECG tasks {ECG_TASKS}, got {task!r}")


def load_arrays(
    task: str, data_dir: str | Path, options: LoadOptions = DEFAULT_OPTIONS, **task_specific: Any
) -> tuple[dict[str, SplitArrays], DatasetInfo]:
    """Numpy (x, y, groups) per split ("train", "val", "test") for an ECG task.

    ``task_specific`` goes to the task's loader unchanged (``records``, ``seed``, ``rr_features``, ...).
    """
    return _array_loader(task)(data_dir, options=options, **task_specific)


def load(
    task: str,
    data_dir: str | Path | None = None,
    options: LoadOptions = DEFAULT_OPTIONS,
    batch_size: int = 64,
    shuffle_train: bool = False,
    seed: int = 0,
    **task_specific: Any,
) -> tuple[dict[str, Any], DatasetInfo]:
    """Batched, prefetched ``tf.data.Dataset`` per split, and the dataset's metadata.

    ``seed`` seeds the split and the train shuffle; ``task_specific`` goes to the task's loader
    unchanged, except ``protocol="cv:K"`` and ``fold`` for speech_commands, which pick the fold's
    speaker split (``SplitRule.cross_validation``). Splits stay unshuffled unless ``shuffle_train``
    so ``info.groups`` lines up with the example order (the clustered bootstrap needs that alignment).
    """
    if task == "speech_commands":
        from hyper_tinypw_tf.data import speech_commands

        protocol, fold = task_specific.pop("protocol", None), int(task_specific.pop("fold", 0))
        if protocol is not None:  # cv:K over speakers: the fold's split rule replaces --kws_split
            task_specific["split"] = speech_commands.SplitRule.cross_validation(str(protocol), fold)
        datasets, info = speech_commands.load(data_dir, options=options, batch_size=batch_size,
                                              shuffle_train=shuffle_train, seed=seed, **task_specific)
        if protocol is not None:
            info.notes.update(protocol=protocol, fold=fold)
        return datasets, info
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    if data_dir is None:
        raise ValueError(f"{task} needs data_dir (a download target if it is empty)")
    from hyper_tinypw_tf.data.ecg import to_dataset

    arrays, info = load_arrays(task, data_dir, options, seed=seed, **task_specific)
    datasets = {s: to_dataset(a, batch_size, shuffle=shuffle_train and s == "train", seed=seed)
                for s, a in arrays.items()}
    return datasets, info
