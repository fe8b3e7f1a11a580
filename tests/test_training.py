"""hyper_tinypw_tf.training: seeds, per-epoch data order, checkpoints (kill-and-resume: test_resume.py)."""

import numpy as np
import pytest
import tensorflow as tf

from hyper_tinypw_tf import models, training
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.data import LoadOptions, load

RECORDS = ["106", "119", "208", "215", "223"]


@pytest.fixture(scope="module")
def beats(shared_data, tmp_path_factory):
    """A loader of fresh datasets in a fixed order (training.fit shuffles per epoch)."""
    cache = tmp_path_factory.mktemp("cache")
    return lambda: load(
        "mitdb_v", shared_data / "mitdb", LoadOptions(cache_dir=cache), records=RECORDS, batch_size=256,
        fractions=(0.6, 0.2, 0.2),
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


def test_epoch_order_depends_on_seed_and_epoch_only() -> None:
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((np.arange(40, dtype=np.float32), np.zeros(40, np.int32))).batch(8)

    def order(seed: int, epoch: int) -> list[float]:
        return [float(v) for x, _ in training.epoch_dataset(data, seed, epoch) for v in x.numpy()]

    assert order(0, 3) == order(0, 3), "the same (seed, epoch) must give the same order in any process state"
    assert sorted(order(0, 3)) == list(range(40)), "every example exactly once"
    assert order(0, 3) != order(0, 4) and order(0, 3) != order(1, 3)
    assert [len(x) for x, _ in training.epoch_dataset(data, 0, 0)] == [8] * 5


def test_empty_training_set_is_refused() -> None:
    import tensorflow as tf

    empty = tf.data.Dataset.from_tensor_slices((np.zeros((0, 4), np.float32), np.zeros(0, np.int32))).batch(8)
    with pytest.raises(ValueError, match="fit: the training dataset is empty"):
        training.epoch_dataset(empty, 0, 0)


def test_checkpoint_holds_state_and_best_weights(beats, tmp_path):
    training.set_seed(0)
    datasets = beats()
    model = models.separable_cnn_1d("32k", pw="hyper")
    config = training.TrainConfig(epochs=2, seed=0, verbose=0, checkpoint_dir=str(tmp_path))
    history = training.fit(model, datasets["train"].take(4), datasets["val"].take(2), config)
    with np.load(tmp_path / training.STATE_FILE) as state:
        assert int(state["epoch"]) == 2 and float(state["best"]) == min(history.history["val_loss"])
        best_weights = [state[f"best_weights/{i}"] for i in range(len(model.get_weights()))]
    for held, saved in zip(model.get_weights(), best_weights, strict=True):
        np.testing.assert_array_equal(held, saved)  # fit leaves the model on the best epoch's weights
    reloaded = models.separable_cnn_1d("32k", pw="hyper")
    reloaded.load_weights(str(tmp_path / training.BEST_WEIGHTS_FILE))
    for held, saved in zip(model.get_weights(), reloaded.get_weights(), strict=True):
        np.testing.assert_array_equal(held, saved)


def test_recalibrate_batchnorm_sets_the_exact_mean_of_the_training_batches():
    """Precise BN: moving statistics become the average of the per-batch statistics, momentum restored."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="dense")(inputs)
    outputs = keras.layers.BatchNormalization(momentum=0.99, name="bn")(hidden)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(24, 4)).astype(np.float32)
    batches = tf.data.Dataset.from_tensor_slices((x, np.zeros(24))).batch(8)
    assert training.recalibrate_batchnorm(model, batches) == 3
    h = model.get_layer("dense")(x).numpy().reshape(3, 8, 3)
    bn = model.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), h.mean(axis=1).mean(axis=0), rtol=1e-5, atol=1e-6)
    # tf_keras keeps the biased (ddof=0) batch variance.
    np.testing.assert_allclose(bn.moving_variance.numpy(), h.var(axis=1).mean(axis=0), rtol=1e-4)
    assert bn.momentum == 0.99
    assert training.recalibrate_batchnorm(keras.Sequential([keras.layers.Dense(2)]), batches) == 0
