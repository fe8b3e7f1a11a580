"""hyper_tinypw_tf.keras3: the Keras 3 layer on TensorFlow and JAX, its kernels against tf_keras's, sharing, and
the to_tf_keras path into QAT, export and the TFLM op.

This process runs with TF_USE_LEGACY_KERAS=1 (conftest), where ``import keras`` is still Keras 3; the top-level
names' choice of Keras is checked in fresh processes, and the JAX backend in one with KERAS_BACKEND=jax.
"""

from __future__ import annotations

import inspect as pyinspect
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from hyper_tinypw_tf import generators, layers, models, quantization
from hyper_tinypw_tf import keras3 as k3
from hyper_tinypw_tf._keras import keras as tf_keras

ROOT = Path(__file__).resolve().parents[1]
# Float tolerance between a Keras 3 model and its tf_keras twin: the same kernels, summed by different
# convolution ops (measured max |diff| of the 32k and ds_cnn_s logits: at most 1.1e-7 on TensorFlow and JAX).
ATOL = 1e-5
SPECS = {
    "tiled": {"strategy": "tiled", "config": {"tile_size": 4, "code_dim": 3, "hidden_dim": 8}},
    "paper_dense": {"strategy": "paper", "config": {"head": "dense", "code_dim": 4, "hidden_dim": 8}},
    "paper_factorized": {"strategy": "paper", "config": {"head": "factorized", "hidden_dim": 8, "max_in_channels": 16}},
    "low_rank": {"strategy": "low_rank", "config": {"rank": 3, "code_bits": 4}},
}
SNIPPET = """
import keras, hyper_tinypw_tf as h
x = keras.Input((64, 1, 16))
y = h.HyperPWConv2D(32, generator=h.TiledGenerator(tile_size=8))(x)
print(tuple(y.shape), h.HyperPWConv2D.__module__)
"""
LEGACY_SNIPPET = """
import hyper_tinypw_tf as h
x = h.keras.Input((64, 1, 16))
y = h.HyperPWConv2D(32, generator=h.TiledGenerator(tile_size=8))(x)
print(tuple(y.shape), h.HyperPWConv2D.__module__)
"""


def _python(code: str, timeout: int = 600, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "KERAS_BACKEND")}
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**base, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
                         capture_output=True, text=True, check=False, timeout=timeout)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(("code", "env", "module"), [
    (SNIPPET, {}, "hyper_tinypw_tf.keras3.layers"),
    (LEGACY_SNIPPET, {"TF_USE_LEGACY_KERAS": "1"}, "hyper_tinypw_tf.layers"),
], ids=["keras3", "legacy"])
def test_top_level_names_follow_the_process_keras(code: str, env: dict, module: str) -> None:
    assert _python(code, **env) == f"(None, 64, 1, 32) {module}"


def test_signature_and_config_keys_are_tf_keras_layers() -> None:
    assert pyinspect.signature(k3.HyperPWConv2D.__init__) == pyinspect.signature(layers.HyperPWConv2D.__init__)
    ours = k3.HyperPWConv2D(8, generator=k3.TiledGenerator()).get_config()
    theirs = layers.HyperPWConv2D(8, generator=generators.TiledGenerator()).get_config()
    assert set(ours) == set(theirs)
    assert set(ours["generator"]["config"]) == set(theirs["generator"]["config"])


def _tf_keras_pair(spec: dict) -> tuple:
    """A tf_keras model of two layers sharing a generator with perturbed weights, and its Keras 3 twin."""
    gen = generators.deserialize(spec)
    x = tf_keras.Input((5, 1, 12))
    y = layers.HyperPWConv2D(16, generator=gen, name="a")(x)
    y = layers.HyperPWConv2D(10, generator=gen, name="b")(y)
    model = tf_keras.Model(x, y)
    rng = np.random.default_rng(0)
    model.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype) for w in model.get_weights()])
    return model, k3.to_keras3(model)


@pytest.mark.parametrize("quantize", [False, True], ids=["float", "qat"])
@pytest.mark.parametrize("spec", sorted(SPECS))
def test_kernels_equal_tf_keras(spec: str, quantize: bool) -> None:
    """The same weights make the same kernel in both Keras versions, float and fake-quantized (one source)."""
    model, twin = _tf_keras_pair(SPECS[spec])
    for name in ("a", "b"):
        ours = keras.ops.convert_to_numpy(twin.get_layer(name).generated_kernel(quantize))
        theirs = model.get_layer(name).generated_kernel(quantize).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    assert twin.get_layer("a").generator is twin.get_layer("b").generator


def _shared_model() -> keras.Model:
    gen = k3.TiledGenerator(tile_size=4)
    x = keras.Input((6, 1, 12))
    y = k3.HyperPWConv2D(16, generator=gen, name="a")(x)
    y = k3.HyperPWConv2D(16, generator=gen, activation="relu", name="b")(y)
    y = k3.HyperPWConv2D(8, generator=k3.LowRankGenerator(rank=2), name="c")(y)
    return keras.Model(x, y)


def _generators(model: keras.Model) -> list:
    return [model.get_layer(n).generator for n in ("a", "b", "c")]


