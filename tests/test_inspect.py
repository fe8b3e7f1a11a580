"""hyper_tinypw_tf/inspect.py: one fold rule, one unwrap, used alike by QAT (quantization.py) and export/convert.py."""

from __future__ import annotations

import numpy as np
import pytest

from hyper_tinypw_tf import HyperPWConv2D, TiledGenerator, accounting, inspect, keras, quantization
from hyper_tinypw_tf.export import convert


def _model(relu_before_bn: bool = False) -> keras.Model:
    """pw_a → BN folds; pw_b → ReLU → BN does not (with ``relu_before_bn``); pw_c has no BN at all."""
    keras.utils.set_random_seed(0)
    gen = TiledGenerator(tile_size=4, code_dim=4, hidden_dim=8)
    x = keras.Input((8, 1, 8))
    y = HyperPWConv2D(8, generator=gen, use_bias=False, name="pw_a")(x)
    y = keras.layers.BatchNormalization(name="bn_a")(y)
    y = HyperPWConv2D(8, generator=gen, use_bias=False, name="pw_b", activation="relu" if relu_before_bn else None)(y)
    if relu_before_bn:
        y = keras.layers.BatchNormalization(name="bn_b")(y)
    y = HyperPWConv2D(8, generator=gen, use_bias=False, name="pw_c")(y)
    y = keras.layers.ReLU(name="relu_c")(y)
    model = keras.Model(x, y)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, 8), rng.normal(0, 0.1, 8), rng.normal(0, 0.1, 8),
                               rng.uniform(0.5, 2, 8)])
    return model


def _exported_folds(model: keras.Model) -> set[str]:
    return {gen.name for gen in convert.generated_layers(model) if not np.array_equal(gen.bn_factor, np.ones(8))}


def test_qat_and_export_fold_the_same_batchnorms() -> None:
    model = _model()
    assert {name: bn.name for name, bn in inspect.folded_batchnorms(model).items()} == {"pw_a": "bn_a"}
    assert _exported_folds(model) == {"pw_a"}
    qat = quantization.quantize_model(model)
    left_alone = {
        inspect.unwrap(layer).name for layer in qat.layers
        if isinstance(getattr(layer, "quantize_config", None), quantization.FoldedBatchNormQuantizeConfig)
    }
    assert left_alone == {"bn_a"}
    assert {name: bn.name for name, bn in inspect.folded_batchnorms(qat).items()} == {"pw_a": "bn_a"}
    assert _exported_folds(qat) == {"pw_a"}


def test_a_batchnorm_after_an_activation_folds_nowhere() -> None:
    # Export does not fold it; QAT used to leave it unquantized as if it did. Now QAT refuses it by name.
    model = _model(relu_before_bn=True)
    assert _exported_folds(model) == {"pw_a"}
    with pytest.raises(ValueError, match=r"BatchNormalization 'bn_b' after HyperPWConv2D 'pw_b' does not fold"):
        quantization.quantize_model(model)


def test_unwrap_and_quantize_input_read_a_qat_model_like_its_float_model() -> None:
    model = _model()
    qat = quantization.quantize_model(model)
    assert [inspect.unwrap(layer).name for layer in qat.layers if not inspect.is_quantize_input(layer)] == [
        layer.name for layer in model.layers
    ]
    assert sum(inspect.is_quantize_input(layer) for layer in qat.layers) == 1
    assert inspect.is_qat(qat) and not inspect.is_qat(model)
    assert accounting.packed_bytes(qat).total == accounting.packed_bytes(model).total


def test_unsupported_layer_is_named() -> None:
    x = keras.Input((8, 1, 8))
    model = keras.Model(x, keras.layers.LayerNormalization(name="ln")(x))
    assert not inspect.is_supported(model.get_layer("ln"))
    with pytest.raises(ValueError, match=r"convert: layer 'ln' of type LayerNormalization is not supported"):
        convert.check_layers(model)
