"""Google Speech Commands, 12-class keyword spotting with MFCC features in tf.data.

Classes: the ten core words, ``_silence_`` (1 s cuts of ``_background_noise_``) and
``_unknown_`` (every other word, subsampled to about an average core class so it does not
dominate). Splits are speaker-disjoint, chosen by a :class:`SplitRule` (``--kws_split``): the
list files when present, else the dataset's own SHA-1 speaker-hash rule, or a seeded shuffle of
speakers for a copy (like ../shared/data's) that holds one official partition only. Features
are computed inside the pipeline with ``tf.signal`` so they are identical in training and
evaluation and need no separate preprocessing step.
"""

from __future__ import annotations

import logging
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from hyper_tinypw_tf.data import cache, splits
from hyper_tinypw_tf.data.base import DatasetInfo
from hyper_tinypw_tf.data.errors import BadFileError, DatasetUnavailableError, EmptyDataDirError
from hyper_tinypw_tf.data.options import DEFAULT_OPTIONS, LoadOptions

log = logging.getLogger("hyper_tinypw_tf.data")

CORE_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SILENCE, UNKNOWN = "_silence_", "_unknown_"
CLASS_NAMES = (*CORE_WORDS, SILENCE, UNKNOWN)
NOISE_DIR = "_background_noise_"
SAMPLE_RATE = 16000
TFDS_NAME = "speech_commands"
TFDS_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"


@dataclass(frozen=True)
class FeatureConfig:
    """MFCC front end; the defaults are the DS-CNN (Hello Edge) setup: 49x10 from 1 s."""

    clip_samples: int = 16000
    window: int = 640  # 40 ms
    stride: int = 320  # 20 ms
    fft_length: int = 1024
    mel_bins: int = 40
    num_mfcc: int = 10
    lower_hz: float = 20.0
    upper_hz: float = 4000.0

    @property
    def output_shape(self) -> tuple[int, int, int]:
        frames = 1 + (self.clip_samples - self.window) // self.stride
        return (frames, self.num_mfcc, 1)


@dataclass(frozen=True)
class Augment:
    """Training-only augmentation: random time shift and mixed-in background noise."""

    time_shift_ms: float = 100.0
    background_volume: float = 0.1
    background_frequency: float = 0.8


def check_wav(path: Path) -> int:
    """Validate a WAV (16 kHz, mono, 16-bit PCM, body as long as the header says); return its frame count.

    The body is read too: a file cut short after a valid header would otherwise pass here and
    fail later inside TensorFlow's decoder, mid-epoch, without naming the file.
    """
    try:
        with wave.open(str(path), "rb") as w:
            rate, ch, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
            body = len(w.readframes(n)) if (rate, ch, width) == (SAMPLE_RATE, 1, 2) else 2 * n
    except (wave.Error, EOFError, OSError) as e:
        raise BadFileError(path, f"not a 16 kHz mono 16-bit PCM WAV ({e})") from None
    if (rate, ch, width) != (SAMPLE_RATE, 1, 2):
        raise BadFileError(
            path, f"expected 16 kHz mono 16-bit PCM, got {rate} Hz, {ch} channel(s), "
            f"{8 * width}-bit")
    if body != 2 * n:
        raise BadFileError(path, f"truncated: the header promises {n} samples, the file holds {body // 2}")
    return n


