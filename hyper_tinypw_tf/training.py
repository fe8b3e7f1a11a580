"""Fit a model on tf.data with early stopping, checkpoints, and a resume that changes nothing.

``fit`` runs ``model.fit`` one epoch at a time. Everything random in an epoch (the data order,
every seeded op) is derived from (seed, epoch), and the end of each epoch saves all the rest
(weights, optimizer state, early-stopping state, best weights) atomically, so a run killed at
any point and started again ends with the same weights, bit for bit, as one never killed.
Seeds come with op determinism, so two runs with the same seed give the same weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from hyper_tinypw_tf import atomic, inspect
from hyper_tinypw_tf._keras import keras


@dataclass(frozen=True)
class TrainConfig:
    """What a training run needs beyond the model and the data."""

    epochs: int = 10  # the maximum: early stopping usually ends the run first
    learning_rate: float = 1e-3  # the peak rate of a cosine schedule
    patience: int = 3
    seed: int = 0
    checkpoint_dir: str | None = None
    verbose: int = 1
    schedule: str = "constant"  # SCHEDULES
    warmup_epochs: int = 0  # cosine: epochs of linear warmup from 0 to learning_rate
    monitor: str = "val_loss"  # MONITORS: what early stopping and the best weights follow

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, received schedule={self.schedule!r}")
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {tuple(MONITORS)}, received monitor={self.monitor!r}")
        if not 0 <= self.warmup_epochs < max(self.epochs, 1):
            raise ValueError(f"warmup_epochs must be in 0..epochs-1, received warmup_epochs={self.warmup_epochs} "
                             f"with epochs={self.epochs}")
        if self.epochs <= 0:
            raise ValueError(f"epochs must be positive, received epochs={self.epochs}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, received learning_rate={self.learning_rate}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, received patience={self.patience}")


SCHEDULES = ("constant", "cosine")
# Early stopping's quantity and whether larger is better. Macro-F1 is what every report scores; the
# validation loss of a class-weighted model can rise while its macro-F1 still improves.
MONITORS = {"val_loss": False, "val_macro_f1": True}


def learning_rate_schedule(
    config: TrainConfig, steps_per_epoch: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The optimizer's rate: ``config.learning_rate`` throughout, or linear warmup then cosine decay to 0.

    The schedule runs on the optimizer's own step counter, which the checkpoint saves, so a resumed
    run continues the same curve.
    """
    if config.schedule == "constant":
        return config.learning_rate
    warmup = config.warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else config.learning_rate, max(1, (config.epochs - config.warmup_epochs) * steps_per_epoch),
        warmup_target=config.learning_rate if warmup else None, warmup_steps=warmup,
    )


def set_seed(seed: int) -> None:
    """Seed Python, numpy and TensorFlow, and make TF ops deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def balanced_class_weight(labels: np.ndarray, num_classes: int, power: float = 1.0) -> dict[int, float]:
    """Class weights ``(1 / frequency) ** power``, scaled to mean 1 over the examples, for imbalanced classes.

    ``power=1`` is inverse frequency; ``power=0.5`` its square root, which keeps the rare classes
    ahead without the weights of a class with a handful of beats (MIT-BIH's Q: 8 in all of DS1,
    a weight of thousands) drowning the N class. Absent classes get 0.
    """
    counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes).astype(np.float64)
    present = counts > 0
    raw = np.where(present, (counts.sum() / np.maximum(counts, 1)) ** power, 0.0)
    weights = raw * counts.sum() / max(float((raw * counts).sum()), 1e-12)
    return {i: float(w) for i, w in enumerate(weights)}


DISTRIBUTE = ("none", "mirrored", "multi_worker")


def distribution_strategy(name: str) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy for ``--distribute``: build the model under its ``scope()`` and train.

    "none" is TensorFlow's default (one device); "mirrored" replicates over the local devices
    (``MirroredStrategy``); "multi_worker" over the workers of ``TF_CONFIG``
    (``MultiWorkerMirroredStrategy``, to be created before any other TensorFlow op). Keras
    all-reduces the gradients, so a shared generator stays one set of (mirrored) variables.
    """
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"distribute must be one of {DISTRIBUTE}, received distribute={name!r}")


