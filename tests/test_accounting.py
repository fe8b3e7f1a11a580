"""Byte accounting: the formula spelled out, the large preset's claims, and refusals."""

import pytest

from hyper_tinypw_tf import HyperPWConv2D, TiledGenerator, accounting, models
from hyper_tinypw_tf._keras import keras


def test_byte_formula_of_a_small_hyper_model():
    gen = TiledGenerator(tile_size=4, code_dim=3, hidden_dim=5, code_bits=4)
    inputs = keras.Input((16, 1, 1))
    x = keras.layers.Conv2D(8, (7, 1), use_bias=False, name="stem")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.DepthwiseConv2D((3, 1), name="dw")(x)
    x = keras.layers.Conv2D(12, 1, name="pw1")(x)
    x = HyperPWConv2D(10, generator=gen, name="pw2")(x)
    x = HyperPWConv2D(6, generator=gen, name="pw3")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(3)(x)
    report = accounting.packed_bytes(keras.Model(inputs, x))
    per_channel = 4 + 4  # int32 bias + float32 scale
    stem = 7 * 8 + 8 * per_channel
    dw = 3 * 8 + 8 * per_channel
    pw1 = 8 * 12 + 12 * per_channel
    # pw2: 10x12 kernel -> 3x3 tiles of 4x4; pw3: 6x10 -> 2x3 tiles; int4 codes of 3 numbers.
    codes = (9 * 3 + 1) // 2 + (6 * 3) // 2
    params = (8 + 2) + (8 + 1)  # requant (2 x int32) + sign bits per layer (10 and 6 channels -> 2 + 1 bytes)
    generator = 3 * 5 + 5 * 4 + 5 * 16  # W1 int8, b1 int32, W2 int8
    hyper_meta = (10 + 6) * per_channel
    dense = 6 * 3 + 3 * 4 + 4  # kernel, int32 biases, one scale
    assert report.by_component == {
        "stem": 7 * 8,
        "depthwise": 3 * 8,
        "stored PW": 8 * 12,
        "generator": generator,
        "codes": codes,
        "synthesis params": params,
        "biases and per-channel scales": (8 + 8 + 12) * per_channel + hyper_meta + 3 * 4 + 4,
        "classifier": 6 * 3,
    }
    assert report.total == stem + dw + pw1 + codes + params + generator + hyper_meta + dense
    assert report.replaced_pw_bytes == 10 * 12 + 6 * 10
    assert report.bits_of("codes") == [4]


def test_shared_generator_is_counted_once():
    one = models.separable_cnn_1d("32k", pw="hyper", hyper_layers=[1])
    many = models.separable_cnn_1d("32k", pw="hyper")
    assert one.get_layer("pw2").generator is not many.get_layer("pw2").generator
    assert accounting.packed_bytes(one).by_component["generator"] == accounting.packed_bytes(many).by_component[
        "generator"
    ]


def test_large_preset_meets_the_compression_claims():
    stored = models.separable_cnn_1d("large", pw="stored")
    hyper = models.separable_cnn_1d("large", pw="hyper")
    s, h = accounting.packed_bytes(stored), accounting.packed_bytes(hyper)
    assert 1_300_000 <= s.total <= 1_500_000  # "about 1.4 MB INT8"
    assert s.pw_bytes >= 0.85 * s.total
    assert h.generated_bytes * 10 <= h.replaced_pw_bytes
    assert s.total >= 6.31 * h.total
    printed = []
    comparison = accounting.compare(stored, hyper, print_fn=printed.append)
    assert comparison.ratio == pytest.approx(s.total / h.total)
    assert f"{comparison.ratio:.2f}x" in printed[0]
    assert f"{h.generated_bytes:,} / {h.replaced_pw_bytes:,}" in printed[0]


@pytest.mark.parametrize("name", ["225k", "64k", "32k"])
def test_budget_presets_fit_their_budget_in_both_modes(name):
    budget = models.get_preset(name).budget
    for pw in ("stored", "hyper"):
        assert accounting.packed_bytes(models.separable_cnn_1d(name, pw=pw)).total <= budget


def test_table_lists_every_component_with_bits():
    table = accounting.packed_bytes(models.separable_cnn_1d("32k", pw="hyper")).table()
    for component in ("stem", "depthwise", "stored PW", "generator", "codes", "biases and per-channel scales",
                      "classifier", "total"):
        assert component in table
    assert "generated PW:" in table


def test_unknown_layer_raises():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.LSTM(4)(keras.layers.Reshape((8, 24))(inputs))
    with pytest.raises(ValueError, match="layer 'lstm' of type LSTM is not supported"):
        accounting.packed_bytes(keras.Model(inputs, x))


def test_unbuilt_model_raises():
    model = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="is not built"):
        accounting.packed_bytes(model)


def test_runtime_bill_counts_macs_and_kernel_sram():
    gen = TiledGenerator(tile_size=4, code_dim=3, hidden_dim=5)
    inputs = keras.Input((10, 1, 8))
    x = keras.layers.DepthwiseConv2D((3, 1), padding="same")(inputs)
    x = HyperPWConv2D(12, generator=gen)(x)
    x = keras.layers.Conv2D(6, 1)(x)
    bill = accounting.runtime_bill(keras.Model(inputs, x))
    assert bill.inference_macs == 10 * 8 * 3 + 10 * 8 * 12 + 10 * 12 * 6
    assert bill.synthesis_macs == (3 * 2) * (3 * 5 + 5 * 16)  # 3x2 tiles, MLP 3->5->16
    assert bill.cached_kernel_bytes == bill.stream_kernel_bytes == 12 * 8
