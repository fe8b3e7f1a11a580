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


def test_bad_schedule_or_monitor_is_refused():
    with pytest.raises(ValueError, match=r"schedule must be one of \('constant', 'cosine'\), received schedule='step'"):
        training.TrainConfig(schedule="step")
    with pytest.raises(ValueError, match=r"monitor must be one of .*received monitor='val_auc'"):
        training.TrainConfig(monitor="val_auc")
    with pytest.raises(ValueError, match=r"warmup_epochs must be in 0..epochs-1, received warmup_epochs=3"):
        training.TrainConfig(epochs=3, warmup_epochs=3)


def test_cosine_schedule_warms_up_to_the_peak_then_decays_to_zero():
    config = training.TrainConfig(epochs=5, learning_rate=1e-2, schedule="cosine", warmup_epochs=1)
    rate = training.learning_rate_schedule(config, steps_per_epoch=10)
    assert float(rate(0)) == 0.0
    assert float(rate(5)) == pytest.approx(5e-3)
    assert float(rate(10)) == pytest.approx(1e-2)
    assert float(rate(30)) == pytest.approx(5e-3, rel=1e-5)  # halfway through the 40 decay steps
    assert float(rate(50)) == pytest.approx(0.0, abs=1e-9)
    assert training.learning_rate_schedule(training.TrainConfig(learning_rate=3e-3), 10) == 3e-3


def test_early_stopping_on_macro_f1_keeps_the_best_macro_f1_epoch(beats, tmp_path):
    training.set_seed(0)
    datasets = beats()
    model = models.separable_cnn_1d("32k", pw="stored")
    config = training.TrainConfig(epochs=3, seed=0, verbose=0, checkpoint_dir=str(tmp_path), monitor="val_macro_f1",
                                   schedule="cosine", warmup_epochs=1)
    history = training.fit(model, datasets["train"].take(4), datasets["val"].take(2), config)
    scores = history.history["val_macro_f1"]
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
    curve = training.learning_curve(history, config)
    assert curve["best_epoch"] == int(np.argmax(scores)) + 1
    assert curve["hit_max"] == (curve["best_epoch"] == 3) and curve["epochs_run"] == 3
    with np.load(tmp_path / training.STATE_FILE) as state:
        assert float(state["best"]) == -max(scores)  # kept as a quantity to minimize
    # fit leaves the model on the chosen epoch's weights: its macro-F1 on validation is that epoch's.
    from hyper_tinypw_tf import evaluation

    x = np.concatenate([np.asarray(b[0]) for b in datasets["val"].take(2)])
    y = np.concatenate([np.asarray(b[1]) for b in datasets["val"].take(2)])
    again = evaluation.macro_f1(y, np.argmax(model.predict(x, verbose=0).reshape(len(y), -1), axis=1), 2)
    assert again == pytest.approx(max(scores))


def test_square_root_class_weights_keep_a_rare_class_from_drowning_the_rest():
    labels = np.r_[np.zeros(9000), np.ones(1000), np.full(4, 2)].astype(int)
    inverse, root = training.balanced_class_weight(labels, 3), training.balanced_class_weight(labels, 3, 0.5)
    for weights in (inverse, root):  # both average 1 over the examples
        assert sum(weights[c] * n for c, n in enumerate((9000, 1000, 4))) == pytest.approx(len(labels))
    assert inverse[2] / inverse[0] == pytest.approx(9000 / 4)
    assert root[2] / root[0] == pytest.approx((9000 / 4) ** 0.5)
