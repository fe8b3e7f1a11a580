"""MIT-BIH Arrhythmia: beat-centred windows from lead MLII, AAMI or V-vs-rest labels.

Protocols: ``inter_patient`` (de Chazal 2004: DS1 -> train/val, DS2 -> test),
``patient_wise`` (records shuffled into train/val/test) and ``cv:K`` (records in K stratified
folds; fold ``fold`` tests one, validates on the next and trains on the rest, so over the K
folds every record is tested once). Paced records are excluded by AAMI practice in all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from hyper_tinypw_tf.data import cache, ecg, splits, wfdb_io
from hyper_tinypw_tf.data.base import DatasetInfo, SplitArrays, class_counts
from hyper_tinypw_tf.data.errors import EmptyDataDirError, MissingRecordsError
from hyper_tinypw_tf.data.options import DEFAULT_OPTIONS, LoadOptions

log = logging.getLogger("hyper_tinypw_tf.data")

DS1 = ("101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122", "124",
       "201", "203", "205", "207", "208", "209", "215", "220", "223", "230")
DS2 = ("100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210", "212",
       "213", "214", "219", "221", "222", "228", "231", "232", "233", "234")
PACED = ("102", "104", "107", "217")
NATIVE_FS = 360

AAMI_CLASSES = ("N", "S", "V", "F", "Q")
# ANSI/AAMI EC57 grouping of MIT-BIH beat symbols; any other symbol is not a beat.
AAMI_MAP = {
    "N": "N", "L": "N", "R": "N", "e": "N", "j": "N",
    "A": "S", "a": "S", "J": "S", "S": "S",
    "V": "V", "E": "V",
    "F": "F",
    "/": "Q", "f": "Q", "Q": "Q",
}
V_CLASSES = ("rest", "V")
LABEL_SETS = ("aami", "v")
PROTOCOLS = ("inter_patient", "patient_wise", "cv:K")
LEAD = ("MLII",)
MIN_POOL_RECORDS = len(splits.SPLITS)  # patient_wise: fewer leave val or test empty (the CLI refuses them)


def aami_labels(symbols: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(positions of beat annotations, AAMI class index) for a list of annotation symbols."""
    keep = [i for i, s in enumerate(symbols) if s in AAMI_MAP]
    cls = np.array([AAMI_CLASSES.index(AAMI_MAP[symbols[i]]) for i in keep], dtype=np.int8)
    return np.array(keep, dtype=np.int64), cls