def read_wav(path: Path) -> np.ndarray:
    """Whole validated WAV as float32 in [-1, 1) (used for the noise bank)."""
    check_wav(path)
    with wave.open(str(path), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return (data.astype(np.float32) / 32768.0)


def mfcc(audio: tf.Tensor, cfg: FeatureConfig = FeatureConfig()) -> tf.Tensor:
    """(clip_samples,) float waveform -> (frames, num_mfcc, 1) log-mel MFCCs."""
    stft = tf.signal.stft(audio, frame_length=cfg.window, frame_step=cfg.stride,
                          fft_length=cfg.fft_length)
    mel_w = tf.signal.linear_to_mel_weight_matrix(
        cfg.mel_bins, cfg.fft_length // 2 + 1, SAMPLE_RATE, cfg.lower_hz, cfg.upper_hz)
    mel = tf.tensordot(tf.abs(stft), mel_w, 1)
    coeffs = tf.signal.mfccs_from_log_mel_spectrograms(tf.math.log(mel + 1e-6))
    return coeffs[..., : cfg.num_mfcc, tf.newaxis]


def list_clips(data_dir: Path) -> list[tuple[str, str]]:
    """(relative path, word) of every clip in the ``<word>/<speaker>_nohash_<n>.wav`` layout."""
    out = []
    for d in sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith("_")):
        out += [(f"{d.name}/{f.name}", d.name) for f in sorted(d.glob("*.wav"))]
    return out


SPLIT_KINDS = ("auto", "lists", "speaker_hash", "speakers", "all")
CV = "cv"  # not a --kws_split spelling: chosen by --protocol=cv:K (SplitRule.cross_validation)
SPLIT_HELP = (
    "auto (list files if present, else speaker_hash), lists, speaker_hash[:VAL,TEST] (the dataset's "
    "SHA-1 rule with these percentages, default 10,10), speakers[:VAL,TEST] (speakers shuffled with "
    "the seed and cut at these percentages: use this for a copy that holds one official partition, "
    "like ../shared/data's test speakers) or all (every clip is test data, for evaluation)"
)


@dataclass(frozen=True)
class SplitRule:
    """How clips are split into train/val/test; ``parse`` reads the ``--kws_split`` spelling.

    ``val``/``test`` are percentages of speakers (speaker_hash: of the hash range). Every rule
    keeps each speaker in one split.
    """

    kind: str = "auto"
    val: float = 10.0
    test: float = 10.0
    folds: int = 0  # kind "cv" (from ``protocol="cv:K"``): K speaker folds, and which one is tested
    fold: int = 0

    @classmethod
    def cross_validation(cls, protocol: str, fold: int) -> SplitRule:
        """The rule of fold ``fold`` of a ``cv:K`` protocol: speakers in K stratified folds (``splits.cv_folds``)."""
        k = splits.parse_cv(protocol)
        if k is None:
            raise ValueError(f"speech_commands: protocol must be cv:K or unset, received protocol={protocol!r}")
        if not 0 <= fold < k:
            raise ValueError(f"fold must be in 0..{k - 1} for {protocol}, received fold={fold}")
        return cls(CV, folds=k, fold=fold)

    def __post_init__(self) -> None:
        if self.kind == CV:
            return
        if self.kind not in SPLIT_KINDS:
            raise ValueError(f"kws_split: unknown rule {self.kind!r}; choose {SPLIT_HELP}")
        if min(self.val, self.test) < 0 or self.val + self.test >= 100:
            raise ValueError(
                f"kws_split: VAL and TEST must be >= 0 and leave some training speakers (VAL + TEST < 100), "
                f"received {self.val:g},{self.test:g}"
            )

    @classmethod
    def parse(cls, spec: str) -> SplitRule:
        """``kind`` or ``kind:VAL,TEST`` (percentages), e.g. ``speakers:15,15``."""
        kind, _, numbers = spec.strip().partition(":")
        if not numbers:
            return cls(kind)
        parts = numbers.split(",")
        try:
            val, test = (float(p) for p in parts) if len(parts) == 2 else (None, None)
        except ValueError:
            val = test = None
        if val is None or test is None or kind not in ("speaker_hash", "speakers"):
            raise ValueError(f"kws_split: expected {SPLIT_HELP}; received kws_split={spec!r}")
        return cls(kind, val, test)

    def __str__(self) -> str:
        if self.kind == CV:
            return f"{splits.CV_PREFIX}{self.folds} fold {self.fold}"
        return f"{self.kind}:{self.val:g},{self.test:g}" if self.kind in ("speaker_hash", "speakers") else self.kind

    @property
    def required(self) -> tuple[str, ...]:
        """Splits that must not come out empty: all three, but only test for ``all``."""
        return ("test",) if self.kind == "all" else splits.SPLITS


def has_lists(data_dir: Path) -> bool:
    """Whether the folder carries the dataset's validation/testing list files."""
    return (data_dir / "validation_list.txt").is_file() and (data_dir / "testing_list.txt").is_file()


def resolve(rule: SplitRule, data_dir: Path) -> SplitRule:
    """``auto`` made concrete for this folder (so messages and ``info.notes`` say what ran)."""
    if rule.kind != "auto":
        return rule
    return SplitRule("lists") if has_lists(data_dir) else SplitRule("speaker_hash", rule.val, rule.test)


def assign(clips: Sequence[tuple[str, str]], data_dir: Path, rule: SplitRule = SplitRule(),
           seed: int = 0) -> dict[str, list[tuple[str, str]]]:
    """Clips per split under ``rule`` (``auto`` resolved against ``data_dir``)."""
    rule = resolve(rule, data_dir)
    out: dict[str, list[tuple[str, str]]] = {s: [] for s in splits.SPLITS}
    if rule.kind == "lists":
        if not has_lists(data_dir):
            raise EmptyDataDirError(data_dir, "kws_split=lists needs validation_list.txt and testing_list.txt")
        val = set((data_dir / "validation_list.txt").read_text().split())
        test = set((data_dir / "testing_list.txt").read_text().split())
        for c in clips:
            out["val" if c[0] in val else "test" if c[0] in test else "train"].append(c)
    elif rule.kind == "speaker_hash":
        for c in clips:
            out[splits.which_set(c[0], rule.val, rule.test)].append(c)
    elif rule.kind == "speakers":
        train = 100.0 - rule.val - rule.test
        by_speaker = splits.split_groups([splits.speaker_id(c[0]) for c in clips], (train, rule.val, rule.test), seed)
        where = {g: split for split, groups in by_speaker.items() for g in groups}
        for c in clips:
            out[where[splits.speaker_id(c[0])]].append(c)
    elif rule.kind == CV:
        speakers = [splits.speaker_id(c[0]) for c in clips]
        labels: dict[str, list[int]] = {}
        for speaker, (_, word) in zip(speakers, clips, strict=True):
            labels.setdefault(speaker, []).append(CLASS_NAMES.index(word if word in CORE_WORDS else UNKNOWN))
        folds = splits.cv_folds({g: np.asarray(v) for g, v in labels.items()}, rule.folds, len(CLASS_NAMES),
                                splits.CV_SEED)
        where = {g: split for split, groups in splits.cv_assignment(folds, rule.fold).items() for g in groups}
        for c, speaker in zip(clips, speakers, strict=True):
            out[where[speaker]].append(c)
    else:  # all
        out["test"] = list(clips)
    return out


def check_nonempty(by_split: dict[str, list[tuple[str, str]]], rule: SplitRule, data_dir: Path) -> None:
    """Refuse a split the run needs that holds no core-word clip, naming it and the way out.

    An empty train split would otherwise surface as a shuffle-buffer error from tf.data.
    """
    total = sum(len(v) for v in by_split.values())
    for split in rule.required:
        core = sum(word in CORE_WORDS for _, word in by_split[split])
        if core == 0:
            sizes = ", ".join(f"{s} {len(by_split[s])}" for s in splits.SPLITS)
            raise EmptyDataDirError(
                data_dir,
                f"the {split} split of {total} clips is empty under kws_split={rule} (clips per split: {sizes}). "
                "A copy holding one official partition (the dataset's list files absent) needs "
                "--kws_split=speakers:VAL,TEST (e.g. speakers:15,15), or --kws_split=all to evaluate on it all",
            )


def _select(
    split_clips: list[tuple[str, str]], rng: np.random.Generator, noise: list[np.ndarray],
    noise_names: list[str], silence_ratio: float, unknown_ratio: float,
) -> tuple[list[str], list[int], list[float], list[int], list[str]]:
    """Paths, bank offsets, volumes, labels and groups for one split (balanced extras).

    Silence clips take the noise file (``noise:<name>``) as their group: the six noise
    recordings are shared by all splits, as in the reference KWS pipeline.
    """
    core = [c for c in split_clips if c[1] in CORE_WORDS]
    unknown = [c for c in split_clips if c[1] not in CORE_WORDS]
    per_class = len(core) / len(CORE_WORDS)
    n_unknown = min(len(unknown), int(round(per_class * unknown_ratio)))
    chosen = [unknown[i] for i in sorted(rng.choice(len(unknown), n_unknown, replace=False))]
    paths, offsets, vols, labels, groups = [], [], [], [], []
    for rel, word in core + chosen:
        paths.append(rel)
        offsets.append(-1)
        vols.append(1.0)
        labels.append(CLASS_NAMES.index(word if word in CORE_WORDS else UNKNOWN))
        groups.append(splits.speaker_id(rel))
    n_silence = int(round(per_class * silence_ratio)) if noise else 0
    starts = np.cumsum([0] + [len(n) for n in noise])
    for _ in range(n_silence):
        k = int(rng.integers(len(noise)))
        off = int(rng.integers(max(1, len(noise[k]) - SAMPLE_RATE)))
        paths.append("")
        offsets.append(int(starts[k]) + off)
        vols.append(float(rng.uniform(0.0, 1.0)))
        labels.append(CLASS_NAMES.index(SILENCE))
        groups.append(f"noise:{noise_names[k]}")
    return paths, offsets, vols, labels, groups


def _pipeline(
    data_dir: Path, paths: list[str], offsets: list[int], vols: list[float], labels: list[int],
    bank: tf.Tensor, cfg: FeatureConfig, augment: Augment | None, batch_size: int,
    shuffle: bool, seed: int,
) -> tf.data.Dataset:
    n = cfg.clip_samples
    full = [str(data_dir / p) if p else "" for p in paths]
    ds = tf.data.Dataset.from_tensor_slices((
        tf.constant(full, tf.string), tf.constant(offsets, tf.int64),
        tf.constant(vols, tf.float32), tf.constant(labels, tf.int32)))
    if shuffle and labels:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    bank_len = tf.cast(tf.shape(bank)[0], tf.int64)

    def audio(path: tf.Tensor, offset: tf.Tensor, vol: tf.Tensor) -> tf.Tensor:
        def from_file() -> tf.Tensor:
            wav = tf.audio.decode_wav(tf.io.read_file(path), desired_channels=1,
                                      desired_samples=n)
            return wav.audio[:, 0]

        def from_bank() -> tf.Tensor:
            return bank[offset: offset + n] * vol

        return tf.cond(offset >= 0, from_bank, from_file)

    def augmented(x: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
        # Stateless draws keyed by the element's own random number: seeded, so they run under
        # tf.config.experimental.enable_op_determinism (training.set_seed), and new each epoch.
        assert augment is not None

        def draw(k: int, low: float | int, high: float | int, dtype: tf.DType = tf.float32) -> tf.Tensor:
            return tf.random.stateless_uniform([], tf.stack([key, tf.constant(k, tf.int64)]), low, high, dtype)

        shift_max = int(augment.time_shift_ms * SAMPLE_RATE / 1000)
        if shift_max:
            s = draw(0, -shift_max, shift_max + 1, tf.int32)
            x = tf.pad(x, [[shift_max, shift_max]])[shift_max - s: shift_max - s + n]
        if augment.background_volume > 0 and bank_len > n:
            off = draw(1, 0, bank_len - n, tf.int64)
            vol = draw(2, 0.0, augment.background_volume)
            use = tf.cast(draw(3, 0.0, 1.0) < augment.background_frequency, tf.float32)
            x = tf.clip_by_value(x + use * vol * bank[off: off + n], -1.0, 1.0)
        return tf.ensure_shape(x, [n])

    def features(path, offset, vol, label, key=None):  # type: ignore[no-untyped-def]
        x = audio(path, offset, vol)
        if augment is not None:
            x = augmented(x, key)
        return mfcc(tf.ensure_shape(x, [n]), cfg), label

    if augment is not None:  # one seeded random number per element, drawn anew each epoch
        keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, keys)).map(lambda element, key: (*element, key))
    return ds.map(features, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(
        tf.data.AUTOTUNE)


def load_local(
    data_dir: str | Path,
    batch_size: int = 64,
    seed: int = 0,
    split: str | SplitRule = "auto",
    silence_ratio: float = 1.0,
    unknown_ratio: float = 1.0,
    features: FeatureConfig = FeatureConfig(),
    augment: Augment | None = None,
    shuffle_train: bool = False,
    options: LoadOptions = DEFAULT_OPTIONS,
) -> tuple[dict[str, tf.data.Dataset], DatasetInfo]:
    """Datasets of (MFCC, label) per split from a directory in the standard layout.

    ``split`` is a :class:`SplitRule` or its spelling (see ``SPLIT_HELP``); a split the rule
    needs that comes out empty raises :class:`EmptyDataDirError` before any TensorFlow work.
    ``augment`` applies to the train split only. ``silence_ratio``/``unknown_ratio`` size
    those classes relative to an average core class of the same split.
    """
    rule = split if isinstance(split, SplitRule) else SplitRule.parse(split)
    data_dir = Path(data_dir).expanduser()
    clips = list_clips(data_dir) if data_dir.is_dir() else []
    if not clips:
        raise EmptyDataDirError(data_dir, "no <word>/*.wav clips found")
    skipped: list[str] = []
    good = []
    for rel, word in cache.progress(clips, len(clips), "checking wavs", options.quiet):
        try:
            check_wav(data_dir / rel)
            good.append((rel, word))
        except BadFileError as e:
            if not options.skip_bad:
                raise
            skipped.append(str(e.path))
    noise, noise_names = [], []
    for p in sorted((data_dir / NOISE_DIR).glob("*.wav")):
        try:
            noise.append(read_wav(p))
            noise_names.append(p.stem)
        except BadFileError as e:
            if not options.skip_bad:
                raise
            skipped.append(str(e.path))
    if skipped:
        log.warning("speech_commands: skipped %d bad file(s): %s", len(skipped),
                    ", ".join(skipped))
    bank = tf.constant(np.concatenate(noise) if noise else np.zeros(0, np.float32))
    rule = resolve(rule, data_dir)
    by_split = assign(good, data_dir, rule, seed)
    check_nonempty(by_split, rule, data_dir)
    datasets: dict[str, tf.data.Dataset] = {}
    groups: dict[str, np.ndarray] = {}
    counts: dict[str, dict[str, int]] = {}
    for i, split in enumerate(splits.SPLITS):
        rng = np.random.default_rng([seed, i])
        paths, offsets, vols, labels, grp = _select(by_split[split], rng, noise, noise_names,
                                                    silence_ratio, unknown_ratio)
        is_train = split == "train"
        datasets[split] = _pipeline(data_dir, paths, offsets, vols, labels, bank, features,
                                    augment if is_train else None, batch_size,
                                    shuffle_train and is_train, seed)
        groups[split] = np.array(grp, dtype=str)
        c = np.bincount(np.array(labels, dtype=np.int64), minlength=len(CLASS_NAMES))
        counts[split] = {name: int(c[k]) for k, name in enumerate(CLASS_NAMES)}
    info = DatasetInfo(
        task="speech_commands", class_names=list(CLASS_NAMES),
        input_shape=features.output_shape, groups=groups, counts=counts,
        skipped=len(skipped), skipped_files=skipped,
        notes={"source": "local", "split_rule": rule.kind, "split": str(rule)},
    )
    return datasets, info


def load_tfds(
    data_dir: str | Path | None = None,
    batch_size: int = 64,
    options: LoadOptions = DEFAULT_OPTIONS,
    features: FeatureConfig = FeatureConfig(),
    timeout: float = 20.0,
) -> tuple[dict[str, tf.data.Dataset], DatasetInfo]:
    """Datasets from TFDS ``speech_commands`` (which already holds the 12 classes).

    TFDS examples carry no speaker id, so ``info.groups`` is empty for this source.
    """
    from hyper_tinypw_tf.data.wfdb_io import require_reachable, socket_timeout

    try:
        import tensorflow_datasets as tfds

        with socket_timeout(timeout):
            builder = tfds.builder(TFDS_NAME, data_dir=None if data_dir is None else str(data_dir))
            if options.download and not builder.is_prepared():
                require_reachable(TFDS_URL, timeout)
                builder.download_and_prepare()
            raw = {s: builder.as_dataset(split=t) for s, t in
                   (("train", "train"), ("val", "validation"), ("test", "test"))}
            names = builder.info.features["label"].names
    except Exception as e:  # network, missing optional deps, absent prepared data
        raise DatasetUnavailableError(TFDS_NAME, f"TFDS '{TFDS_NAME}' ({TFDS_URL})", e,
                                      TFDS_NAME) from None
    to_ours = tf.constant([CLASS_NAMES.index(n) for n in names], tf.int32)
    n = features.clip_samples

    def prep(ex):  # type: ignore[no-untyped-def]
        x = tf.cast(ex["audio"][:n], tf.float32) / 32768.0
        x = tf.pad(x, [[0, n - tf.shape(x)[0]]])
        return mfcc(tf.ensure_shape(x, [n]), features), tf.gather(to_ours, ex["label"])

    datasets = {s: d.map(prep, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
                .prefetch(tf.data.AUTOTUNE) for s, d in raw.items()}
    info = DatasetInfo(task="speech_commands", class_names=list(CLASS_NAMES),
                       input_shape=features.output_shape, notes={"source": "tfds"})
    return datasets, info


def load(
    data_dir: str | Path | None = None,
    source: str = "auto",
    options: LoadOptions = DEFAULT_OPTIONS,
    **kwargs: object,
) -> tuple[dict[str, tf.data.Dataset], DatasetInfo]:
    """Local layout when ``data_dir`` holds word folders (or ``source='local'``), else TFDS.

    ``options.cache_dir``/``use_cache`` do not apply (clips are decoded on the fly).
    """
    local = data_dir is not None and Path(data_dir).is_dir() and any(
        (Path(data_dir) / w).is_dir() for w in CORE_WORDS)
    if source == "local" or (source == "auto" and local):
        if data_dir is None:
            raise ValueError("source='local' needs data_dir")
        return load_local(data_dir, options=options, **kwargs)  # type: ignore[arg-type]
    if source not in ("auto", "tfds"):
        raise ValueError(f"source must be 'auto', 'local' or 'tfds', got {source!r}")
    tfds_kw = {k: v for k, v in kwargs.items() if k in ("batch_size", "features", "timeout")}
    return load_tfds(data_dir, options=options, **tfds_kw)  # type: ignore[arg-type]