def compile_model(model: keras.Model, learning_rate: float | keras.optimizers.schedules.LearningRateSchedule,
                  loss: keras.losses.Loss | None = None) -> None:
    """Adam and ``loss`` (default sparse cross-entropy) on the logits the reference models return, with accuracy.

    Compiled under the strategy the model was built in, so the optimizer's slots are mirrored like the weights.
    """
    with model.distribute_strategy.scope():
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=loss if loss is not None else keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )


STATE_FILE = "state.npz"
BEST_WEIGHTS_FILE = "best.weights.h5"


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch, a function of (run seed, epoch) only, so a resumed run can re-derive it."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _batch_and_buffer(train: tf.data.Dataset) -> tuple[int, int]:
    """(batch size, a shuffle buffer that holds every example) of a batched dataset."""
    try:
        first = next(iter(train))
    except StopIteration:
        raise ValueError("fit: the training dataset is empty") from None
    batch = int(tf.shape(tf.nest.flatten(first)[0])[0])
    batches = int(train.cardinality())
    if batches < 0:  # unknown or infinite: count once
        batches = int(train.reduce(np.int64(0), lambda n, _: n + 1))
    return batch, max(1, batches * batch)


def epoch_dataset(train: tf.data.Dataset, seed: int, epoch: int) -> tf.data.Dataset:
    """``train`` (batched, in a fixed order) shuffled for one epoch with :func:`epoch_seed`.

    The order depends only on (seed, epoch), never on how many epochs this process has run, which
    is what lets a killed run resume with the data order of an uninterrupted one.
    """
    batch, buffer = _batch_and_buffer(train)
    examples = train.unbatch().shuffle(buffer, seed=epoch_seed(seed, epoch), reshuffle_each_iteration=False)
    return examples.batch(batch).prefetch(tf.data.AUTOTUNE)


RECALIBRATION_BATCHES = 200  # enough batches for a stable mean on the reference datasets; caps the cost


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """The trainable BatchNormalization layers of ``model`` (a distiller's student, not its teacher)."""
    model = getattr(model, "student", model)
    return [layer for layer in model.submodules
            if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]


def recalibrate_batchnorm(model: keras.Model, train: tf.data.Dataset,
                          max_batches: int = RECALIBRATION_BATCHES) -> int:
    """Set every BatchNorm's moving mean and variance to their average over ``train`` for the current weights.

    With a few hundred steps or fewer, the exponential moving averages still remember their
    initial values, so inference-mode outputs (validation, export) differ from what training
    optimized; on small data (PTB-XL's 363 training records, 3 steps an epoch) every input gave
    the same logits. Averaging over the training split in a fixed order ("precise BN") makes
    the statistics exact and deterministic. Not for QAT models: training-mode passes would move
    their quantizer ranges. Returns the number of batches used.
    """
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    forward = getattr(model, "student", model)
    saved = [layer.momentum for layer in layers]
    used = 0
    try:
        for used, batch in enumerate(train.take(max_batches), start=1):
            x = batch[0] if isinstance(batch, tuple) else batch
            for layer in layers:
                layer.momentum = (used - 1) / used  # running mean of the batch statistics
            forward(x, training=True)
    finally:
        for layer, momentum in zip(layers, saved, strict=True):
            layer.momentum = momentum
    return used


class _Validation(keras.callbacks.Callback):
    """Score the validation split at the end of every epoch: ``val_loss`` (cross-entropy),
    ``val_accuracy`` and ``val_macro_f1`` (argmax), written into the epoch's logs.

    A float model's BatchNorm statistics are re-estimated on ``train`` first (precise BN), so the
    numbers judge the weights as they will be exported. One prediction pass serves all three.
    """

    def __init__(self, target: keras.Model, train: tf.data.Dataset, val: tf.data.Dataset, precise_bn: bool) -> None:
        super().__init__()
        self._target, self._train, self._val, self._precise_bn = target, train, val, precise_bn
        self._labels = np.concatenate([np.asarray(y).reshape(-1) for _, y in val]).astype(np.int64)

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        from hyper_tinypw_tf import evaluation

        if self._precise_bn:
            recalibrate_batchnorm(self._target, self._train)
        student = getattr(self._target, "student", self._target)
        logits = np.asarray(student.predict(self._val, verbose=0), np.float64).reshape(len(self._labels), -1)
        z = logits - logits.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        pred = np.argmax(logits, axis=1)
        if logs is not None:
            logs["val_loss"] = float(-np.mean(log_p[np.arange(len(pred)), self._labels]))
            logs["val_accuracy"] = float(np.mean(pred == self._labels))
            logs["val_macro_f1"] = evaluation.macro_f1(self._labels, pred, logits.shape[1])


