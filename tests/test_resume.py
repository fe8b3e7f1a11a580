"""A training run killed mid-epoch (SIGKILL) and started again ends bit-identical to one never killed.

Each run is its own process, as after a real crash: nothing survives but the checkpoint directory.
The kill lands inside an epoch after the previous epoch's checkpoint is on disk (the run writes a
marker file at a fixed batch and waits there), never at a guessed time.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from hyper_tinypw_tf import training

EPOCHS, PATIENCE, KILL_EPOCH = 5, 2, 2

_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    import tensorflow as tf
    from hyper_tinypw_tf import models, training
    from hyper_tinypw_tf._keras import keras

    ckpt, out, scenario, kill_epoch, marker = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    epochs, patience = int(sys.argv[6]), int(sys.argv[7])
    training.set_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(384, 64, 1, 1)).astype("float32")
    y = (x[:, :32].mean(axis=(1, 2, 3)) > 0).astype("int32")
    # "overfitting": validation labels flipped, so the validation loss is best early and early stopping
    # (its best value, wait counter and best weights) decides the result.
    val_y = 1 - y if scenario == "overfitting" else y
    train = tf.data.Dataset.from_tensor_slices((x[:256], y[:256])).batch(32)
    val = tf.data.Dataset.from_tensor_slices((x[256:], val_y[256:])).batch(64)
    backbone = models.Backbone(
        input_shape=(64, 1, 1), stem_channels=8, stem_kernel=(5, 1), stem_strides=(2, 2),
        channels=(16, 16), strides=((2, 2), (2, 2)), dw_kernel=(5, 1),
    )
    generator = {"strategy": "tiled", "config": {"tile_size": 8, "code_dim": 4, "hidden_dim": 8}}
    model = models.build_backbone(backbone, 2, pw="hyper", generator=generator)

    class PauseForKill(keras.callbacks.Callback):
        epoch = -1

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            if self.epoch == kill_epoch and batch == 3:
                open(marker, "w").close()
                time.sleep(600)

    config = training.TrainConfig(epochs=epochs, learning_rate=1e-2, patience=patience, checkpoint_dir=ckpt,
                                  verbose=0)
    history = training.fit(model, train, val, config, callbacks=[PauseForKill()])
    np.savez(out, *model.get_weights(), **{"history_" + k: np.asarray(v) for k, v in history.history.items()})
    """
)


def _command(tmp: Path, name: str, scenario: str, kill_epoch: int) -> list[str]:
    script = tmp / "run.py"
    if not script.exists():
        script.write_text(_SCRIPT)
    return [sys.executable, str(script), str(tmp / f"ckpt_{name}"), str(tmp / f"{name}.npz"), scenario,
            str(kill_epoch), str(tmp / f"{name}.marker"), str(EPOCHS), str(PATIENCE)]


def _kill_mid_epoch(command: list[str], marker: Path) -> None:
    """Start the run, SIGKILL it once it is inside epoch KILL_EPOCH (marker file written), wait for it."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not marker.exists():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before epoch {KILL_EPOCH}: {process.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the run never reached the kill point")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("scenario", ["improving", "overfitting"])
def test_killed_run_resumes_to_the_same_weights(tmp_path: Path, scenario: str) -> None:
    _run(_command(tmp_path, "straight", scenario, -1))
    killed = _command(tmp_path, "killed", scenario, KILL_EPOCH)
    _kill_mid_epoch(killed, tmp_path / "killed.marker")
    with np.load(tmp_path / "ckpt_killed" / training.STATE_FILE) as state:
        assert int(state["epoch"]) == KILL_EPOCH, "the checkpoint must hold the last finished epoch"
    assert not (tmp_path / "killed.npz").exists()
    _run(_command(tmp_path, "killed", scenario, -1))  # the same command again, as a user would

    with np.load(tmp_path / "straight.npz") as a, np.load(tmp_path / "killed.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        weights = [k for k in a.files if k.startswith("arr_")]
        assert len(weights) > 10
        for key in a.files:
            assert np.array_equal(a[key], b[key]), f"{key} differs after the resume"
        val_loss = a["history_val_loss"]
    if scenario == "overfitting":
        # The test means something only if the best epoch came before the kill and early stopping ended the run.
        assert int(np.argmin(val_loss)) < KILL_EPOCH
        assert len(val_loss) < EPOCHS
    else:
        assert len(val_loss) == EPOCHS


def test_epoch_seed_depends_on_seed_and_epoch_only() -> None:
    seeds = {training.epoch_seed(s, e) for s in range(3) for e in range(5)}
    assert len(seeds) == 15
    assert training.epoch_seed(2, 4) == training.epoch_seed(2, 4)


def test_checkpoint_of_another_seed_is_refused(tmp_path: Path) -> None:
    import tensorflow as tf

    from hyper_tinypw_tf import models
    from tests.conftest_export import TINY

    x = np.random.default_rng(0).normal(size=(32, 256, 1, 1)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, (x[:, 0, 0, 0] > 0).astype("int32"))).batch(16)
    model = models.build_backbone(TINY, 2, pw="hyper")
    training.fit(model, data, data, training.TrainConfig(epochs=1, seed=1, checkpoint_dir=str(tmp_path), verbose=0))
    with pytest.raises(ValueError, match="was written by a run with seed=1, this run has seed=2"):
        training.fit(model, data, data, training.TrainConfig(epochs=2, seed=2, checkpoint_dir=str(tmp_path), verbose=0))
