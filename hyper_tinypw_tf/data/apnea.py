"""Apnea-ECG: one-minute windows (100 Hz, 6000 samples) labelled A (apnea) or N.

Labels come from the per-minute ``.apn`` annotations of the learning set (a01-a20,
b01-b05, c01-c10); splits are by record so no recording contributes to two splits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hyper_tinypw_tf.data import cache, ecg, splits, wfdb_io
from hyper_tinypw_tf.data.base import DatasetInfo, SplitArrays, class_counts
from hyper_tinypw_tf.data.errors import BadFileError, EmptyDataDirError
from hyper_tinypw_tf.data.options import DEFAULT_OPTIONS, LoadOptions

log = logging.getLogger("hyper_tinypw_tf.data")

LEARNING_SET = tuple(
    [f"a{i:02d}" for i in range(1, 21)]
    + [f"b{i:02d}" for i in range(1, 6)]
    + [f"c{i:02d}" for i in range(1, 11)]
)
CLASS_NAMES = ("N", "A")
FS = 100
MINUTE = 60 * FS
ANN_EXT = "apn"


def record_minutes(
    data_dir: Path,
    record: str,
    zscore: bool = True,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> dict[str, np.ndarray]:
    """Minute windows ``x`` (N, 6000) and labels ``y`` (1 = apnea) of one record.

    A minute whose window would run past the end of the signal is dropped (the recordings
    end mid-minute), as is any annotation other than A/N.
    """
    base = Path(data_dir) / record
    files = sorted(base.parent.glob(f"{record}.*"))

    def compute() -> dict[str, np.ndarray]:
        header = wfdb_io.check_record(base, annotation=ANN_EXT)
        if float(header.fs) != FS:
            raise BadFileError(base.parent / f"{record}.hea", f"expected {FS} Hz, got {header.fs}")
        channel = 0 if header.n_sig == 1 else wfdb_io.find_channel(base, header, ("ECG",))
        sig = wfdb_io.read_channel(base, channel)
        samples, symbols = wfdb_io.read_annotation(base, ANN_EXT)
        keep = [i for i, s in enumerate(symbols)
                if s in CLASS_NAMES and samples[i] + MINUTE <= len(sig)]
        starts = samples[keep]
        x = sig[starts[:, None] + np.arange(MINUTE)[None, :]] if keep else np.zeros((0, MINUTE))
        x = x.astype(np.float32)
        if zscore and len(x):
            x = ecg.zscore(x)
        y = np.array([CLASS_NAMES.index(symbols[i]) for i in keep], dtype=np.int8)
        return {"x": x, "y": y}

    return cache.cached_arrays("apnea", {"zscore": zscore, "record": record, "v": 1}, files,
                               compute, cache_dir, use_cache)


def _ensure_records(data_dir: Path, download: bool) -> list[str]:
    present = [r for r in wfdb_io.list_records(data_dir) if r in LEARNING_SET]
    if present:
        return present
    if not download:
        raise EmptyDataDirError(
            data_dir, "no Apnea-ECG learning-set records (a01..c10 .hea) found; "
            "pass LoadOptions(download=True) or another data_dir")
    wfdb_io.download_physionet("apnea-ecg", data_dir, "apnea", records=list(LEARNING_SET),
                               annotators=[ANN_EXT])
    present = [r for r in wfdb_io.list_records(data_dir) if r in LEARNING_SET]
    if not present:
        raise EmptyDataDirError(data_dir, "download finished but no records appeared")
    return present


def load_arrays(
    data_dir: str | Path,
    zscore: bool = True,
    seed: int = 0,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    records: Sequence[str] | None = None,
    options: LoadOptions = DEFAULT_OPTIONS,
) -> tuple[dict[str, SplitArrays], DatasetInfo]:
    """Numpy (x, y, groups) per split; x is (N, 6000, 1, 1), groups are record names."""
    data_dir = Path(data_dir).expanduser()
    present = _ensure_records(data_dir, options.download)
    pool = list(records) if records is not None else present
    assignment = splits.split_groups(pool, fractions, seed)
    splits.check_disjoint(assignment)
    parts, skipped = ecg.load_split_records(
        assignment, lambda rec: record_minutes(data_dir, rec, zscore, options.cache_dir, options.use_cache), "apnea",
        options.quiet, options.skip_bad,
    )
    names = list(CLASS_NAMES)
    out = {s: ecg.stack_records(parts[s], "y", MINUTE) for s in splits.SPLITS}
    info = DatasetInfo(
        task="apnea", class_names=names, input_shape=(MINUTE, 1, 1),
        groups={s: a.groups for s, a in out.items()},
        counts={s: class_counts(a.y, names) for s, a in out.items()},
        skipped=len(skipped), skipped_files=skipped,
        notes={"records": {s: [r for r, _ in parts[s]] for s in parts}},
    )
    return out, info
