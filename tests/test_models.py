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


@pytest.mark.parametrize(
    ("preset", "task", "shape", "classes"),
    [
        ("64k", "mitdb_v", (256, 1, 1), 2),
        ("32k", "mitdb_aami", (256, 1, 4), 5),  # RR features as three extra channels
        ("64k", "ptbxl", (1000, 1, 1), 2),  # 10 s at 100 Hz
        ("32k", "apnea", (6000, 1, 1), 2),  # one minute at 100 Hz
        ("ds_cnn_s", "speech_commands", (49, 10, 1), 12),
    ],
)
def test_preset_takes_the_dataset_input_shape(preset, task, shape, classes):
    import numpy as np

    model = models.for_task(preset, task, shape, classes, pw="hyper")
    assert model.input_shape == (None, *shape) and model.output_shape == (None, classes)
    # The preset fixes widths: every PW layer has the preset's channels whatever the input.
    spec = models.get_preset(preset)
    widths = [model.get_layer(f"pw{i + 1}").filters for i in range(len(spec.backbone.channels))]
    assert tuple(widths) == spec.backbone.channels
    assert model(np.zeros((2, *shape), "float32")).shape == (2, classes)


@pytest.mark.parametrize(
    ("preset", "task", "shape", "message"),
    [
        ("ds_cnn_s", "mitdb_v", (256, 1, 1), "preset 'ds_cnn_s' is for kws tasks; task 'mitdb_v' needs a ecg preset"),
        ("64k", "speech_commands", (49, 10, 1), r"task 'speech_commands' needs a kws preset, one of \['ds_cnn_l'"),
        ("64k", "ptbxl", (1000, 1), r"must be \(H, W, C\) with positive sizes, received input_shape=\(1000, 1\)"),
        ("nope", "ptbxl", (1000, 1, 1), "preset must be one of"),
    ],
)
def test_for_task_refuses_mismatches(preset, task, shape, message):
    with pytest.raises(ValueError, match=message):
        models.for_task(preset, task, shape, 2)


def test_kws_models_normalize_their_input_and_ecg_models_do_not():
    kws = models.ds_cnn("ds_cnn_s")
    assert [layer.name for layer in kws.layers[1:4]] == ["input_norm_columns", "input_norm", "input_norm_restore"]
    assert not kws.get_layer("input_norm").trainable
    ecg = models.separable_cnn_1d("32k")
    assert "input_norm" not in [layer.name for layer in ecg.layers]
    assert models.fit_input_normalization(ecg, [None]) is None


def test_fit_input_normalization_sets_per_column_mean_and_sd():
    import numpy as np

    model = models.ds_cnn("ds_cnn_s")
    rng = np.random.default_rng(0)
    scale = np.linspace(20.0, 1.0, 10)[None, None, :, None]
    shift = np.linspace(-15.0, 0.0, 10)[None, None, :, None]
    x = (rng.normal(size=(32, 49, 10, 1)) * scale + shift).astype("float32")
    # Identity before fitting: the layer starts as (x - 0) / 1.
    normalize = keras.Model(model.input, model.get_layer("input_norm").output)
    np.testing.assert_allclose(normalize.predict(x, verbose=0).reshape(x.shape), x, rtol=1e-6)
    stats = models.fit_input_normalization(model, [(x[:16], None), (x[16:], None)])
    columns = x.reshape(32 * 49, 10).astype(np.float64)
    np.testing.assert_allclose(stats, [columns.mean(0), columns.std(0) + 1e-3], rtol=1e-9)
    z = normalize.predict(x, verbose=0).reshape(32 * 49, 10)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.std(0), columns.std(0) / (columns.std(0) + 1e-3), rtol=1e-4)
    with pytest.raises(ValueError, match=r"examples must have shape \(49, 10, 1\), received x.shape=\(2, 49, 10\)"):
        models.fit_input_normalization(model, [x[:2, :, :, 0]])
    with pytest.raises(ValueError, match="batches is empty"):
        models.fit_input_normalization(model, [])


def test_qat_keeps_the_input_normalization_frozen(tmp_path):
    """quantize_apply rebuilds layers trainable; QAT must not move the train-split statistics."""
    import numpy as np

    from hyper_tinypw_tf import quantization, training

    model = models.ds_cnn("ds_cnn_s", pw="hyper")
    x = np.random.default_rng(0).normal(3.0, 5.0, size=(16, 49, 10, 1)).astype("float32")
    models.fit_input_normalization(model, [x])
    before = [w.copy() for w in model.get_layer("input_norm").get_weights()]
    qat = quantization.quantize_model(model)
    wrapper = next(layer for layer in qat.layers if getattr(layer, "layer", layer).name == "input_norm")
    training.compile_model(qat, 1e-2)
    qat.fit(x, np.arange(16) % 12, epochs=1, batch_size=8, verbose=0)
    after = wrapper.layer.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    qat.save(tmp_path / "qat.h5")
    with quantization.quantize_scope():
        reloaded = keras.models.load_model(tmp_path / "qat.h5")
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), qat.predict(x, verbose=0))


def test_batchnorm_momentum_settles_in_a_short_run():
    # 0.99 would leave half the initial statistics after 70 steps; the models use 0.9.
    model = models.ds_cnn("ds_cnn_s", pw="hyper")
    momenta = {layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {models.BN_MOMENTUM} == {0.9}