@dataclass
class _State:
    """Everything a resumed run needs besides the data: the next epoch, weights, optimizer, early stopping."""

    epoch: int = 0
    best: float = math.inf
    wait: int = 0
    stopped: bool = False
    best_weights: list[np.ndarray] | None = None
    history: dict[str, list[float]] = field(default_factory=dict)


def _optimizer_variables(model: keras.Model) -> list[tf.Variable]:
    optimizer = model.optimizer
    if len(optimizer.variables) <= 1:  # only the step counter: slots are made on the first update
        with model.distribute_strategy.scope():
            optimizer.build(model.trainable_variables)
    return list(optimizer.variables)


def _save_state(path: Path, model: keras.Model, state: _State, seed: int) -> None:
    """Write the state in one file through a temporary name and a rename, so a kill leaves the old or the new."""
    arrays: dict[str, np.ndarray] = {
        "seed": np.int64(seed), "epoch": np.int64(state.epoch), "best": np.float64(state.best),
        "wait": np.int64(state.wait), "stopped": np.bool_(state.stopped),
    }
    arrays.update({f"weights/{i}": w for i, w in enumerate(model.get_weights())})
    arrays.update({f"optimizer/{i}": v.numpy() for i, v in enumerate(_optimizer_variables(model))})
    arrays.update({f"best_weights/{i}": w for i, w in enumerate(state.best_weights or [])})
    arrays.update({f"history/{k}": np.asarray(v, np.float64) for k, v in state.history.items()})
    with atomic.atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


def _load_state(path: Path, model: keras.Model, seed: int) -> _State:
    """Restore weights and optimizer from ``path`` and return the rest of the state."""
    with np.load(path, allow_pickle=False) as z:
        if int(z["seed"]) != seed:
            raise ValueError(
                f"fit: checkpoint {path} was written by a run with seed={int(z['seed'])}, this run has seed={seed}; "
                "use that seed or delete the checkpoint directory"
            )

        def numbered(prefix: str) -> list[np.ndarray]:
            keys = sorted((k for k in z.files if k.startswith(prefix)), key=lambda k: int(k.rsplit("/", 1)[1]))
            return [z[k] for k in keys]

        try:
            model.set_weights(numbered("weights/"))
            variables = _optimizer_variables(model)
            saved = numbered("optimizer/")
            if len(saved) != len(variables):
                raise ValueError(f"{len(saved)} optimizer variables saved, the model's optimizer has {len(variables)}")
            for variable, value in zip(variables, saved, strict=True):
                variable.assign(value)
        except ValueError as error:
            raise ValueError(
                f"fit: checkpoint {path} does not fit this model ({error}); delete it to start over"
            ) from None
        history = {k.split("/", 1)[1]: z[k].tolist() for k in z.files if k.startswith("history/")}
        return _State(int(z["epoch"]), float(z["best"]), int(z["wait"]), bool(z["stopped"]),
                      numbered("best_weights/") or None, history)


