"""Signal helpers shared by the ECG loaders: resampling, windowing, z-scoring, tf.data."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction

import numpy as np
import tensorflow as tf

from hyper_tinypw_tf.data import cache, splits
from hyper_tinypw_tf.data.base import SplitArrays
from hyper_tinypw_tf.data.errors import BadFileError

log = logging.getLogger(__name__)
RecordArrays = dict[str, np.ndarray]


def resample(signal: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Polyphase resampling (anti-aliased) from ``fs_in`` to ``fs_out``."""
    if fs_out == fs_in:
        return signal
    from scipy.signal import resample_poly

    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    return resample_poly(signal, ratio.numerator, ratio.denominator).astype(np.float32)


def centred_windows(signal: np.ndarray, centres: np.ndarray, length: int) -> np.ndarray:
    """Windows of ``length`` samples centred on each index; edges are padded with edge values.

    Padding (rather than dropping edge beats) keeps one window per annotation, so window
    counts equal annotation counts exactly.
    """
    padded = np.pad(signal, (length, length), mode="edge")
    starts = np.asarray(centres, dtype=np.int64) - length // 2 + length
    idx = starts[:, None] + np.arange(length)[None, :]
    return padded[idx].astype(np.float32)


def zscore(windows: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Per-window standardisation: removes baseline offset and per-patient gain differences."""
    mean = windows.mean(axis=1, keepdims=True)
    std = windows.std(axis=1, keepdims=True)
    return ((windows - mean) / (std + eps)).astype(np.float32)


def as_model_input(windows: np.ndarray) -> np.ndarray:
    """(N, T) or (N, T, C) -> (N, T, 1, C) float32: NHWC with W=1 and leads/features as channels."""
    x = np.ascontiguousarray(windows, dtype=np.float32)
    return x[:, :, None, None] if x.ndim == 2 else x[:, :, None, :]


RR_FEATURES = ("pre_rr", "post_rr", "local_rr")


def rr_features(beats: np.ndarray, local_beats: int = 10) -> np.ndarray:
    """(N, 3) pre-RR, post-RR and local-mean RR of each beat, each over the record's mean RR.

    ``beats`` are the sample positions of a record's beats in time order. Inter-patient beat
    classification leans on these (de Chazal et al., IEEE TBME 51(7), 2004): an ectopic beat
    comes early (pre-RR < 1) and is often followed by a pause (post-RR > 1). Dividing by the
    record's mean RR removes each patient's heart rate, so the features compare across patients;
    as ratios of sample counts they do not depend on the sample rate. The local mean averages the
    pre-RR of the ``local_beats`` beats centred on each beat. The first beat takes its post-RR as
    pre-RR and the last its pre-RR as post-RR; a record with fewer than two beats gets ones.
    """
    beats = np.asarray(beats, np.float64)
    n = len(beats)
    if n < 2:
        return np.ones((n, 3), np.float32)
    if np.any(np.diff(beats) < 0):
        raise ValueError("rr_features: beat positions must be in time order")
    rr = np.diff(beats)
    pre = np.concatenate([rr[:1], rr])
    post = np.concatenate([rr, rr[-1:]])
    sums = np.concatenate([[0.0], np.cumsum(pre)])
    lo = np.clip(np.arange(n) - local_beats // 2, 0, n)
    hi = np.clip(lo + local_beats, 0, n)
    lo = np.clip(hi - local_beats, 0, n)
    local = (sums[hi] - sums[lo]) / (hi - lo)
    return (np.stack([pre, post, local], axis=1) / rr.mean()).astype(np.float32)


def with_rr_channels(windows: np.ndarray, rr: np.ndarray) -> np.ndarray:
    """(N, T) or (N, T, C) windows and (N, 3) RR features -> (N, T, C + 3): the RR values as constant channels.

    One input tensor keeps the model a chain that the exporter lowers like any other (a second
    model input would branch the graph); the stem conv reads the RR channels at every position.
    """
    if len(windows) != len(rr):
        raise ValueError(f"with_rr_channels: {len(windows)} windows but {len(rr)} RR feature rows")
    waves = np.asarray(windows, np.float32)
    waves = waves[:, :, None] if waves.ndim == 2 else waves
    tiled = np.broadcast_to(np.asarray(rr, np.float32)[:, None, :], (*waves.shape[:2], rr.shape[1]))
    return np.concatenate([waves, tiled], axis=2)


def with_template_channel(windows: np.ndarray) -> np.ndarray:
    """(N, T) beats of one record -> (N, T, 2): each beat, and the beat minus the record's median beat.

    Inter-patient beat classification fails on morphology that is normal for one patient and not
    for another (a bundle branch block widens every beat of its record). Most beats of a record are
    its own normal beats, so their median is that patient's template, and the difference channel
    shows how a beat departs from it: the per-record normalization of the inter-patient literature
    (features relative to the patient's average beat). A device keeps a running median template.
    """
    waves = np.asarray(windows, np.float32)
    template = np.median(waves, axis=0, keepdims=True) if len(waves) else waves
    return np.stack([waves, waves - template], axis=2)


def to_dataset(
    arrays: SplitArrays,
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batched, prefetched dataset of (x, y); unshuffled by default so groups stay aligned."""
    ds = tf.data.Dataset.from_tensor_slices((arrays.x, arrays.y.astype(np.int32)))
    if shuffle:
        ds = ds.shuffle(len(arrays.y), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def stack_records(
    parts: list[tuple[str, dict[str, np.ndarray]]], y_key: str, length: int, channels: int = 1
) -> SplitArrays:
    """Concatenate per-record arrays into one split, with the record id as each row's group."""
    if not parts:
        return SplitArrays(np.zeros((0, length, 1, channels), np.float32), np.zeros(0, np.int64),
                           np.zeros(0, dtype="<U8"))
    return SplitArrays(
        x=as_model_input(np.concatenate([d["x"] for _, d in parts])),
        y=np.concatenate([d[y_key] for _, d in parts]).astype(np.int64),
        groups=np.concatenate([np.full(len(d[y_key]), r) for r, d in parts]),
    )


def load_split_records(
    assignment: Mapping[str, Sequence[str]],
    load_one: Callable[[str], RecordArrays],
    what: str,
    quiet: bool,
    skip_bad: bool,
) -> tuple[dict[str, list[tuple[str, RecordArrays]]], list[str]]:
    """Load every record of every split with a progress bar; bad files raise, or are skipped and listed."""
    todo = [(s, r) for s in splits.SPLITS for r in assignment[s]]
    parts: dict[str, list[tuple[str, RecordArrays]]] = {s: [] for s in splits.SPLITS}
    skipped: list[str] = []
    for split, record in cache.progress(todo, len(todo), f"{what} records", quiet):
        try:
            parts[split].append((record, load_one(record)))
        except BadFileError as error:
            if not skip_bad:
                raise
            skipped.append(str(error.path))
    if skipped:
        log.warning("%s: skipped %d bad record(s): %s", what, len(skipped), ", ".join(skipped))
    return parts, skipped
