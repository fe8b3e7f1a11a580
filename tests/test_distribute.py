"""hyper_tinypw_tf.training under tf.distribute: two logical CPUs, one generator, the single-device step.

Logical devices must be configured before TensorFlow initializes, so the checks run in a fresh
Python process (``_SCRIPT``) that prints one JSON line; this module asserts on it. Covered:
``training.distribution_strategy`` and ``training.fit``/``compile_model`` under MirroredStrategy (and
MultiWorkerMirroredStrategy, one worker), ``cli train --distribute``,
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
out["generator_variables"] = [len(gen.weights), sum(1 for v in mirrored.weights if any(v is g for g in gen.weights))]
out["generator_replicas"] = sorted({len(v.values) for v in gen.weights})

for model in (single, mirrored):
    training.compile_model(model, 1e-2)
    model.train_on_batch(x, y)
out["max_step_diff"] = max(float(np.max(np.abs(a - b))) for a, b in zip(single.get_weights(), mirrored.get_weights()))
out["max_step_change"] = max(float(np.max(np.abs(a - b))) for a, b in zip(single.get_weights(), build(0).get_weights()))

import tempfile
from pathlib import Path
ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
with tempfile.TemporaryDirectory() as tmp:
    history = training.fit(mirrored, ds, ds, training.TrainConfig(epochs=2, patience=5, checkpoint_dir=tmp, verbose=0))
    out["fit_epochs"] = len(history.history["loss"])
    out["checkpoint_files"] = sorted(p.name for p in Path(tmp).iterdir())
out["fit_still_mirrored"] = sorted({len(v.values) for v in gen.weights})

qat = quantization.quantize_model(mirrored)
training.compile_model(qat, 1e-3)
qat.fit(x, y, batch_size=8, epochs=1, verbose=0)
from hyper_tinypw_tf.export import api
data = api.export_model(qat, fmt="hyper")
out["exported_bytes"] = len(data)
out["tflite_magic"] = data[4:8].decode("ascii")
print("RESULT " + json.dumps(out))
'''

# MultiWorkerMirroredStrategy must exist before any other TensorFlow op: a process of its own.
_MULTI_WORKER = r'''
import json
import numpy as np
import tensorflow as tf

from hyper_tinypw_tf import training

strategy = training.distribution_strategy("multi_worker")  # one worker: no TF_CONFIG
from hyper_tinypw_tf import layers, models
from hyper_tinypw_tf._keras import keras
from tests.conftest_export import GENERATORS, TINY

with strategy.scope():
    keras.utils.set_random_seed(0)
    model = models.build_backbone(TINY, 2, pw="hyper", generator=GENERATORS["tiled"])
rng = np.random.default_rng(0)
x = rng.normal(size=(16, 256, 1, 1)).astype(np.float32)
y = (rng.random(16) < 0.5).astype(np.int64)
ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
before = model.get_weights()
history = training.fit(model, ds, ds, training.TrainConfig(epochs=1, verbose=0))
out = {
    "multi_worker": isinstance(model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy),
    "generators": len({id(l.generator) for l in model.layers if isinstance(l, layers.HyperPWConv2D)}),
    "loss_finite": bool(np.isfinite(history.history["loss"][0])),
    "moved": max(float(np.max(np.abs(a - b))) for a, b in zip(before, model.get_weights())),
}
print("RESULT " + json.dumps(out))
'''


def _run_script(script: str) -> dict:
    """Run ``script`` in a fresh Python (TensorFlow not yet initialized) and parse its RESULT line."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture(scope="module")
def result() -> dict:
    return _run_script(_SCRIPT)


def test_same_fit_runs_under_multi_worker_mirrored_strategy() -> None:
    out = _run_script(_MULTI_WORKER)
    assert out["multi_worker"] and out["generators"] == 1
    assert out["loss_finite"] and out["moved"] > 1e-4


def test_two_logical_devices_mirror_one_generator(result: dict) -> None:
    assert result["replicas"] == 2 and result["mirrored_strategy"] == "MirroredStrategy"
    assert result["generators"] == [1, 1]  # every generated PW layer uses one generator instance
    count, in_model = result["generator_variables"]
    assert count > 0 and in_model == count  # the model holds that one set once, not once per layer
    assert result["generator_replicas"] == [2]  # each generator variable is mirrored on both devices


def test_mirrored_step_matches_single_device_step(result: dict) -> None:
    assert result["max_step_change"] > 1e-4  # the step did move the weights
    assert result["max_step_diff"] < 1e-5


def test_fit_with_checkpoints_runs_under_the_strategy(result: dict) -> None:
    assert result["fit_epochs"] == 2 and result["fit_still_mirrored"] == [2]
    assert result["checkpoint_files"] == sorted([training.BEST_WEIGHTS_FILE, training.STATE_FILE])


def test_qat_and_export_work_on_the_distributed_model(result: dict) -> None:
    assert result["tflite_magic"] == "TFL3" and result["exported_bytes"] > 1000


def test_unknown_strategy_name_is_refused() -> None:
    with pytest.raises(ValueError, match=r"distribute must be one of \('none', 'mirrored', 'multi_worker'\)"):
        training.distribution_strategy("tpu")


def test_unknown_distribute_flag_is_one_cli_error(capsys) -> None:
    from hyper_tinypw_tf.app import cli

    assert cli.main(["train", "--distribute=tpu"]) == 2
    assert capsys.readouterr().err == (
        "hyper-tinypw train: error: flag --distribute=tpu: value should be one of <none|mirrored|multi_worker>\n")


def test_cli_train_distribute_mirrored_trains_and_saves(tmp_path: Path, shared_data: Path) -> None:
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "hyper_tinypw_tf.app.cli", "train", "--distribute=mirrored", "--preset=32k",
         "--records=101,106,108", "--epochs=1", "--batch_size=256", "--n_boot=10", f"--out={run}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run / "model.keras").stat().st_size > 0
    assert (run / "checkpoints" / training.STATE_FILE).is_file()
