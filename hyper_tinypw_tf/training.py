"""Fit a model on tf.data with checkpoints, early stopping and resume-after-kill.

``fit`` is plain ``model.fit`` with three callbacks: ``BackupAndRestore`` (a killed run resumes
from its last finished epoch, optimizer state included), ``ModelCheckpoint`` (the best weights
on validation) and ``EarlyStopping`` on the validation loss. Seeds are set once, with op
determinism, so two runs with the same seed give the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from hyper_tinypw_tf._keras import keras


@dataclass(frozen=True)
class TrainConfig:
    """What a training run needs beyond the model and the data."""

    epochs: int = 10
    learning_rate: float = 1e-3
    patience: int = 3
    seed: int = 0
    checkpoint_dir: str | None = None
    verbose: int = 1

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ValueError(f"epochs must be positive, received epochs={self.epochs}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, received learning_rate={self.learning_rate}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, received patience={self.patience}")


def set_seed(seed: int) -> None:
    """Seed Python, numpy and TensorFlow, and make TF ops deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def balanced_class_weight(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Inverse-frequency class weights (mean 1 over examples), for imbalanced beat classes."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.where(present, counts.sum() / (present.sum() * np.maximum(counts, 1)), 0.0)
    return {i: float(w) for i, w in enumerate(weights)}


def compile_model(model: keras.Model, learning_rate: float) -> None:
    """Adam and sparse cross-entropy on the logits the reference models return, with accuracy."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def callbacks_for(config: TrainConfig) -> list[keras.callbacks.Callback]:
    """Early stopping always; checkpoints and resume when a checkpoint directory is given."""
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)
    ]
    if config.checkpoint_dir:
        root = Path(config.checkpoint_dir)
        root.mkdir(parents=True, exist_ok=True)
        callbacks += [
            keras.callbacks.BackupAndRestore(str(root / "backup")),
            keras.callbacks.ModelCheckpoint(
                str(root / "best.weights.h5"), monitor="val_loss", save_best_only=True, save_weights_only=True
            ),
        ]
    return callbacks


def fit(
    model: keras.Model,
    train: tf.data.Dataset,
    val: tf.data.Dataset,
    config: TrainConfig,
    class_weight: dict[int, float] | None = None,
) -> keras.callbacks.History:
    """Train ``model`` (compiled here) and leave it holding the best validation weights."""
    compile_model(model, config.learning_rate)
    return model.fit(
        train,
        validation_data=val,
        epochs=config.epochs,
        callbacks=callbacks_for(config),
        class_weight=class_weight,
        verbose=config.verbose,
    )
