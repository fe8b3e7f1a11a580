"""HyperPWConv2D: Conv2D parity, learning, argument validation and config round trips."""

import inspect
import json

import numpy as np
import pytest
import tensorflow as tf

from hyper_tinypw_tf import HyperPWConv2D, PaperGenerator, TiledGenerator, custom_objects, generators
from hyper_tinypw_tf._keras import keras


def _model(gen, c_in=24, filters=(32, 40)):
    inputs = keras.Input((16, 1, c_in))
    x = inputs
    for i, f in enumerate(filters):
        x = HyperPWConv2D(f, generator=gen, name=f"hpw{i}")(x)
    return keras.Model(inputs, x)


def test_signature_keeps_conv2d_arguments_and_defaults():
    conv = inspect.signature(keras.layers.Conv2D.__init__).parameters
    ours = inspect.signature(HyperPWConv2D.__init__).parameters
    kernel_args = {n for n in conv if n.startswith("kernel_") and n != "kernel_size"}
    for name, param in conv.items():
        if name in kernel_args:
            assert name not in ours, f"{name}: there is no kernel variable to configure"
            continue
        assert name in ours, f"HyperPWConv2D lacks Conv2D argument {name!r}"
        if name not in ("kernel_size", "self", "kwargs", "filters"):
            assert ours[name].default == param.default, name
    assert set(ours) - set(conv) == {"generator", "code_initializer", "code_regularizer"}


@pytest.mark.parametrize(
    "gen",
    [
        lambda: TiledGenerator(tile_size=8),
        lambda: TiledGenerator(tile_size=5, code_dim=3, hidden_dim=16),
        lambda: PaperGenerator(head="factorized", max_in_channels=64),
        lambda: PaperGenerator(head="dense", hidden_dim=8),
    ],
)
def test_output_equals_conv2d_with_the_generated_kernel(gen):
    layer = HyperPWConv2D(20, generator=gen(), activation="relu")
    x = tf.random.normal((3, 9, 2, 12))
    y = layer(x)
    layer.bias.assign(tf.random.normal((20,)))
    y = layer(x)
    kernel = tf.transpose(layer.generated_kernel())[None, None]
    conv = keras.layers.Conv2D(20, 1, activation="relu")
    conv.build(x.shape)
    conv.set_weights([kernel.numpy(), layer.bias.numpy()])
    np.testing.assert_allclose(y.numpy(), conv(x).numpy(), atol=1e-6)


@pytest.mark.parametrize("gen", [lambda: TiledGenerator(tile_size=4), lambda: PaperGenerator(hidden_dim=32)])
def test_trains_to_a_random_target_kernel(gen):
    layer = HyperPWConv2D(16, generator=gen())
    layer.build((None, 4, 1, 16))
    target = tf.constant(np.random.default_rng(0).normal(0, 0.3, (16, 16)), tf.float32)
    opt = keras.optimizers.Adam(0.01)
    variables = [w for w in layer.trainable_weights if w is not layer.bias]
    generator_before = layer.generator.w1.numpy().copy()

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((layer.generated_kernel() - target) ** 2)
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    for _ in range(3000):
        loss = step()
    assert float(loss) < 1e-3
    assert not np.allclose(generator_before, layer.generator.w1.numpy()), "the generator must learn too"


def test_layers_share_one_generator():
    gen = TiledGenerator()
    model = _model(gen)
    assert model.get_layer("hpw0").generator is model.get_layer("hpw1").generator is gen
    # codes of each layer + w1, b1, w2 once
    assert len(model.trainable_weights) == 2 * 2 + 3


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: HyperPWConv2D(0), "filters must be a positive integer, received filters=0"),
        (lambda: HyperPWConv2D(-3), "filters must be a positive integer"),
        (lambda: TiledGenerator(code_dim=0), "code_dim must be a positive integer, received code_dim=0"),
        (lambda: TiledGenerator(hidden_dim=-1), "hidden_dim must be a positive integer"),
        (lambda: TiledGenerator(code_bits=3), "code_bits must be 4 or 8"),
        (lambda: TiledGenerator(tile_size=0), "tile_size must be a positive integer"),
        (lambda: PaperGenerator(head="mlp"), "head must be 'dense' or 'factorized'"),
        (lambda: HyperPWConv2D(8, kernel_size=3), "only supports kernel_size=1"),
        (lambda: HyperPWConv2D(8, strides=2), "only supports strides=1"),
        (lambda: HyperPWConv2D(8, generator="nope"), "generator must be one of"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_input_channels_incompatible_with_tile_size_without_padding():
    layer = HyperPWConv2D(16, generator=TiledGenerator(tile_size=8, pad=False), name="pw_nopad")
    message = "'pw_nopad': input channels=12 is not a multiple of the generator's tile_size=8"
    with pytest.raises(ValueError, match=message):
        layer(tf.zeros((1, 4, 1, 12)))


def test_padding_counts_whole_tiles():
    layer = HyperPWConv2D(10, generator=TiledGenerator(tile_size=8, code_dim=4))
    layer(tf.zeros((1, 2, 1, 12)))
    assert layer.synthesis_weights["codes"].shape == (2 * 2, 4)


def test_wrong_input_rank_raises():
    with pytest.raises(ValueError, match='"pw_rank" is incompatible with the layer: expected ndim=4, found ndim=3'):
        HyperPWConv2D(8, name="pw_rank")(tf.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match="'pw_build' expects a 4D input"):
        HyperPWConv2D(8, name="pw_build").build((2, 5, 3))


def test_generator_shared_by_incompatible_layers_raises():
    gen = PaperGenerator(head="factorized", max_in_channels=16)
    inputs = keras.Input((4, 1, 16))
    x = HyperPWConv2D(32, generator=gen, name="ok")(inputs)
    message = "'too_wide': input channels=32 exceed the shared generator's max_in_channels=16"
    with pytest.raises(ValueError, match=message):
        HyperPWConv2D(8, generator=gen, name="too_wide")(x)


def test_conflicting_configs_under_one_shared_name_raise():
    gen = TiledGenerator(tile_size=8, shared_name="g_conflict")
    HyperPWConv2D(8, generator=gen, name="a")
    spec = generators.serialize(TiledGenerator(tile_size=4, shared_name="other"))
    spec["config"]["shared_name"] = "g_conflict"
    with pytest.raises(ValueError, match="generator 'g_conflict' is shared by layers with incompatible configs"):
        HyperPWConv2D(8, generator=spec, name="b")


def test_config_round_trip_is_lossless():
    layer = HyperPWConv2D(12, generator=TiledGenerator(tile_size=4, code_bits=4), activation="relu", use_bias=False)
    config = layer.get_config()
    clone = HyperPWConv2D.from_config(config)
    assert json.dumps(clone.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    again = keras.layers.deserialize(keras.layers.serialize(layer), custom_objects=custom_objects())
    assert json.dumps(again.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)


@pytest.mark.parametrize("cls", [TiledGenerator, PaperGenerator])
def test_generator_config_round_trip(cls):
    gen = cls(code_dim=3, hidden_dim=7, weight_bits=4)
    again = generators.deserialize(generators.serialize(gen))
    assert again.get_config() == gen.get_config()
    assert again is not gen
