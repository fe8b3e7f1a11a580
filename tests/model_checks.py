"""One shared helper for the round-trip tests: does a model still compute the same, with one generator?"""

from __future__ import annotations

import numpy as np

from hyper_tinypw_tf import HyperPWConv2D
from hyper_tinypw_tf._keras import keras


def generators_of(model: keras.Model) -> set[int]:
    """Identities of the generators used by the model's hyper layers (tfmot wrappers unwrapped)."""
    found = set()
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if isinstance(inner, HyperPWConv2D):
            found.add(id(inner.generator))
    return found


def generator_variable_count(model: keras.Model) -> int:
    """Generator variables among the model's weights (each variable once)."""
    names = {"w1", "b1", "w2", "b_shared"}
    return sum(1 for w in model.weights if w.name.split("/")[-1].split(":")[0] in names)


def assert_same_model(a: keras.Model, b: keras.Model, x: np.ndarray) -> None:
    """Same outputs bit for bit, one generator each, same count of generator variables."""
    np.testing.assert_array_equal(a(x, training=False).numpy(), b(x, training=False).numpy())
    assert len(generators_of(b)) == 1
    assert generator_variable_count(a) == generator_variable_count(b)
    assert len(a.trainable_weights) == len(b.trainable_weights)


def perturb(model: keras.Model, seed: int = 7) -> None:
    """Move every weight off its initial value, so a load that forgets one is caught."""
    rng = np.random.default_rng(seed)
    model.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in model.get_weights()])
