"""hyper_tinypw_tf.training under tf.distribute: two logical CPUs, one generator, the single-device step.

Logical devices must be configured before TensorFlow initializes, so the checks run in a fresh
Python process (``_SCRIPT``) that prints one JSON line; this module asserts on it. Covered:
``training.distribution_strategy`` and ``training.fit``/``compile_model`` under MirroredStrategy,
``quantization.quantize_model`` and ``export.api.export_model`` on the distributed result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hyper_tinypw_tf import training

ROOT = Path(__file__).resolve().parents[1]

_SCRIPT = r'''
import json
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from hyper_tinypw_tf import generators, layers, models, quantization, training
from hyper_tinypw_tf._keras import keras
from tests.conftest_export import GENERATORS, TINY


def build(seed):
    keras.utils.set_random_seed(seed)
    model = models.build_backbone(TINY, 2, pw="hyper", generator=GENERATORS["tiled"])
    for layer in model.layers:  # inference-mode BN: per-replica batch statistics would differ by design
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    return model


def generator_ids(model):
    return {id(layer.generator) for layer in model.layers if isinstance(layer, layers.HyperPWConv2D)}


rng = np.random.default_rng(0)
x = rng.normal(size=(16, 256, 1, 1)).astype(np.float32)
y = (rng.random(16) < 0.5).astype(np.int64)
out = {}

single = build(0)
strategy = training.distribution_strategy("mirrored")
with strategy.scope():
    mirrored = build(0)
mirrored.set_weights(single.get_weights())
out["replicas"] = strategy.num_replicas_in_sync
out["mirrored_strategy"] = type(mirrored.distribute_strategy).__name__
out["generators"] = [len(generator_ids(m)) for m in (single, mirrored)]
gen = next(layer.generator for layer in mirrored.layers if isinstance(layer, layers.HyperPWConv2D))
out["generator_variables"] = [len(gen.weights), sum(1 for v in mirrored.weights if "generator" in v.name)]
out["generator_replicas"] = sorted({len(v.values) for v in gen.weights})

for model in (single, mirrored):
    training.compile_model(model, 1e-2)
    model.train_on_batch(x, y)
out["max_step_diff"] = max(float(np.max(np.abs(a - b))) for a, b in zip(single.get_weights(), mirrored.get_weights()))
out["max_step_change"] = max(float(np.max(np.abs(a - b))) for a, b in zip(single.get_weights(), build(0).get_weights()))

qat = quantization.quantize_model(mirrored)
training.compile_model(qat, 1e-3)
qat.fit(x, y, batch_size=8, epochs=1, verbose=0)
from export import api
data = api.export_model(qat, fmt="hyper")
out["exported_bytes"] = len(data)
out["tflite_magic"] = data[4:8].decode("ascii")
print("RESULT " + json.dumps(out))
'''


@pytest.fixture(scope="module")
def result() -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_two_logical_devices_mirror_one_generator(result: dict) -> None:
    assert result["replicas"] == 2 and result["mirrored_strategy"] == "MirroredStrategy"
    assert result["generators"] == [1, 1]  # every generated PW layer uses one generator instance
    count, in_model = result["generator_variables"]
    assert count > 0 and in_model == count  # the model holds that one set once, not once per layer
    assert result["generator_replicas"] == [2]  # each generator variable is mirrored on both devices


def test_mirrored_step_matches_single_device_step(result: dict) -> None:
    assert result["max_step_change"] > 1e-4  # the step did move the weights
    assert result["max_step_diff"] < 1e-5


def test_qat_and_export_work_on_the_distributed_model(result: dict) -> None:
    assert result["tflite_magic"] == "TFL3" and result["exported_bytes"] > 1000


def test_unknown_strategy_name_is_refused() -> None:
    with pytest.raises(ValueError, match=r"distribute must be one of \('none', 'mirrored', 'multi_worker'\)"):
        training.distribution_strategy("tpu")