def fit(
    model: keras.Model,
    train: tf.data.Dataset,
    val: tf.data.Dataset | None,
    config: TrainConfig,
    class_weight: dict[int, float] | None = None,
    loss: keras.losses.Loss | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> keras.callbacks.History:
    """Train ``model`` (compiled here, with ``loss`` if given) and leave it holding the best validation weights.

    ``train`` must come batched and in a fixed order: each epoch shuffles it with :func:`epoch_dataset`.
    Early stopping on ``config.monitor`` (validation loss or macro-F1, scored by :class:`_Validation`)
    follows ``keras.callbacks.EarlyStopping`` (patience, best weights restored at the end); the rate
    follows ``config.schedule`` (:func:`learning_rate_schedule`). With ``config.checkpoint_dir``, the end
    of every epoch saves weights, optimizer state, epoch, early-stopping state and best weights in one file
    (``state.npz``, written atomically) plus ``best.weights.h5`` when the best improves; a run killed
    at any point and started again resumes there and ends with the weights of a run never killed
    (same machine, same seed). ``callbacks`` are passed to every epoch's ``model.fit``. A float
    model's BatchNorm statistics are re-estimated on ``train`` after every epoch, before validation
    (:func:`recalibrate_batchnorm`), so early stopping judges the weights as they will be exported.
    """
    batch, examples = _batch_and_buffer(train)
    compile_model(model, learning_rate_schedule(config, max(1, examples // batch)), loss)
    # Float models get exact BatchNorm statistics before every validation (recalibrate_batchnorm).
    precise_bn = not inspect.is_qat(getattr(model, "student", model)) and bool(batchnorm_layers(model))
    extra = [_Validation(model, train, val, precise_bn)] if val is not None else []
    larger_is_better = MONITORS[config.monitor]
    root = Path(config.checkpoint_dir) if config.checkpoint_dir else None
    state = _State()
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
        if (root / STATE_FILE).exists():
            state = _load_state(root / STATE_FILE, model, config.seed)
    while state.epoch < config.epochs and not state.stopped:
        epoch = state.epoch
        set_seed(epoch_seed(config.seed, epoch))  # every random op of the epoch, from (seed, epoch) only
        logs = model.fit(
            epoch_dataset(train, config.seed, epoch), initial_epoch=epoch, epochs=epoch + 1,
            callbacks=[*extra, *callbacks], class_weight=class_weight, verbose=config.verbose,
        ).history
        for key, values in logs.items():
            state.history.setdefault(key, []).append(float(values[-1]))
        current = logs.get(config.monitor, [None])[-1]
        if current is not None:
            # keras.callbacks.EarlyStopping.on_epoch_end, with min_delta=0 and no baseline; `best` is kept as a
            # quantity to minimize, so a checkpoint holds the same number whichever way the monitor points.
            current = -float(current) if larger_is_better else float(current)
            state.wait += 1
            if current < state.best:
                state.best, state.wait, state.best_weights = current, 0, model.get_weights()
                if root is not None:
                    with atomic.atomic_path(root / BEST_WEIGHTS_FILE) as tmp:
                        model.save_weights(str(tmp))
            elif state.wait >= config.patience and epoch > 0:
                state.stopped = True
        state.epoch = epoch + 1
        if root is not None:
            _save_state(root / STATE_FILE, model, state, config.seed)
    if state.best_weights is not None:
        model.set_weights(state.best_weights)  # recalibrated before the validation that chose them
    elif precise_bn:
        recalibrate_batchnorm(model, train)
    history = keras.callbacks.History()
    history.set_model(model)
    history.epoch = list(range(len(next(iter(state.history.values()), []))))
    history.history = state.history
    return history


def learning_curve(history: keras.callbacks.History, config: TrainConfig) -> dict[str, object]:
    """Where a run's best epoch fell: its number (1-based), the epochs run, and whether the maximum was hit.

    ``hit_max`` (the best epoch is the last allowed one) says the schedule may have stopped a model
    still improving: a comparison that includes it is not between converged models.
    """
    curve = {k: [float(v) for v in values] for k, values in history.history.items()}
    monitored = curve.get(config.monitor, [])
    best = None
    if monitored:
        best = int(np.argmax(monitored) if MONITORS[config.monitor] else np.argmin(monitored)) + 1
    return {"monitor": config.monitor, "best_epoch": best, "epochs_run": len(next(iter(curve.values()), [])),
            "max_epochs": config.epochs, "hit_max": best == config.epochs, "schedule": config.schedule,
            "warmup_epochs": config.warmup_epochs, "learning_rate": config.learning_rate, "curve": curve}
