"""Sharing survives clone, save/load in every format, and tfmot's quantize_apply."""

import numpy as np
import pytest

from hyper_tinypw_tf import custom_objects, models, quantization
from hyper_tinypw_tf._keras import keras
from tests.model_checks import assert_same_model, generator_variable_count, generators_of, perturb


@pytest.fixture(scope="module")
def hyper_model():
    model = models.separable_cnn_1d("32k", pw="hyper")
    perturb(model)
    return model


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(3).normal(size=(4, 256, 1, 1)).astype("float32")


def test_model_has_one_generator(hyper_model):
    assert len(generators_of(hyper_model)) == 1
    assert generator_variable_count(hyper_model) == 3


def test_clone_model_gets_its_own_shared_generator(hyper_model, batch):
    clone = keras.models.clone_model(hyper_model)
    clone.set_weights(hyper_model.get_weights())
    assert_same_model(hyper_model, clone, batch)
    assert generators_of(clone).isdisjoint(generators_of(hyper_model)), "a clone must not alias the original"


@pytest.mark.parametrize("filename", ["model.keras", "model.h5", "saved_model"])
def test_save_and_load(hyper_model, batch, tmp_path, filename):
    path = str(tmp_path / filename)
    hyper_model.save(path)
    loaded = keras.models.load_model(path, custom_objects=custom_objects())
    assert_same_model(hyper_model, loaded, batch)
    assert generators_of(loaded).isdisjoint(generators_of(hyper_model))


def test_from_config_rebuilds_one_generator(hyper_model, batch):
    rebuilt = keras.Model.from_config(hyper_model.get_config(), custom_objects=custom_objects())
    rebuilt.set_weights(hyper_model.get_weights())
    assert_same_model(hyper_model, rebuilt, batch)


def test_quantize_apply_keeps_one_generator(hyper_model, batch):
    qat = quantization.quantize_model(hyper_model)
    assert len(generators_of(qat)) == 1
    assert generator_variable_count(qat) == generator_variable_count(hyper_model)
    # Fake quantization moves the logits by a few steps of the output quantizer's initial grid
    # (range [-6, 6] over 255 steps), never more.
    np.testing.assert_allclose(qat(batch).numpy(), hyper_model(batch).numpy(), atol=3 * 12 / 255)


@pytest.mark.parametrize("filename", ["qat.h5", "qat_saved_model"])
def test_quantized_model_save_and_load(hyper_model, batch, tmp_path, filename):
    # tfmot's QuantizeLayer does not load from the .keras format in tf_keras 2.21 (even for a plain
    # Conv2D model), so QAT models are saved as H5 or SavedModel.
    qat = quantization.quantize_model(hyper_model)
    path = str(tmp_path / filename)
    qat.save(path)
    with quantization.quantize_scope():
        loaded = keras.models.load_model(path)
    assert_same_model(qat, loaded, batch)


def test_qat_h5_keeps_the_generator_shared_and_saves_without_the_duplicates_warning(hyper_model, batch, tmp_path,
                                                                                     caplog):
    """tf_keras warns that shared variables "will be treated as separate" after an H5 reload; for the generator
    that is untrue (one generator, its variables used by every hyper layer), so ``save_model`` drops the warning."""
    import logging

    qat = quantization.quantize_model(hyper_model)
    warning = "Found duplicated `Variable`s"
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        qat.save(str(tmp_path / "plain.h5"))
    assert any(warning in r.getMessage() for r in caplog.records), "tf_keras's own save prints it"
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        quantization.save_model(qat, tmp_path / "qat.h5")
    assert not any(warning in r.getMessage() for r in caplog.records)
    with quantization.quantize_scope():
        loaded = keras.models.load_model(str(tmp_path / "qat.h5"))
    assert_same_model(qat, loaded, batch)
    # Shared after the reload: a change to the generator's first variable moves every generated layer.
    (generator,) = {getattr(layer, "layer", layer).generator for layer in loaded.layers
                    if hasattr(getattr(layer, "layer", layer), "generator")}
    first = generator.weights[0]
    first.assign(first + 0.5)
    assert not np.array_equal(loaded(batch).numpy(), qat(batch).numpy())
    assert generator_variable_count(loaded) == generator_variable_count(qat)
