"""PTB-XL: lead II at 100 Hz (10 s, 1000 samples), NORM (0) vs abnormal (1).

A record is NORM when its diagnostic superclasses (``scp_statements.csv`` column
``diagnostic_class`` of the codes with ``diagnostic == 1``) are exactly {NORM}, abnormal when
they include any other superclass (MI, STTC, CD, HYP): the binary task the paper reports with
ROC-AUC and macro-F1. Folds follow
the dataset's recommendation: ``strat_fold`` 1-8 train, 9 val, 10 test (patient-disjoint).
Works with a partial ``ptbxl_database.csv``: rows without a file and files without a row
are skipped and counted in one log line.
"""

from __future__ import annotations

import ast
import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hyper_tinypw_tf.data import cache, ecg, splits, wfdb_io
from hyper_tinypw_tf.data.base import DatasetInfo, SplitArrays, class_counts
from hyper_tinypw_tf.data.errors import BadFileError, EmptyDataDirError
from hyper_tinypw_tf.data.options import DEFAULT_OPTIONS, LoadOptions

log = logging.getLogger("hyper_tinypw_tf.data")

CLASS_NAMES = ("NORM", "abnormal")
FOLDS = {"train": tuple(range(1, 9)), "val": (9,), "test": (10,)}
LENGTH = 1000
FS = 100


@dataclass
class Entry:
    """One labelled PTB-XL record from the database CSV."""

    ecg_id: int
    patient_id: str
    fold: int
    label: int
    base: Path


def diagnostic_classes(scp_csv: Path) -> dict[str, str]:
    """SCP code -> diagnostic superclass, for diagnostic statements only."""
    out = {}
    with open(scp_csv, newline="") as f:
        for row in csv.DictReader(f):
            code = row.get("") or row.get("Unnamed: 0") or next(iter(row.values()))
            diag = row.get("diagnostic", "").strip()
            if diag and float(diag) == 1.0 and row.get("diagnostic_class"):
                out[code] = row["diagnostic_class"]
    return out


def index(data_dir: Path) -> tuple[list[Entry], dict[str, int]]:
    """Labelled entries that have a file, plus counts of what was skipped and why."""
    db_csv = data_dir / "ptbxl_database.csv"
    diag = diagnostic_classes(data_dir / "scp_statements.csv")
    files = {p.relative_to(data_dir).with_suffix("").as_posix()
             for p in data_dir.glob("records100/*/*.hea")}
    entries: list[Entry] = []
    skipped = {"rows_without_file": 0, "files_without_row": 0, "no_diagnostic": 0}
    referenced: set[str] = set()
    with open(db_csv, newline="") as f:
        for row in csv.DictReader(f):
            rel = row["filename_lr"].strip()
            referenced.add(rel)
            if rel not in files:
                skipped["rows_without_file"] += 1
                continue
            codes = ast.literal_eval(row["scp_codes"])
            supers = {diag[c] for c in codes if c in diag}
            if not supers:
                skipped["no_diagnostic"] += 1
                continue
            entries.append(Entry(
                ecg_id=int(row["ecg_id"]),
                patient_id=str(int(float(row["patient_id"]))),
                fold=int(row["strat_fold"]),
                label=0 if supers == {"NORM"} else 1,
                base=data_dir / rel,
            ))
    skipped["files_without_row"] = len(files - referenced)
    return entries, skipped


def _lead_ii(base: Path, zscore: bool) -> np.ndarray:
    header = wfdb_io.check_record(base)
    if float(header.fs) != FS or header.sig_len != LENGTH:
        raise BadFileError(base.parent / f"{base.name}.hea",
                           f"expected {LENGTH} samples at {FS} Hz, got {header.sig_len} at "
                           f"{header.fs}")
    sig = wfdb_io.read_channel(base, wfdb_io.find_channel(base, header, ("II",)))
    return ecg.zscore(sig[None, :])[0] if zscore else sig


