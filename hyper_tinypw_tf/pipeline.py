"""The main job and ``evaluate``: a hyper model beside the stored CNN of the same budget.

``MainJob.run`` trains the preset's hyper model and its ``stored_backbone`` (the stored CNN of the
same byte budget; for a preset without a budget, the hyper model's stored twin) with the same data,
seed and schedule, fine-tunes both with QAT, exports both
(stored → folded ``.tflite``, hyper → hyper ``.tflite``), runs both files in the TFLM interpreter
and prints one side-by-side table (:func:`comparison_table`) whose differences carry a paired
clustered-bootstrap CI (:func:`hyper_tinypw_tf.evaluation.paired_difference`).

Every stage writes one file, atomically (a temporary name, then a rename), and is skipped when
that file exists, so a killed run started again resumes at the first missing file; training
itself resumes from its last finished epoch (``training.fit``'s checkpoints). Layout::

    out/stored/model.keras  model_qat.h5  model_folded.tflite  tflm.npz
    out/hyper/ model.keras  model_qat.h5  model_hyper.tflite   tflm.npz
    out/twin/  model.keras          (with --distill at a budget preset: the teacher, the stored twin)
    out/summary.json

Like ``cli.py`` this module reaches across packages (``export``, the TFLM interpreter) and
imports them lazily; ``cli.py`` parses flags, hands data loading here as a callable, and imports
this module lazily too.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hyper_tinypw_tf import atomic
from hyper_tinypw_tf._keras import keras

SIDES = ("stored", "hyper")
TWIN = "twin"  # the hyper model's backbone with stored PW layers: the distillation teacher
FILE_FORMAT = {"stored": "folded", "hyper": "hyper"}
HEADLINE = ("macro_f1", "balanced_accuracy", "roc_auc")
SPLITS = ("test", "val", "all")
# A clustered bootstrap over fewer groups resamples a handful of records: the percentile interval collapses onto
# whichever record dominates (the README's old default printed [0.500, 1.000] from 3 records).
MIN_TRUSTED_GROUPS = 10
LoadData = Callable[[], tuple[dict[str, Any], Any]]


@dataclass(frozen=True)
class RunConfig:
    """Everything the main job needs besides the data: the same schedule for both models."""

    preset: str = "64k"
    epochs: int = 4  # the maximum: early stopping on validation macro-F1 usually ends training first
    qat_epochs: int = 1
    learning_rate: float = 2e-3  # the peak of the cosine schedule
    patience: int = 3
    schedule: str = "cosine"  # training.SCHEDULES: linear warmup, then cosine decay to 0 at the last epoch
    warmup_epochs: int = 1
    monitor: str = "val_macro_f1"  # training.MONITORS
    seed: int = 0
    n_boot: int = 1000
    mode: str = "boot"
    sram_budget: int | None = None  # mode "budget": bytes of SRAM for cached kernels (hyper.budget_modes)
    loss: str = "ce"
    focal_gamma: float = 2.0
    class_weights: bool = True
    class_weight_power: float = 0.5  # training.balanced_class_weight: 1 = inverse frequency, 0.5 = its square root
    distill: bool = False
    teacher: str | None = None
    distill_alpha: float = 0.7
    distill_temperature: float = 2.0
    distribute: str = "none"  # training.DISTRIBUTE: the tf.distribute strategy the float models train under


def fit_logging(epochs: int) -> tuple[int, list[Any]]:
    """Keras ``verbose`` and callbacks: progress bars on a terminal, one line per epoch in a file or a pipe."""
    if sys.stdout.isatty():
        return 1, []
    return 0, [EpochLine(epochs)]


class EpochLine(keras.callbacks.Callback):
    """One line per finished epoch, flushed (a log file or pipe gets no progress-bar redraws).

    ``epochs`` is the run's total: ``training.fit`` calls Keras once per epoch, so Keras' own count
    is not the run's.
    """

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self._start = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        values = " ".join(f"{k}={v:.4f}" for k, v in (logs or {}).items())
        seconds = time.monotonic() - self._start
        print(f"epoch {epoch + 1}/{self.epochs}: {values} ({seconds:.0f} s)", flush=True)


# --- models ---------------------------------------------------------------------------------


def fit_model(
    model: Any, datasets: dict[str, Any], info: Any, config: RunConfig, epochs: int, learning_rate: float,
    checkpoint_dir: str | Path | None, teacher: Any = None,
) -> dict[str, Any]:
    """``training.fit`` with the run's switches: loss (CE or focal), class weights, distillation from ``teacher``,
    schedule and early-stopping monitor. Returns the run's ``training.learning_curve``.

    A short run (QAT's one or two epochs) keeps a constant rate: a warmup would take all of it.
    """
    from hyper_tinypw_tf import losses, training

    verbose, log_callbacks = fit_logging(epochs)
    warmup = config.warmup_epochs if epochs > config.warmup_epochs + 1 else 0
    train_config = training.TrainConfig(
        epochs=epochs, learning_rate=learning_rate, patience=config.patience, seed=config.seed,
        checkpoint_dir=None if checkpoint_dir is None else str(checkpoint_dir), verbose=verbose,
        schedule=config.schedule if epochs > 2 else "constant", warmup_epochs=warmup, monitor=config.monitor,
    )
    weights = None
    if config.class_weights:
        weights = training.balanced_class_weight(inputs_and_labels(datasets["train"])[1], info.num_classes,
                                                 config.class_weight_power)
    target = model
    if teacher is not None:
        target = losses.Distiller(model, teacher, config.distill_alpha, config.distill_temperature)
    history = training.fit(target, datasets["train"], datasets["val"], train_config, class_weight=weights,
                           loss=losses.get(config.loss, config.focal_gamma), callbacks=log_callbacks)
    return training.learning_curve(history, train_config)


def build_model(preset: str, info: Any, train: Iterable[Any], side: str, generator: dict | None = None) -> Any:
    """A new model for ``side`` ("stored", "hyper" or "twin") on the dataset's input shape.

    "stored" is the preset's stored CNN of the same budget (its ``stored_backbone``), "twin" the
    hyper model's own backbone with stored PW layers. Input normalization is fitted on ``train``.
    ``generator`` replaces the preset's generator spec of a hyper model (the frontier's strategy and
    initialization points).
    """
    from hyper_tinypw_tf import models

    if side == TWIN:
        backbone = replace(models.get_preset(preset).backbone, input_shape=tuple(info.input_shape))
        model = models.build_backbone(backbone, info.num_classes, pw="stored", name=f"{preset}_stored_twin")
    else:
        options = {} if generator is None else {"generator": generator}
        model = models.for_task(preset, info.task, info.input_shape, info.num_classes, pw=side, **options)
    models.fit_input_normalization(model, train)
    return model


def load_model(path: str | Path) -> Any:
    """A saved float or QAT model (.keras, .h5 or SavedModel) with every class in scope."""
    from hyper_tinypw_tf import quantization

    if not Path(path).exists():
        raise ValueError(f"model file {str(path)!r} does not exist")
    with quantization.quantize_scope():
        return keras.models.load_model(path)


# --- the TFLM side ----------------------------------------------------------------------------


def tflm_runnable(data: bytes) -> tuple[bytes, bool]:
    """The bytes the TFLM interpreter runs for a ``.tflite`` file, and whether they were expanded.

    The one place that decides how a hyper file runs in the tflite_micro wheel, which has no
    ``HyperTinyPW`` op: it is expanded on the host (``export.expand``) into the folded file it stands
    for. ``MainJob.evaluate`` also runs the hyper file itself through the op in the host TFLM runner
    (:func:`check_through_op`) and checks both give the same outputs.
    """
    from hyper_tinypw_tf.export import api

    return (api.expand(data), True) if is_hyper(data) else (data, False)


def is_hyper(data: bytes) -> bool:
    """Whether a ``.tflite`` file holds HyperTinyPW ops."""
    from hyper_tinypw_tf.export import _flatbuffer as fb
    from hyper_tinypw_tf.export import format as fmt

    model_t = fb.read(data, "model file")
    return any(fb.op_name(model_t, op) == fmt.CUSTOM_OP_NAME for op in model_t.subgraphs[0].operators)


def tflm_predict(data: bytes, x: np.ndarray) -> np.ndarray:
    """Logits of a ``.tflite`` file (folded or hyper) in the TFLM interpreter, for float inputs ``x``."""
    from hyper_tinypw_tf.export import interpreters

    return interpreters.predict(tflm_runnable(data)[0], x, "tflm")


OP_RUNTIME = "tflm (HyperTinyPW op, host runner)"


def op_predict(path: Path, data: bytes, x: np.ndarray) -> np.ndarray:
    """Logits of the hyper file at ``path`` run through the HyperTinyPW op in the host TFLM runner."""
    from hyper_tinypw_tf.export import interpreters
    from tflm_harness import run

    return interpreters.predict(data, x, run=lambda q: run.run(path, q).outputs.reshape(len(q), -1))


def check_through_op(model_file: Path, folded: bytes, x: np.ndarray) -> dict[str, Any]:
    """Run the hyper file itself through the HyperTinyPW op (host TFLM runner, ``tflm_harness``) on the
    examples ``x``, and check its int8 outputs equal the folded file's in the tflite_micro wheel,
    example by example. Returns the runner's statistics.

    Raises:
      RuntimeError: naming the first example whose outputs differ.
    """
    from hyper_tinypw_tf.export import interpreters
    from tflm_harness import run

    q = interpreters.quantize(np.asarray(x, np.float32), *interpreters.io_quantization(folded)[0])
    expected = interpreters.run_int8(folded, q, "tflm")
    result = run.run(model_file, q)
    got = result.outputs.reshape(expected.shape)
    differ = np.flatnonzero((got != expected).reshape(len(q), -1).any(axis=1))
    if differ.size:
        raise RuntimeError(f"{model_file}: through the HyperTinyPW op, {differ.size} of {len(q)} examples give "
                           f"outputs other than the folded file's (first: example {int(differ[0])})")
    return result.stats


def tflm_arena_bytes(runnable: bytes) -> int:
    """Bytes of the TFLM arena a runnable file needs (tensors, persistent buffers), as TFLM's allocator records them."""
    from tflite_micro.python.tflite_micro import runtime as micro

    interpreter = micro.Interpreter.from_bytes(runnable)
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)  # TFLM's MicroPrintf writes to stderr
        try:
            interpreter.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode(errors="replace")
    found = re.search(r"Arena allocation total (\d+) bytes", text)
    if found is None:
        raise RuntimeError(f"TFLM printed no arena total; it printed: {text[:300]!r}")
    return int(found.group(1))


