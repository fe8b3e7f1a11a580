"""What every run needs around a model: its run configuration, training with the run's switches, building and
loading models, running ``.tflite`` files in TFLM, and ``evaluate``.

The main job (``main_job``) and the frontier (``bench.frontier``) build on it through the stages in
``stages``. Like ``cli.py`` this module reaches across packages (``export``, the TFLM interpreter) and
imports them lazily.
"""

from __future__ import annotations

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

from hyper_tinypw_tf._keras import keras

TWIN = "twin"  # the hyper model's backbone with stored PW layers: the distillation teacher
SPLITS = ("test", "val", "all")
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


def cluster_model(
    model: Any, datasets: dict[str, Any], info: Any, config: RunConfig, clusters: int, epochs: int,
    learning_rate: float, checkpoint_dir: str | Path | None, qat_epochs: int = 0,
) -> Any:
    """``model`` fine-tuned with its stored 1×1 layers clustered to ``clusters`` centroids, then stripped.

    The LUT peer's recipe (``hyper-tinypw cluster`` and the frontier's lut/hyperlut points): clustering
    starts from the trained weights; the result is a plain model whose 1×1 kernels hold at most ``clusters``
    values, exported with ``lut_bits=peers.bits_for_clusters(clusters)``. With ``qat_epochs`` it is then
    fine-tuned with cluster-preserving QAT (plain QAT's weight updates would undo the clusters) and the
    result is a QAT model (``quantization.without_cluster_preservation``, so it saves and exports like any
    other); without, a float model for post-training quantization.
    """
    from hyper_tinypw_tf import clustering, quantization, training

    training.set_seed(config.seed)
    wrapped = clustering.cluster_pointwise(model, clusters)
    fit_model(wrapped, datasets, info, config, epochs, learning_rate, checkpoint_dir)
    clustered = clustering.strip(wrapped)
    if qat_epochs <= 0:
        return clustered
    cqat = quantization.quantize_model(clustered, preserve_clusters=True)
    with quantization.cqat_training_log(cqat):
        fit_model(cqat, datasets, info, config, qat_epochs, learning_rate,
                  None if checkpoint_dir is None else Path(checkpoint_dir) / "cqat")
    return quantization.without_cluster_preservation(cqat, clustered)


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


OP_CHECK_EXAMPLES = 64
OP_RUNTIME = (f"tflm (expanded; the file itself through the HyperTinyPW op in the host runner gave equal outputs "
              f"on the first {OP_CHECK_EXAMPLES} examples)")


def op_predict(path: Path, data: bytes, x: np.ndarray) -> np.ndarray:
    """Logits of the hyper file at ``path`` in TFLM, checked through the HyperTinyPW op.

    All of ``x`` runs as the expanded folded file in the tflite_micro wheel: bit-exact with the op
    (``tests/test_tflm_kernel.py``) and several times faster than the host runner, whose pinned TFLM
    reference conv is slower than the wheel's (``python -m bench.bench_scoring``, BENCHMARKS ``scoring``).
    The first :data:`OP_CHECK_EXAMPLES` examples also run through the op (:func:`check_through_op`),
    so a file whose op disagrees with its expansion raises instead of scoring.
    """
    from hyper_tinypw_tf.export import interpreters

    folded = tflm_runnable(data)[0]
    check_through_op(path, folded, np.asarray(x)[:OP_CHECK_EXAMPLES])
    return interpreters.predict(folded, x, "tflm")


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
