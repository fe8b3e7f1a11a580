"""kernels.py's ``init`` option: hyperfan_in starts every generated PW kernel at He's variance for its own layer.

One shared generator makes kernels for layers of 40 to 512 input channels; with ``init="default"`` they all start
at one scale. The test builds the presets' hyper models and measures each layer's kernel variance at
initialization against He's ``2/C_in``. Measured by this computation at seed 0 (``var(K)·C_in/2``):
hyperfan_in gives 0.94-1.06 for every layer of 64k, large and ds_cnn_m with each strategy. "default" gives tiled
0.79 (C_in 64) to 3.26 (C_in 256) on 64k, 1.23 (C_in 96) to 6.54 (C_in 512) on large, 2.12-2.19 on ds_cnn_m (all
C_in 172: the closest miss, deterministic at seed 0); paper 0.000-0.006; low_rank 0.015-0.058.
"""

from __future__ import annotations

import keras  # Keras 3 (tf_keras is _keras.keras)
import numpy as np
import pytest

from hyper_tinypw_tf import generators, kernels, low_rank, models, training
from hyper_tinypw_tf import keras3 as k3
from hyper_tinypw_tf._keras import keras as tf_keras
from hyper_tinypw_tf.layers import HyperPWConv2D

# hyperfan_in must land each layer within this factor of He's variance; it measured within 0.94-1.06.
BAND = (0.5, 2.0)
STRATEGIES = {
    "tiled": dict(models.PRESETS["64k"].generator["config"]),
    "paper": {"head": "factorized", "code_dim": 4, "hidden_dim": 32, "max_in_channels": 512},
    "low_rank": {"rank": 4},
}


def _spec(strategy: str, init: str) -> dict:
    return {"strategy": strategy, "config": {**STRATEGIES[strategy], "init": init}}


def _ratios(model) -> dict[str, tuple[int, float]]:
    """Each generated layer's C_in and its float kernel's variance over He's ``2/C_in``."""
    out = {}
    for layer in model.layers:
        if isinstance(layer, (HyperPWConv2D, k3.HyperPWConv2D)):
            kernel = np.asarray(layer.generated_kernel(False), np.float64)
            out[layer.name] = (layer.in_channels, float(np.var(kernel)) / kernels.he_variance(layer.in_channels))
    return out


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize("preset", ["64k", "large", "ds_cnn_m"])
def test_hyperfan_in_starts_each_kernel_at_he_variance(preset: str, strategy: str) -> None:
    backbone = models.get_preset(preset).backbone
    ratios = {}
    for init in kernels.INITS:
        training.set_seed(0)
        model = models.build_backbone(backbone, 5, pw="hyper", generator=_spec(strategy, init))
        ratios[init] = _ratios(model)
    assert len({c_in for c_in, _ in ratios[kernels.HYPERFAN_IN].values()}) >= (1 if preset == "ds_cnn_m" else 3)
    off = {name: r for name, (_, r) in ratios[kernels.HYPERFAN_IN].items() if not BAND[0] <= r <= BAND[1]}
    assert not off, f"hyperfan_in kernels off He's variance by more than {BAND}: {off}"
    assert any(not BAND[0] <= r <= BAND[1] for _, r in ratios[kernels.DEFAULT_INIT].values()), ratios


def test_hyperfan_in_narrow_layer_keeps_codes_in_range() -> None:
    """A tiled layer narrower than the reference fan-in keeps codes within their clip range, below He's variance."""
    training.set_seed(0)
    gen = generators.get(_spec("tiled", kernels.HYPERFAN_IN))
    x = tf_keras.Input((8, 1, 16))
    layer = HyperPWConv2D(64, generator=gen)
    layer(x)
    codes = np.asarray(layer.synthesis_weights["codes"])
    assert np.max(np.abs(codes)) <= gen.code_range
    c_in, ratio = _ratios(tf_keras.Model(x, layer.output))[layer.name]
    expected = c_in / kernels.HYPERFAN_REFERENCE_FAN_IN  # 2/32 reached instead of 2/16
    assert expected / 2 <= ratio <= 1.0, ratio


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_init_survives_config_in_both_kerases(strategy: str) -> None:
    """``init`` is in the generator's config: from_config and to_tf_keras keep it; the default adds no key."""
    assert "init" not in generators.get({"strategy": strategy, "config": STRATEGIES[strategy]}).get_config()
    gen = generators.get(_spec(strategy, kernels.HYPERFAN_IN))
    again = type(gen).from_config(gen.get_config())
    assert again.init == kernels.HYPERFAN_IN and again.structure() == gen.structure()

    training.set_seed(0)
    x = keras.Input((16, 1, 64))
    gen3 = k3.generators.FAMILY.get(_spec(strategy, kernels.HYPERFAN_IN))
    y = k3.HyperPWConv2D(128, generator=gen3, name="pw_a")(x)
    y = k3.HyperPWConv2D(96, generator=gen3, name="pw_b")(y)
    model = keras.Model(x, y)
    for name, (_, ratio) in _ratios(model).items():
        assert BAND[0] <= ratio <= BAND[1], (name, ratio)
    twin = k3.to_tf_keras(model)
    assert twin.get_layer("pw_a").generator.init == kernels.HYPERFAN_IN
    np.testing.assert_allclose(
        twin.get_layer("pw_b").generated_kernel(False), model.get_layer("pw_b").generated_kernel(False), atol=1e-6
    )


@pytest.mark.parametrize("cls", [generators.TiledGenerator, generators.PaperGenerator,
                                 low_rank.LowRankGenerator, k3.TiledGenerator, k3.LowRankGenerator])
def test_unknown_init_is_refused(cls: type) -> None:
    with pytest.raises(ValueError, match=r"init must be one of \('default', 'hyperfan_in'\), received init='he'"):
        cls(init="he")