# --- data helpers -----------------------------------------------------------------------------


def inputs_and_labels(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """All inputs and labels of a batched dataset, in its order."""
    xs, ys = [], []
    for x, y in dataset:
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
    if not xs:
        return np.zeros((0,), np.float32), np.zeros((0,), np.int64)
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64)


# --- evaluate ---------------------------------------------------------------------------------


def predictor(model_path: str | Path) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """A logits function for a model file and the runtime it uses: TFLM for .tflite, Keras otherwise."""
    path = Path(model_path)
    if not path.exists():
        raise ValueError(f"--model={str(path)!r} does not exist")
    if path.suffix == ".tflite":
        data = path.read_bytes()
        if is_hyper(data):
            return (lambda x: op_predict(path, data, x)), OP_RUNTIME
        return (lambda x: tflm_predict(data, x)), "tflm"
    if path.suffix not in (".keras", ".h5") and not path.is_dir():
        raise ValueError(f"--model={str(path)!r} must be a .keras, .h5 or .tflite file or a SavedModel folder")
    model = load_model(path)
    return (lambda x: model.predict(x, verbose=0, batch_size=256)), "keras"


def evaluate_model(
    model_path: str | Path, load_data: LoadData, split: str = "test", n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Metrics with clustered-bootstrap CIs of one model file on one split (or on all the data).

    ``split="test"`` tunes a binary threshold on the validation split (fixed 0.5 without one);
    ``"val"`` and ``"all"`` score with a fixed 0.5, since no held-apart data is left to tune on.
    ``"all"`` scores every example of every split: a folder used entirely as test data. The model
    is checked and loaded before ``load_data`` runs, so a bad path fails fast.
    """
    from hyper_tinypw_tf import evaluation

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, received split={split!r}")
    predict, runtime = predictor(model_path)
    datasets, info = load_data()
    names = [s for s in ("train", "val", "test") if s in datasets] if split == "all" else [split]
    parts = [inputs_and_labels(datasets[s]) for s in names]
    groups_parts = [np.asarray(info.groups.get(s, np.arange(len(p[1])))) for s, p in zip(names, parts, strict=True)]
    keep = [i for i, (_, y) in enumerate(parts) if len(y)]
    if not keep:
        raise ValueError(f"the {split} data of task {info.task} holds no examples")
    x = np.concatenate([parts[i][0] for i in keep])
    y = np.concatenate([parts[i][1] for i in keep])
    groups = np.concatenate([groups_parts[i].astype(str) for i in keep])
    scores = evaluation.softmax(predict(x))
    val_scores = val_labels = None
    if split == "test" and info.num_classes == 2 and "val" in datasets:
        vx, val_labels = inputs_and_labels(datasets["val"])
        val_scores = evaluation.softmax(predict(vx)) if len(val_labels) else None
    threshold = evaluation.decision_threshold(val_scores, val_labels, info.num_classes)
    report = evaluation.evaluate(
        scores, y, groups, threshold=threshold, class_names=info.class_names, n_boot=n_boot, seed=seed,
        task=f"{info.task} ({split})",
    )
    return {"model": str(model_path), "runtime": runtime, "split": split, **report.to_json_dict()}


# --- the main job -----------------------------------------------------------------------------


class MainJob:
    """The main job's stages for both sides; each stage is skipped when its output file exists."""

    def __init__(self, out: str | Path, config: RunConfig, load_data: LoadData,
                 print_fn: Callable[[str], None] = print) -> None:
        self.out = Path(out)
        self.config = config
        self.load_data = load_data
        self.print = print_fn
        self._data: tuple[dict[str, Any], Any] | None = None

    def path(self, side: str, name: str) -> Path:
        return self.out / side / name

    def data(self) -> tuple[dict[str, Any], Any]:
        """Datasets and metadata, loaded once (and only if a stage needs them)."""
        if self._data is None:
            self._data = self.load_data()
        return self._data

    def _skip(self, side: str, stage: str, output: Path) -> bool:
        if output.exists():
            self.print(f"[{side}] {stage}: skipped, {output} exists")
            return True
        self.print(f"[{side}] {stage}: running -> {output}")
        output.parent.mkdir(parents=True, exist_ok=True)
        return False

    # stages

    def _fit(self, model: Any, side: str, data: tuple[dict[str, Any], Any], epochs: int, learning_rate: float,
             checkpoints: str) -> None:
        """Train, and write the learning curve beside the checkpoints (``<checkpoints>.json``)."""
        teacher = self.teacher() if side == "hyper" and self.config.distill else None
        curve = fit_model(model, data[0], data[1], self.config, epochs, learning_rate, self.path(side, checkpoints),
                          teacher)
        atomic.write_all({self.path(side, f"{checkpoints}.json"): json.dumps(curve, indent=2) + "\n"})

    def train(self, side: str) -> None:
        """Train the float model of ``side`` (same seed and schedule for every side)."""
        from hyper_tinypw_tf import accounting, quantization, training

        output = self.path(side, "model.keras")
        if self._skip(side, "train", output):
            return
        training.set_seed(self.config.seed)
        data = self.load_data()  # loaded again after the seed, so every side sees the same shuffles
        with training.distribution_strategy(self.config.distribute).scope():  # variables made, and trained, there
            model = build_model(self.config.preset, data[1], (x for x, _ in data[0]["train"]), side)
            accounting.packed_bytes(model).summary(self.print)
            self._fit(model, side, data, self.config.epochs, self.config.learning_rate, "checkpoints")
        quantization.save_model(model, output)

    def teacher_side(self) -> str:
        """Where the stored twin is trained: its own folder, or "stored" when that side is the twin already."""
        from hyper_tinypw_tf import models

        return TWIN if models.get_preset(self.config.preset).stored_backbone is not None else "stored"

    def teacher(self) -> Any:
        """The distillation teacher: ``--teacher`` if given, else the trained stored twin."""
        if self.config.teacher:
            return load_model(self.config.teacher)
        self.train(self.teacher_side())  # skipped (it says so) when run() has trained it already
        return load_model(self.path(self.teacher_side(), "model.keras"))

    def qat(self, side: str) -> None:
        from hyper_tinypw_tf import quantization, training

        output = self.path(side, "model_qat.h5")
        if self._skip(side, "qat", output):
            return
        training.set_seed(self.config.seed)
        qat_model = quantization.quantize_model(load_model(self.path(side, "model.keras")))
        if self.config.qat_epochs > 0:
            data = self.load_data()
            self._fit(qat_model, side, data, self.config.qat_epochs, self.config.learning_rate / 10, "checkpoints_qat")
        quantization.save_model(qat_model, output)

    def export(self, side: str) -> Path:
        from hyper_tinypw_tf.export import api

        output = self.path(side, f"model_{FILE_FORMAT[side]}.tflite")
        if not self._skip(side, "export", output):
            model = load_model(self.path(side, "model_qat.h5"))
            # The stored file gets the hyper file's zero-point layout: a byte difference is the method's.
            hyper = FILE_FORMAT[side] == api.HYPER
            api.export_files(model, output, fmt=FILE_FORMAT[side], mode=self.config.mode, print_fn=self.print,
                             slim_zero_points=True, sram_budget=self.config.sram_budget if hyper else None)
        return output

    def evaluate(self, side: str, model_file: Path) -> None:
        """Logits of the exported file in TFLM on val and test, the arena it needs, and the model's bill."""
        from hyper_tinypw_tf import accounting
        from hyper_tinypw_tf.export import interpreters

        output = self.path(side, "tflm.npz")
        if self._skip(side, "tflm evaluation", output):
            return
        datasets, info = self.data()
        runnable, expanded = tflm_runnable(model_file.read_bytes())
        arrays: dict[str, Any] = {}
        for split in ("val", "test"):
            x, y = inputs_and_labels(datasets[split])
            arrays[f"{split}_logits"] = interpreters.predict(runnable, x, "tflm")
            arrays[f"{split}_labels"] = y
            if expanded:
                stats = check_through_op(model_file, runnable, x)
                arrays.update(op_arena_used_bytes=stats["arena_used_bytes"],
                              op_cached_kernel_bytes=stats["cached_kernel_bytes"])
                self.print(f"{model_file.name} through the HyperTinyPW op (host TFLM runner), {split}: "
                           f"{len(x):,} outputs identical to the folded file's; arena {stats['arena_used_bytes']:,} "
                           f"bytes, cached kernels {stats['cached_kernel_bytes']:,} bytes")
        arrays["test_groups"] = np.asarray(info.groups["test"]).astype(str)
        bill = accounting.runtime_bill(load_model(self.path(side, "model.keras")))
        arrays.update(
            arena_bytes=tflm_arena_bytes(runnable), expanded=expanded, macs=bill.inference_macs,
            synthesis_macs=bill.synthesis_macs, kernel_cache_bytes=bill.cached_kernel_bytes,
            class_names=np.asarray(info.class_names), task=info.task,
            protocol=str(info.notes.get("protocol", "")),
        )
        with atomic.atomic_path(output) as tmp:
            np.savez(tmp, **arrays)

    def stages(self) -> dict[str, Path]:
        """Train, QAT, export and evaluate both sides (each stage skipped when its file exists); the files."""
        self.out.mkdir(parents=True, exist_ok=True)
        files = {}
        if self.config.distill and not self.config.teacher:
            self.train(self.teacher_side())
        for side in SIDES:
            self.train(side)
            self.qat(side)
            files[side] = self.export(side)
            self.evaluate(side, files[side])
        return files

    def run(self) -> dict[str, Any]:
        """All stages for both sides, then the comparison (always recomputed: it is cheap)."""
        return _summarize(self.out, [(self.out, self.stages())], self.config, self.print)


class CrossValidatedJob:
    """The main job under ``cv:K``: one :class:`MainJob` per fold in ``out/fold<i>/``, then one pooled comparison.

    Every record or speaker is tested once, by the fold model that never saw it; the two sides share
    folds and seed, so their differences are paired over all of them (``crossval.paired``).
    """

    def __init__(self, out: str | Path, config: RunConfig, load_fold: Callable[[int], tuple[dict[str, Any], Any]],
                 folds: int, print_fn: Callable[[str], None] = print) -> None:
        self.out = Path(out)
        self.config = config
        self.load_fold = load_fold
        self.folds = folds
        self.print = print_fn

    def fold_job(self, fold: int) -> MainJob:
        return MainJob(self.out / f"fold{fold}", self.config, lambda: self.load_fold(fold), self.print)

    def run(self) -> dict[str, Any]:
        done = []
        for fold in range(self.folds):
            self.print(f"--- fold {fold + 1} of {self.folds}")
            job = self.fold_job(fold)
            done.append((job.out, job.stages()))
        return _summarize(self.out, done, self.config, self.print)


def run_main(out: str | Path, config: RunConfig, load_fold: Callable[[int | None], tuple[dict[str, Any], Any]],
             protocol: str, print_fn: Callable[[str], None] = print) -> dict[str, Any]:
    """The main job for ``protocol``: one split (``load_fold(None)``), or K folds pooled under ``cv:K``."""
    from hyper_tinypw_tf.data import splits

    k = splits.parse_cv(protocol)
    if k is None:
        return MainJob(out, config, lambda: load_fold(None), print_fn).run()
    return CrossValidatedJob(out, config, load_fold, k, print_fn).run()


def _summarize(out: Path, folds: list[tuple[Path, dict[str, Path]]], config: RunConfig,
               print_fn: Callable[[str], None]) -> dict[str, Any]:
    summary = compare(folds, config)
    atomic.write_all({out / "summary.json": json.dumps(summary, indent=2) + "\n"})
    print_fn(comparison_table(summary))
    return summary


def _fold_scores(npz: Any, fold: int) -> Any:
    from hyper_tinypw_tf import crossval

    return crossval.FoldScores.from_logits(fold, npz["test_logits"], npz["test_labels"], npz["test_groups"],
                                           npz["val_logits"], npz["val_labels"])


def _side_summary(npz: Any, model_files: list[Path], report: Any) -> dict[str, Any]:
    """One side's numbers: bytes of its files (the largest fold's), its bill from ``npz`` (any fold's: the
    same backbone), and ``report``, the evaluation of its pooled test predictions."""
    if "op_arena_used_bytes" in npz.files:  # measured through the HyperTinyPW op: its arena holds the kernels
        sram, source = int(npz["op_arena_used_bytes"]), "arena through the HyperTinyPW op"
    elif bool(npz["expanded"]):  # the expanded file's arena holds no generated kernels; the op caches them
        sram, source = int(npz["arena_bytes"]) + int(npz["kernel_cache_bytes"]), "expanded arena + kernel cache"
    else:
        sram, source = int(npz["arena_bytes"]), "arena"
    sizes = [f.stat().st_size for f in model_files]
    return {
        "file": str(model_files[0]) if len(model_files) == 1 else [str(f) for f in model_files],
        "file_bytes": max(sizes),
        "file_bytes_per_fold": sizes,
        "sram_bytes": sram,
        "sram_source": source,
        "tflm_arena_bytes": int(npz["arena_bytes"]),
        "kernel_cache_bytes": int(npz["kernel_cache_bytes"]),
        "macs": int(npz["macs"]),
        "synthesis_macs": int(npz["synthesis_macs"]),
        "evaluation": report.to_json_dict(),
    }


def compare(folds: list[tuple[Path, dict[str, Path]]], config: RunConfig) -> dict[str, Any]:
    """The summary of both sides and their paired differences (hyper − stored), from the stage files.

    ``folds`` holds one (folder, files) pair per fold (one pair without cross-validation); the test
    predictions of all folds are pooled (``crossval.pool``) before anything is scored.
    """
    from hyper_tinypw_tf import crossval, evaluation, models

    npz = [{side: np.load(out / side / "tflm.npz") for side in SIDES} for out, _ in folds]
    pooled = {side: crossval.pool([_fold_scores(n[side], i) for i, n in enumerate(npz)]) for side in SIDES}
    try:
        diffs = crossval.paired(pooled["hyper"], pooled["stored"], config.n_boot, config.seed)
    except ValueError:
        raise ValueError(f"{folds[0][0]}: the stored and hyper evaluations cover different test examples; "
                         "delete their tflm.npz files and run again") from None
    first = npz[0]["stored"]
    classes = [str(c) for c in first["class_names"]]
    sides = {side: _side_summary(npz[0][side], [files[side] for _, files in folds],
                                 pooled[side].evaluate(classes, config.n_boot, config.seed)) for side in SIDES}
    return {
        "task": str(first["task"]),
        "protocol": str(first["protocol"]),
        "folds": len(folds),
        "preset": config.preset,
        "mode": config.mode,
        "budget_bytes": models.get_preset(config.preset).budget,
        "seed": config.seed,
        "n_boot": config.n_boot,
        "n_test_examples": int(len(pooled["stored"].labels)),
        "n_test_groups": int(len(np.unique(pooled["stored"].groups))),
        "stored": sides["stored"],
        "hyper": sides["hyper"],
        "difference": {k: evaluation.json_safe(d.to_dict()) for k, d in diffs.items()},
    }


def _fmt_metric(value: float | None, ci: list[float | None] | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    lo, hi = ci if ci else (None, None)
    spec = "+.3f" if signed else ".3f"
    bounds = "n/a" if lo is None or hi is None else f"{lo:{spec}}, {hi:{spec}}"
    return f"{value:{spec}} [{bounds}]"


def comparison_table(summary: dict[str, Any]) -> str:
    """The side-by-side table of a :func:`compare` summary: bytes, SRAM, MACs, metrics with CIs."""
    s, h, d = summary["stored"], summary["hyper"], summary["difference"]
    budget = summary["budget_bytes"]
    folds = summary.get("folds", 1)
    head = (f"{summary['task']}, preset {summary['preset']}"
            + (f" (budget {budget:,} bytes)" if budget else "")
            + (f", {summary['protocol']}" if summary["protocol"] else "")
            + (f" (test predictions of the {folds} folds pooled)" if folds > 1 else "")
            + f": test {summary['n_test_examples']:,} examples from {summary['n_test_groups']} groups; "
            f"95% CIs from {summary['n_boot']} clustered resamples, the difference's paired")
    width = (28, 22, 22, 24)
    lines = [head, f"{'':<{width[0]}}{'stored CNN':>{width[1]}}{'hyper':>{width[2]}}{'hyper - stored':>{width[3]}}"]

    def count(label: str, key: str) -> None:
        lines.append(f"{label:<{width[0]}}{s[key]:>{width[1]},}{h[key]:>{width[2]},}{h[key] - s[key]:>+{width[3]},}")

    count("file bytes", "file_bytes")
    count("SRAM bill, bytes", "sram_bytes")
    count("MACs per inference", "macs")
    count("synthesis MACs (at load)", "synthesis_macs")
    names = {"macro_f1": "macro-F1", "balanced_accuracy": "balanced accuracy", "roc_auc": "ROC-AUC"}
    for key in HEADLINE:
        se, he = s["evaluation"], h["evaluation"]
        lines.append(
            f"{names[key]:<{width[0]}}{_fmt_metric(se['metrics'][key], se['ci'][key]):>{width[1]}}"
            f"{_fmt_metric(he['metrics'][key], he['ci'][key]):>{width[2]}}"
            f"{_fmt_metric(d[key]['difference'], d[key]['ci'], signed=True):>{width[3]}}"
        )
    for name in s["evaluation"]["class_names"]:
        cells = [f"{e['per_class'][name]['recall']:.3f} / {e['per_class'][name]['precision']:.3f}"
                 for e in (s["evaluation"], h["evaluation"])]
        lines.append(f"{'  ' + name + ' sens / PPV':<{width[0]}}{cells[0]:>{width[1]}}{cells[1]:>{width[2]}}")
    lines.append(f"SRAM bill: the TFLM arena (stored: {s['sram_source']}; hyper: {h['sram_source']}, with the "
                 f"{h['kernel_cache_bytes']:,} bytes of generated kernels cached in {summary['mode']} mode)")
    if summary["n_test_groups"] < MIN_TRUSTED_GROUPS:
        lines.append(f"CAUTION: {summary['n_test_groups']} test groups are too few for a clustered bootstrap: its "
                     f"intervals cannot be trusted (they need >= {MIN_TRUSTED_GROUPS}; --protocol=cv:5 tests every "
                     "record or speaker once)")
    return "\n".join(lines)
