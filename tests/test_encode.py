"""The Keras float/QAT path and the integer reference compute the same kernel."""

import numpy as np
import pytest
import tensorflow as tf

from hyper_tinypw_tf import HyperPWConv2D, PaperGenerator, TiledGenerator, encode, synthesis
from hyper_tinypw_tf.low_rank import LowRankGenerator

GENERATORS = {
    "tiled8": lambda: TiledGenerator(tile_size=8),
    "tiled_int4": lambda: TiledGenerator(tile_size=4, code_bits=4, weight_bits=4),
    "paper_factorized": lambda: PaperGenerator(head="factorized", hidden_dim=16, max_in_channels=48),
    "paper_dense": lambda: PaperGenerator(head="dense", hidden_dim=8),
    "low_rank": lambda: LowRankGenerator(rank=6),
    "low_rank_int4": lambda: LowRankGenerator(rank=6, code_bits=4, weight_bits=4),
}


def _layer(make, c_in=40, c_out=36):
    layer = HyperPWConv2D(c_out, generator=make())
    layer.build((None, 3, 1, c_in))
    rng = np.random.default_rng(5)
    for w in layer.trainable_weights:
        w.assign(w + rng.normal(0, 0.1, w.shape))
    return layer


def _device_kernel(layer, channel_factor=None):
    """The int8 kernel and float scales the device and the exporter make for ``layer``."""
    enc = encode.encode_generator(layer.generator)
    return encode.synthesize(enc, encode.encode_layer(layer, enc, channel_factor=channel_factor))


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_qat_kernel_matches_integer_synthesis(name):
    layer = _layer(GENERATORS[name])
    kernel, scales = _device_kernel(layer)
    simulated = layer.generated_kernel(quantize=True).numpy()
    # The simulation's per-channel grid is the device's, and the device requantizes with one
    # rounding, so the integers agree exactly. With int4 weights the hidden accumulators are small
    # integers, and exact ties of acc·127/peak occur; the device's 31-bit multiplier breaks them
    # one way and the float simulation the other, one step apart.
    as_int = synthesis.round_half_away(simulated / (np.max(np.abs(simulated), axis=1, keepdims=True) / 127))
    if layer.generator.weight_bits == 8:
        np.testing.assert_array_equal(as_int, kernel)
    else:
        assert np.abs(as_int - kernel).max() <= 1 and np.mean(as_int != kernel) < 0.1
    np.testing.assert_allclose(kernel * scales[:, None], simulated, rtol=0.02, atol=0.02 * np.abs(simulated).max())


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_dequantized_kernel_approximates_the_float_kernel(name):
    layer = _layer(GENERATORS[name])
    kernel, scales = _device_kernel(layer)
    float_kernel = layer.generated_kernel(quantize=False).numpy()
    error = np.abs(kernel * scales[:, None] - float_kernel).max()
    assert error < (0.3 if layer.generator.weight_bits == 4 else 0.1) * np.abs(float_kernel).max()


def test_every_row_reaches_127_and_signs_follow_batchnorm():
    layer = _layer(GENERATORS["tiled8"], c_in=16, c_out=8)
    factor = np.array([1.0, -2.0, 0.5, 1.0, -1.0, 3.0, 1.0, 1.0])
    kernel, scales = _device_kernel(layer, factor)
    plain, plain_scales = _device_kernel(layer)
    assert (np.abs(kernel).max(axis=1) == 127).all()
    np.testing.assert_array_equal(kernel, np.where(factor[:, None] < 0, -plain, plain))
    np.testing.assert_allclose(scales, plain_scales * np.abs(factor), rtol=1e-6)
    folded = tf.transpose(layer.generated_kernel()).numpy().T * factor[:, None]
    np.testing.assert_allclose(kernel * scales[:, None], folded, atol=0.02 * np.abs(folded).max())


def test_channel_factor_shape_is_checked():
    layer = _layer(GENERATORS["tiled8"], c_in=16, c_out=8)
    enc = encode.encode_generator(layer.generator)
    with pytest.raises(ValueError, match="channel_factor for .* needs shape \\(8,\\)"):
        encode.encode_layer(layer, enc, channel_factor=np.ones(3))
