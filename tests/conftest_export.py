"""Shared builders for the export tests (imported by test_export_*.py, test_expand.py).

Builders are cached per process, not per pytest module, so the one QAT training run and the one
"large" conversion are shared by every test file that uses them.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass

import numpy as np
import pytest

from hyper_tinypw_tf import models, quantization, training
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.data.options import default_data_dir
from hyper_tinypw_tf.export import api, convert

MITDB = default_data_dir("mitdb")
# Patient-wise split of a few DS1 records: val is record 208 (2955 beats, 992 V).
RECORDS = ("101", "106", "119", "203", "208", "209", "215", "223")
TINY = models.Backbone(
    input_shape=(256, 1, 1), stem_channels=8, stem_kernel=(7, 1), stem_strides=(2, 2),
    channels=(16, 32, 32), strides=((2, 2), (2, 2), (2, 2)), dw_kernel=(7, 1),
)
GENERATORS = {
    "tiled": {"strategy": "tiled", "config": {"tile_size": 8, "code_dim": 4, "hidden_dim": 16}},
    "tiled_int4": {"strategy": "tiled", "config": {"tile_size": 8, "code_dim": 4, "hidden_dim": 16, "code_bits": 4,
                                                   "weight_bits": 4}},
    "paper_dense": {"strategy": "paper", "config": {"head": "dense", "code_dim": 4, "hidden_dim": 8}},
    "paper_factorized": {"strategy": "paper", "config": {"head": "factorized", "code_dim": 4, "hidden_dim": 16,
                                                         "max_in_channels": 32}},
    "paper_dense_int4": {"strategy": "paper", "config": {"head": "dense", "code_dim": 4, "hidden_dim": 8,
                                                         "code_bits": 4, "weight_bits": 4}},
    "paper_factorized_int4": {"strategy": "paper", "config": {"head": "factorized", "code_dim": 4, "hidden_dim": 16,
                                                              "max_in_channels": 32, "code_bits": 4, "weight_bits": 4}},
    "low_rank": {"strategy": "low_rank", "config": {"rank": 4}},
    "low_rank_int4": {"strategy": "low_rank", "config": {"rank": 4, "code_bits": 4, "weight_bits": 4}},
}
requires_mitdb = pytest.mark.usefixtures("shared_data")  # fails loudly if absent


@functools.cache
def ecg_splits() -> dict:
    """MIT-BIH V-vs-rest windows (N, 256, 1, 1) of a few records, from the project's loader."""
    from hyper_tinypw_tf.data import LoadOptions, load_arrays

    cache = tempfile.mkdtemp(prefix="htpw_export_cache_")
    arrays, _ = load_arrays("mitdb_v", MITDB, LoadOptions(download=False, cache_dir=cache), records=RECORDS)
    return arrays


def tiny_float_model(generator: str = "tiled", seed: int = 0) -> keras.Model:
    """An untrained tiny ECG model with PW2 and PW3 generated (BN statistics made non-trivial).

    Cached on the normalized arguments: each new generator gets the next Keras layer name
    (tiled_generator, tiled_generator_1, ...), which names tensors in the file, so the same call
    must return the same instance for exports to be comparable byte for byte.
    """
    return _tiny_float_model(generator, seed)


@functools.cache
def _tiny_float_model(generator: str, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = models.build_backbone(TINY, 2, pw="hyper", generator=GENERATORS[generator])
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([
                rng.uniform(0.5, 1.5, n) * rng.choice([-1.0, 1.0], n), rng.normal(0, 0.1, n),
                rng.normal(0, 0.1, n), rng.uniform(0.5, 2.0, n),
            ])
    return model


def calibration(n: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 256, 1, 1)).astype(np.float32)


def tiny_exports(generator: str = "tiled", mode: str = "boot") -> tuple[bytes, bytes]:
    """(folded, hyper) bytes of :func:`tiny_float_model`."""
    return _tiny_exports(generator, mode)


@functools.cache
def _tiny_exports(generator: str, mode: str) -> tuple[bytes, bytes]:
    model = tiny_float_model(generator)
    folded = convert.convert_model(model, representative_data=calibration())
    hyper = api.export_model(model, fmt="hyper", mode=mode, representative_data=calibration())
    return folded, hyper


@dataclass(frozen=True)
class Trained:
    qat: keras.Model
    folded: bytes
    hyper: bytes
    val_x: np.ndarray
    val_y: np.ndarray


@functools.cache
def trained_qat() -> Trained:
    """A tiny hyper model, trained briefly in float then with QAT on MIT-BIH, and its exports."""
    splits = ecg_splits()
    train = splits["train"]
    rng = np.random.default_rng(0)
    pick = rng.permutation(len(train.y))[:6000]
    x, y = train.x[pick], train.y[pick]
    keras.utils.set_random_seed(0)
    model = models.build_backbone(TINY, 2, pw="hyper", generator=GENERATORS["tiled"])
    training.compile_model(model, 3e-3)
    model.fit(x, y, batch_size=64, epochs=3, verbose=0)
    qat = quantization.quantize_model(model)
    training.compile_model(qat, 1e-3)
    qat.fit(x, y, batch_size=64, epochs=1, verbose=0)
    folded = api.export_model(qat, fmt="folded")
    hyper = api.export_model(qat, fmt="hyper")
    val = splits["val"]
    return Trained(qat, folded, hyper, val.x, val.y)


@functools.cache
def large_exports() -> tuple[keras.Model, bytes, bytes]:
    """The "large" preset, untrained (sizes only), as (model, folded, hyper)."""
    keras.utils.set_random_seed(0)
    model = models.separable_cnn_1d("large", pw="hyper")
    folded = api.export_model(model, fmt="folded", representative_data=calibration(4))
    hyper = api.export_model(model, fmt="hyper", representative_data=calibration(4))
    return model, folded, hyper