def record_windows(
    data_dir: Path,
    record: str,
    window: int = 256,
    fs: int | None = None,
    zscore: bool = True,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> dict[str, np.ndarray]:
    """One record's beat windows ``x`` (N, window), AAMI index ``aami``, V flag ``v`` and ``rr`` (N, 3).

    ``rr`` holds each beat's pre-RR, post-RR and local-mean RR over the record's mean RR
    (:func:`ecg.rr_features`), computed from the same beat annotations as the windows.

    Cached per record, so changing the split never repeats the signal processing.
    """
    base = Path(data_dir) / record
    # Key on the files themselves so a cache hit needs no header parsing (wfdb's is slow);
    # any change to them (e.g. truncation) changes the key and re-runs the validation below.
    files = sorted(p for p in base.parent.glob(f"{record}.*") if p.suffix != ".tmp")
    opts = {"window": window, "fs": fs, "zscore": zscore, "lead": LEAD, "v": 2}

    def compute() -> dict[str, np.ndarray]:
        header = wfdb_io.check_record(base, annotation="atr")
        channel = wfdb_io.find_channel(base, header, LEAD)
        sig = wfdb_io.read_channel(base, channel)
        samples, symbols = wfdb_io.read_annotation(base, "atr")
        keep, cls = aami_labels(symbols)
        centres = samples[keep]
        fs_in = float(header.fs)
        if fs is not None and fs != fs_in:
            sig = ecg.resample(sig, fs_in, fs)
            centres = np.round(centres * (fs / fs_in)).astype(np.int64)
        x = ecg.centred_windows(sig, centres, window)
        if zscore:
            x = ecg.zscore(x)
        v = np.isin([symbols[i] for i in keep], ["V", "E"]).astype(np.int8)
        return {"x": x, "aami": cls, "v": v, "rr": ecg.rr_features(centres)}

    return cache.cached_arrays("mitdb", {**opts, "record": record}, files, compute,
                               cache_dir, use_cache)


def _ensure_records(data_dir: Path, download: bool, task: str) -> list[str]:
    present = wfdb_io.list_records(data_dir)
    if present:
        return present
    if not download:
        raise EmptyDataDirError(
            data_dir, "no MIT-BIH records (*.hea) found; pass LoadOptions(download=True) or another data_dir"
        )
    wfdb_io.download_physionet("mitdb", data_dir, task)
    present = wfdb_io.list_records(data_dir)
    if not present:
        raise EmptyDataDirError(data_dir, "download finished but no records (*.hea) appeared")
    return present


def _pool(present: Sequence[str], data_dir: Path, records: Sequence[str] | None) -> list[str]:
    """The patient-wise and cv record pool: ``records``, else every present DS1/DS2 record (no paced ones)."""
    pool = list(records) if records is not None else [r for r in present if r in set(DS1 + DS2)]
    missing = [r for r in pool if r not in set(present)]
    if missing:
        raise MissingRecordsError("mitdb", data_dir, missing)
    return pool


def assign_records(
    present: Sequence[str],
    protocol: str,
    data_dir: Path,
    seed: int = 0,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    val_fraction: float = 0.2,
    records: Sequence[str] | None = None,
    fold: int = 0,
    record_labels: Callable[[str], np.ndarray] | None = None,
) -> dict[str, list[str]]:
    """Records per split for a protocol; raises if inter_patient lacks DS1/DS2 records.

    ``cv:K`` folds are stratified by ``record_labels`` (a record's beat labels) and do not depend
    on ``seed``: every training seed sees the same folds, so two models can be paired fold by fold.
    """
    k = splits.parse_cv(protocol)
    if k is not None:
        pool = _pool(present, data_dir, records)
        n_classes = len(AAMI_CLASSES)
        labels = {r: (record_labels(r) if record_labels else np.zeros(0, np.int64)) for r in pool}
        out = splits.cv_assignment(splits.cv_folds(labels, k, n_classes, splits.CV_SEED), fold)
    elif protocol == "inter_patient":
        missing = [r for r in DS1 + DS2 if r not in set(present)]
        if missing:
            raise MissingRecordsError(
                "mitdb", data_dir, missing,
                "inter_patient needs all of DS1 and DS2; use protocol='patient_wise' instead",
            )
        ds1 = splits.split_groups(DS1, (1.0 - val_fraction, val_fraction, 0.0), seed)
        out = {"train": ds1["train"], "val": ds1["val"], "test": list(DS2)}
    elif protocol == "patient_wise":
        out = splits.split_groups(_pool(present, data_dir, records), fractions, seed)
    else:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    splits.check_disjoint(out)
    return out


def load_arrays(
    data_dir: str | Path,
    labels: str = "aami",
    protocol: str = "patient_wise",
    window: int = 256,
    fs: int | None = None,
    zscore: bool = True,
    seed: int = 0,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    val_fraction: float = 0.2,
    records: Sequence[str] | None = None,
    options: LoadOptions = DEFAULT_OPTIONS,
    rr_features: bool = False,
    fold: int = 0,
    beat_template: bool = False,
) -> tuple[dict[str, SplitArrays], DatasetInfo]:
    """Numpy (x, y, groups) per split; x is (N, window, 1, 1) float32, groups are record ids.

    ``records`` restricts the patient-wise or cv pool (e.g. a few records for a quick run);
    ``fold`` picks the fold of a ``cv:K`` protocol.
    ``beat_template`` adds each beat minus its record's median beat as a channel
    (``ecg.with_template_channel``); ``rr_features`` adds the three RR features as constant channels:
    x becomes (N, window, 1, 1 + beat_template + 3·rr_features).
    """
    if labels not in LABEL_SETS:
        raise ValueError(f"labels must be one of {LABEL_SETS}, got {labels!r}")
    data_dir = Path(data_dir).expanduser()
    task = "mitdb_aami" if labels == "aami" else "mitdb_v"
    present = _ensure_records(data_dir, options.download, task)
    key = "aami" if labels == "aami" else "v"

    def windows(rec: str) -> dict[str, np.ndarray]:
        return record_windows(data_dir, rec, window, fs, zscore, options.cache_dir, options.use_cache)

    assignment = assign_records(present, protocol, data_dir, seed, fractions, val_fraction,
                                records, fold, lambda rec: windows(rec)[key])
    class_names = list(AAMI_CLASSES if labels == "aami" else V_CLASSES)
    parts, skipped = ecg.load_split_records(assignment, windows, "mitdb", options.quiet, options.skip_bad)
    channels = 1 + int(beat_template) + (len(ecg.RR_FEATURES) if rr_features else 0)

    def inputs(d: dict[str, np.ndarray]) -> np.ndarray:
        x = ecg.with_template_channel(d["x"]) if beat_template else d["x"]
        return ecg.with_rr_channels(x, d["rr"]) if rr_features else x

    parts = {s: [(r, {**d, "x": inputs(d)}) for r, d in p] for s, p in parts.items()}
    out = {s: ecg.stack_records(parts[s], key, window, channels) for s in splits.SPLITS}
    info = DatasetInfo(
        task=task,
        class_names=class_names,
        input_shape=(window, 1, channels),
        groups={s: a.groups for s, a in out.items()},
        counts={s: class_counts(a.y, class_names) for s, a in out.items()},
        skipped=len(skipped),
        skipped_files=skipped,
        notes={"protocol": protocol, **({"fold": fold} if splits.parse_cv(protocol) else {}),
               "records": {s: [r for r, _ in parts[s]] for s in parts},
               "fs": fs or NATIVE_FS, "rr_features": rr_features, "beat_template": beat_template},
    )
    return out, info