def test_sharing_survives_config_clone_and_keras_file(tmp_path: Path) -> None:
    model = _shared_model()
    x = np.random.default_rng(1).normal(size=(3, 6, 1, 12)).astype("float32")
    rebuilt = {
        "from_config": keras.Model.from_config(model.get_config()),
        "clone_model": keras.models.clone_model(model),
    }
    model.save(tmp_path / "m.keras")
    rebuilt["load_model"] = keras.models.load_model(tmp_path / "m.keras")
    for how, other in rebuilt.items():
        a, b, c = _generators(other)
        assert a is b and a is not c, how
        assert {id(g) for g in _generators(other)}.isdisjoint({id(g) for g in _generators(model)}), how
        assert len(other.trainable_variables) == len(model.trainable_variables) == 2 + 3 + 2 + 3, how
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(rebuilt["load_model"](x)),
                                  keras.ops.convert_to_numpy(model(x)))


def test_a_generator_of_the_other_keras_is_refused() -> None:
    with pytest.raises(ValueError, match=r"generator must be a Keras 3 generator for a Keras 3 layer, received a "
                                         r"tf_keras generator \(TiledGenerator\)"):
        k3.HyperPWConv2D(8, generator=generators.TiledGenerator())


def test_a_layer_the_exporter_does_not_lower_is_named() -> None:
    x = keras.Input((8, 4))
    model = keras.Model(x, keras.layers.Conv1D(4, 3, name="c1")(x))
    with pytest.raises(ValueError, match=r"to_tf_keras: layer 'c1' is a Conv1D, which the exporter does not lower"):
        k3.to_tf_keras(model)


def reference_flow(preset: str, out_dir: str) -> dict:
    """A Keras 3 model of a reference preset: train 4 steps, save/load .keras, convert to tf_keras.

    Runs on whatever backend this process has (the JAX test calls it in a subprocess). Returns
    numbers only, so the caller asserts.
    """
    keras.utils.set_random_seed(0)
    tf_model = (models.ds_cnn(preset, pw="hyper") if preset.startswith("ds_cnn")
                else models.separable_cnn_1d(preset, num_classes=2, pw="hyper"))
    model = k3.to_keras3(tf_model)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, *model.input_shape[1:])).astype("float32")
    y = rng.integers(0, model.output_shape[-1], 16)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses = [float(model.train_on_batch(x, y)) for _ in range(4)]
    path = Path(out_dir) / f"{preset}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    hyper = [layer for layer in loaded.layers if isinstance(layer, k3.HyperPWConv2D)]
    converted = k3.to_tf_keras(loaded)
    ours = keras.ops.convert_to_numpy(loaded(x))
    return {
        "backend": keras.backend.backend(),
        "losses": losses,
        "hyper_layers": len(hyper),
        "generators": len({id(layer.generator) for layer in hyper}),
        "reload_max_diff": float(np.max(np.abs(ours - keras.ops.convert_to_numpy(model(x))))),
        "tf_keras_max_diff": float(np.max(np.abs(ours - converted(x).numpy()))),
        "tf_keras_generators": len({id(layer.generator) for layer in converted.layers
                                    if isinstance(layer, layers.HyperPWConv2D)}),
    }


def _check_flow(result: dict, backend: str) -> None:
    assert result["backend"] == backend
    assert result["losses"][-1] < result["losses"][0], result["losses"]  # 4 steps on one batch lower its loss
    assert result["hyper_layers"] >= 3 and result["generators"] == 1 == result["tf_keras_generators"]
    assert result["reload_max_diff"] == 0.0
    assert result["tf_keras_max_diff"] <= ATOL


@pytest.mark.parametrize("preset", ["32k", "ds_cnn_s"])
def test_reference_models_train_save_and_convert_on_tensorflow(preset: str, tmp_path: Path) -> None:
    _check_flow(reference_flow(preset, str(tmp_path)), "tensorflow")


def test_reference_models_train_save_and_convert_on_jax(tmp_path: Path) -> None:
    pytest.importorskip("jax")  # the test extra installs it; without it this backend is not claimed
    code = ("import json; from tests.test_keras3 import reference_flow; "
            f"print(json.dumps([reference_flow(p, {str(tmp_path)!r}) for p in ('32k', 'ds_cnn_s')]))")
    for result in json.loads(_python(code, timeout=1800, KERAS_BACKEND="jax")):
        _check_flow(result, "jax")


def test_a_trained_keras3_model_exports_and_runs_in_tflm(tmp_path: Path) -> None:
    """to_tf_keras's model takes QAT with one generator, and its hyper file through the op equals its folded file."""
    from hyper_tinypw_tf.export import api
    from tflm_harness import run

    keras.utils.set_random_seed(0)
    model = k3.to_keras3(models.separable_cnn_1d("32k", num_classes=2, pw="hyper"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 256, 1, 1)).astype("float32")
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=False)  # XLA on CPU compiles longer than these few steps run
    model.fit(x, rng.integers(0, 2, 16), batch_size=8, epochs=1, verbose=0)
    converted = k3.to_tf_keras(model)
    qat = quantization.quantize_model(converted)
    assert len({id(layer.layer.generator) for layer in qat.layers
                if isinstance(getattr(layer, "layer", None), layers.HyperPWConv2D)}) == 1
    files = {}
    for fmt in ("folded", "hyper"):
        files[fmt] = tmp_path / f"{fmt}.tflite"
        files[fmt].write_bytes(api.export_model(converted, fmt=fmt, representative_data=x[:8]))
    examples = rng.integers(-128, 128, size=(4, 256, 1, 1), dtype=np.int8)
    np.testing.assert_array_equal(run.run(files["hyper"], examples).outputs, run.run(files["folded"], examples).outputs)
