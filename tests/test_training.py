"""Training: deterministic seeds, checkpoints, and resuming after the process is killed."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hyper_tinypw_tf import models, training
from hyper_tinypw_tf.data import load

RECORDS = ["106", "119", "208", "215", "223"]


@pytest.fixture(scope="module")
def beats(shared_data, tmp_path_factory):
    """A loader of fresh datasets (a shuffled dataset reshuffles on every pass, as in a new run)."""
    cache = tmp_path_factory.mktemp("cache")
    return lambda: load(
        "mitdb_v", shared_data / "mitdb", records=RECORDS, cache_dir=cache, batch_size=256,
        shuffle_train=True, quiet=True, fractions=(0.6, 0.2, 0.2),
    )[0]


def _train_once(fresh, seed):
    training.set_seed(seed)
    datasets = fresh()
    model = models.separable_cnn_1d("32k", pw="hyper")
    config = training.TrainConfig(epochs=1, seed=seed, verbose=0)
    training.fit(model, datasets["train"].take(8), datasets["val"].take(2), config)
    return model.get_weights()


def test_same_seed_same_weights(beats):
    a, b = _train_once(beats, 3), _train_once(beats, 3)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_balanced_class_weight():
    weights = training.balanced_class_weight(np.array([0, 0, 0, 1]), 2)
    assert weights == {0: pytest.approx(4 / 6), 1: pytest.approx(2.0)}


def test_bad_config_raises():
    with pytest.raises(ValueError, match="epochs must be positive, received epochs=0"):
        training.TrainConfig(epochs=0)


_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from hyper_tinypw_tf import models, training
    from hyper_tinypw_tf._keras import keras

    ckpt, kill_at = sys.argv[1], int(sys.argv[2])
    training.set_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 256, 1, 1)).astype("float32")
    y = (x[:, :128].mean(axis=(1, 2, 3)) > 0).astype("int32")
    import tensorflow as tf
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            print("EPOCH", epoch, flush=True)
            if epoch == kill_at:
                os.kill(os.getpid(), 9)

    model = models.separable_cnn_1d("32k", pw="hyper")
    config = training.TrainConfig(epochs=4, patience=10, checkpoint_dir=ckpt, verbose=0)
    training.compile_model(model, config.learning_rate)
    model.fit(ds, validation_data=ds, epochs=4, callbacks=[*training.callbacks_for(config), Kill()], verbose=0)
    print("DONE", flush=True)
    """
)


def test_resumes_from_last_checkpoint_after_kill(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(_SCRIPT)
    ckpt = str(tmp_path / "ckpt")
    killed = subprocess.run([sys.executable, str(script), ckpt, "1"], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9
    assert "EPOCH 1" in killed.stdout and "DONE" not in killed.stdout
    resumed = subprocess.run([sys.executable, str(script), ckpt, "-1"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    epochs = [line for line in resumed.stdout.splitlines() if line.startswith("EPOCH")]
    assert epochs == ["EPOCH 2", "EPOCH 3"], "the resumed run must continue after the last finished epoch"
    assert (tmp_path / "ckpt" / "best.weights.h5").exists()
