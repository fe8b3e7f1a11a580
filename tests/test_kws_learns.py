"""Keyword spotting learns on the shared Speech Commands copy, and the exported file normalizes as Keras does.

The copy holds official test-set speakers only, so it is split by a seeded speaker shuffle
(``--kws_split=speakers:15,15``). A short run must land far above chance (12 classes: 8.3%), with
the MFCC normalization learnt from the train split inside the model, and the exported int8 file
must see the same normalized inputs when fed raw MFCCs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hyper_tinypw_tf import data, models, quantization, training
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.data.options import default_data_dir

SC = default_data_dir("speech_commands")
SPLIT = "speakers:15,15"
CHANCE = 1 / 12


def _arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in dataset), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture(scope="module")
def trained(shared_data: Path):
    keras.utils.set_random_seed(0)
    datasets, info = data.load("speech_commands", SC, batch_size=64, seed=0, shuffle_train=True, split=SPLIT)
    model = models.for_task("ds_cnn_s", info.task, info.input_shape, info.num_classes, pw="stored")
    stats = models.fit_input_normalization(model, (x for x, _ in datasets["train"]))
    config = training.TrainConfig(epochs=5, learning_rate=2e-3, patience=5, verbose=0)
    training.fit(model, datasets["train"], datasets["val"], config)
    return model, datasets, info, stats


def test_normalization_holds_train_split_statistics(trained) -> None:
    model, datasets, _, stats = trained
    x, _ = _arrays(datasets["train"])
    columns = x.reshape(len(x), x.shape[1], -1).astype(np.float64)
    np.testing.assert_allclose(stats[0], columns.mean(axis=(0, 1)), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(stats[1], columns.std(axis=(0, 1)) + 1e-3, rtol=1e-9)
    # Training leaves the frozen layer alone: it still maps the train split to zero mean, unit sd.
    normalize = keras.Model(model.input, model.get_layer(models.NORM_LAYER).output)
    z = normalize.predict(x, verbose=0).reshape(len(x), x.shape[1], -1)
    np.testing.assert_allclose(z.mean(axis=(0, 1)), 0.0, atol=1e-3)
    np.testing.assert_allclose(z.std(axis=(0, 1)), 1.0, atol=2e-3)


def test_short_run_scores_far_above_chance(trained) -> None:
    model, datasets, _, _ = trained
    x, y = _arrays(datasets["val"])
    predicted = model.predict(x, verbose=0).argmax(axis=1)
    accuracy = float(np.mean(predicted == y))
    assert accuracy > 4 * CHANCE, accuracy
    # Not one class for every clip (the failure this guards against): most classes get predicted.
    assert len(np.unique(predicted)) >= 10


def test_exported_file_sees_the_same_normalized_inputs(trained) -> None:
    from hyper_tinypw_tf.export import _flatbuffer as fb
    from hyper_tinypw_tf.export import convert, interpreters

    model, datasets, _, stats = trained
    qat = quantization.quantize_model(model)
    training.fit(qat, datasets["train"].take(8), None, training.TrainConfig(epochs=1, learning_rate=2e-4, verbose=0))
    blob = convert.convert_model(qat)
    # The statistics are in the file: the normalization's int8 kernel is the QAT model's 1/sd per
    # column to within half a quantization step (QAT may nudge it; Keras and the file move together).
    model_t = fb.read(blob)
    subgraph = model_t.subgraphs[0]
    kernel = subgraph.tensors[fb.find_tensor(subgraph, f"{models.NORM_LAYER}/kernel")]
    q = np.frombuffer(fb.buffer_bytes(model_t, kernel), np.int8).astype(np.float64)
    scales = np.asarray(kernel.quantization.scale, np.float64)
    wrapper = qat.get_layer(f"quant_{models.NORM_LAYER}")
    in_qat = next(w.numpy() for w in wrapper.weights if w.name.endswith("depthwise_kernel:0")).ravel()
    np.testing.assert_allclose(q * scales, in_qat, rtol=0, atol=scales.max() / 2 + 1e-9)
    np.testing.assert_allclose(in_qat, 1.0 / stats[1], rtol=0.05)
    # Fed raw MFCCs, the file decides as the Keras QAT model does on real clips.
    x, y = _arrays(datasets["val"])
    on_device = interpreters.predict(blob, x, "tflm").argmax(axis=1)
    in_keras = qat.predict(x, verbose=0).argmax(axis=1)
    assert np.mean(on_device == in_keras) >= 0.95
    assert np.mean(on_device == y) > 4 * CHANCE