def load_arrays(
    data_dir: str | Path,
    zscore: bool = True,
    seed: int = 0,
    options: LoadOptions = DEFAULT_OPTIONS,
) -> tuple[dict[str, SplitArrays], DatasetInfo]:
    """Numpy (x, y, groups) per fold split; x is (N, 1000, 1, 1), groups are patient ids.

    ``info.notes`` holds the ``ecg_id`` and ``strat_fold`` of every example per split and
    the skip counts. The splits are PTB-XL's fixed ``strat_fold`` folds, so ``seed`` (taken, like
    every ECG loader, from ``data.load``) does not move them.
    """
    data_dir = Path(data_dir).expanduser()
    if not (data_dir / "ptbxl_database.csv").is_file():
        if not options.download:
            raise EmptyDataDirError(data_dir, "ptbxl_database.csv not found; pass "
                                              "LoadOptions(download=True) or the PTB-XL directory as data_dir")
        wfdb_io.download_physionet("ptb-xl", data_dir, "ptbxl", annotators=None,
                                   extra_files=["ptbxl_database.csv", "scp_statements.csv"])
    entries, skip_counts = index(data_dir)
    files = [data_dir / "ptbxl_database.csv", data_dir / "scp_statements.csv"]
    for e in entries:
        files += [e.base.with_name(e.base.name + ".hea"), e.base.with_name(e.base.name + ".dat")]

    def compute() -> dict[str, np.ndarray]:
        xs, keep, bad = [], [], []
        for i, e in enumerate(cache.progress(entries, len(entries), "ptbxl records", options.quiet)):
            try:
                xs.append(_lead_ii(e.base, zscore))
                keep.append(i)
            except BadFileError as err:
                if not options.skip_bad:
                    raise
                bad.append(str(err.path))
        return {"x": np.stack(xs) if xs else np.zeros((0, LENGTH), np.float32),
                "keep": np.array(keep, dtype=np.int64), "bad": np.array(bad, dtype=str)}

    arrays = cache.cached_arrays("ptbxl", {"zscore": zscore, "skip_bad": options.skip_bad, "v": 1},
                                 files, compute, options.cache_dir, options.use_cache)
    kept = [entries[i] for i in arrays["keep"]]
    bad = [str(b) for b in arrays["bad"]]
    log.info(
        "ptbxl: %d labelled records; skipped %d rows without a file, %d files without a row, "
        "%d records with no diagnostic statement, %d bad files",
        len(kept), skip_counts["rows_without_file"], skip_counts["files_without_row"],
        skip_counts["no_diagnostic"], len(bad),
    )
    out: dict[str, SplitArrays] = {}
    notes: dict[str, object] = {"skipped": {**skip_counts, "bad_files": len(bad)},
                                "ecg_id": {}, "strat_fold": {}}
    fold = np.array([e.fold for e in kept], dtype=np.int64)
    for split in splits.SPLITS:
        m = np.isin(fold, FOLDS[split])
        idx = np.flatnonzero(m)
        out[split] = SplitArrays(
            x=ecg.as_model_input(arrays["x"][idx].reshape(len(idx), LENGTH)),
            y=np.array([kept[i].label for i in idx], dtype=np.int64),
            groups=np.array([kept[i].patient_id for i in idx], dtype=str),
        )
        notes["ecg_id"][split] = np.array([kept[i].ecg_id for i in idx], dtype=np.int64)
        notes["strat_fold"][split] = fold[idx]
    names = list(CLASS_NAMES)
    info = DatasetInfo(
        task="ptbxl", class_names=names, input_shape=(LENGTH, 1, 1),
        groups={s: a.groups for s, a in out.items()},
        counts={s: class_counts(a.y, names) for s, a in out.items()},
        skipped=sum(skip_counts.values()) + len(bad), skipped_files=bad, notes=notes,
    )
    return out, info
