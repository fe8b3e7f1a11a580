"""Reference backbones: structure, PW choice, presets."""

import pytest

from hyper_tinypw_tf import HyperPWConv2D, models
from hyper_tinypw_tf._keras import keras


def _pw_kinds(model):
    return {
        layer.name: type(layer).__name__
        for layer in model.layers
        if layer.name.startswith("pw") and not layer.name.endswith(("_bn", "_relu"))
    }


def test_separable_cnn_converts_to_conv_and_depthwise_blocks():
    model = models.separable_cnn_1d("32k", pw="stored")
    assert model.input_shape == (None, 256, 1, 1)
    assert model.output_shape == (None, 2)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("DepthwiseConv2D") == len(models.get_preset("32k").stored_backbone.channels)
    assert kinds[1] == "Conv2D" and kinds[-2:] == ["Conv2D", "Reshape"]  # 1x1-conv classifier, logits


def test_hyper_keeps_first_pw_stored_by_default():
    kinds = _pw_kinds(models.separable_cnn_1d("32k", pw="hyper"))
    assert kinds["pw1"] == "Conv2D"
    assert all(kind == "HyperPWConv2D" for name, kind in kinds.items() if name != "pw1")


def test_hyper_layers_choose_which_pw_are_generated():
    kinds = _pw_kinds(models.separable_cnn_1d("32k", pw="hyper", hyper_layers=[2, 4]))
    assert [n for n, k in kinds.items() if k == "HyperPWConv2D"] == ["pw3", "pw5"]
    everything = _pw_kinds(models.separable_cnn_1d("32k", pw="hyper", keep_first_pw=False))
    assert set(everything.values()) == {"HyperPWConv2D"}


def test_all_generated_layers_share_one_generator():
    model = models.ds_cnn("ds_cnn_s", pw="hyper")
    gens = {id(layer.generator) for layer in model.layers if isinstance(layer, HyperPWConv2D)}
    assert len(gens) == 1
    assert model.input_shape == (None, 49, 10, 1) and model.output_shape == (None, 12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pw": "both"}, "pw must be 'stored' or 'hyper'"),
        ({"pw": "hyper", "hyper_layers": [0]}, "keep_first_pw=True"),
        ({"pw": "hyper", "hyper_layers": [9]}, "hyper_layers must index PW blocks"),
        ({"preset": "huge"}, "preset must be one of"),
        ({"preset": "ds_cnn_s"}, "is a kws preset"),
        ({"num_classes": 1}, "num_classes must be at least 2"),
    ],
)
def test_bad_model_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.separable_cnn_1d(**{"preset": "32k", **kwargs})


def test_input_length_override():
    model = models.separable_cnn_1d("32k", input_length=360)
    assert model.input_shape == (None, 360, 1, 1)


def test_models_train_a_step():
    model = models.separable_cnn_1d("32k", pw="hyper")
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy())
    import numpy as np

    x = np.random.default_rng(0).normal(size=(8, 256, 1, 1)).astype("float32")
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(x, np.arange(8) % 2, epochs=1, verbose=0)
    changed = [not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights, strict=True)]
    assert all(changed)
