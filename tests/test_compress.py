"""Post-training generation: a trained stored CNN → a hyper model on the same backbone within a byte budget.

One small stored ECG model (4 blocks, PW widths 64) is trained briefly on real MIT-BIH records and
compressed once for the module (``compress.run``: fit, distil, QAT, export, TFLM); the tests read
that run's files. The numbers they print are measurements, not thresholds.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hyper_tinypw_tf import accounting, inspect, models, quantization, training
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.app import compress, pipeline
from hyper_tinypw_tf.data import LoadOptions, default_data_dir, load
from hyper_tinypw_tf.export import interpreters
from hyper_tinypw_tf.layers import HyperPWConv2D
from tests.conftest_export import TINY

pytestmark = pytest.mark.usefixtures("shared_data")

RECORDS = ("106", "119", "208", "215", "223")  # patient-wise: three train records, one val, one test
SMALL = replace(TINY, channels=(16, 64, 64, 64), strides=((2, 2),) * 4)
BUDGET = 15_000  # the stored model's file is about 21 kB; its PW2-4 kernels alone are 8 kB
QUICK = {"fit_steps": 200, "trials": 2}
FINETUNE = compress.Finetune(epochs=1, qat_epochs=1, learning_rate=1e-3)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.mktemp("cache")
    return load("mitdb_v", default_data_dir("mitdb"), LoadOptions(download=False, cache_dir=cache), batch_size=256,
                records=RECORDS)


@pytest.fixture(scope="module")
def stored(data, tmp_path_factory: pytest.TempPathFactory) -> tuple[keras.Model, Path]:
    datasets, _ = data
    keras.utils.set_random_seed(0)
    model = models.build_backbone(SMALL, 2, pw="stored", name="small_stored")
    training.compile_model(model, 3e-3)
    model.fit(datasets["train"], epochs=2, verbose=0)
    training.recalibrate_batchnorm(model, datasets["train"])
    path = tmp_path_factory.mktemp("stored") / "stored.keras"
    model.save(path)
    return model, path


@pytest.fixture(scope="module")
def run(stored, data, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("compressed")
    summary = compress.run(stored[1], BUDGET, out, lambda: data, "tiled", FINETUNE, n_boot=20, **QUICK)
    return summary, out


@pytest.fixture(scope="module")
def targets(stored, data) -> dict[str, compress.Target]:
    x = compress.calibration_inputs(data[0]["train"], 256)
    return compress.capture_targets(stored[0], ["pw2", "pw3", "pw4"], x)


def _balanced_accuracy(model: keras.Model, dataset) -> float:
    x, y = pipeline.inputs_and_labels(dataset)
    pred = model.predict(x, batch_size=512, verbose=0).argmax(1)
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def test_hyper_file_fits_the_budget_and_its_byte_table(run) -> None:
    summary, out = run
    data = (out / "model_hyper.tflite").read_bytes()
    assert len(data) <= BUDGET
    assert summary["file_bytes"] == len(data)
    qat = pipeline.load_model(out / "model_qat.h5")
    assert accounting.packed_bytes(qat).total == summary["packed_bytes"]
    assert json.loads((out / "compress.json").read_text())["file_bytes"] == len(data)


def test_same_backbone_generates_pw2_on_and_keeps_every_other_weight(stored) -> None:
    model = compress.same_backbone(stored[0], {"strategy": "low_rank", "config": {"rank": 4}})
    hyper = [layer.name for layer in model.layers if isinstance(layer, HyperPWConv2D)]
    assert hyper == ["pw2", "pw3", "pw4"]
    for layer in model.layers:
        if layer.name not in hyper:
            for mine, theirs in zip(layer.get_weights(), stored[0].get_layer(layer.name).get_weights(), strict=True):
                np.testing.assert_array_equal(mine, theirs)
    assert accounting.runtime_bill(model).inference_macs == accounting.runtime_bill(stored[0]).inference_macs


def test_same_backbone_reads_a_qat_stored_model(stored, tmp_path: Path) -> None:
    path = tmp_path / "stored_qat.h5"
    quantization.quantize_model(stored[0]).save(path)
    qat = pipeline.load_model(path)
    assert inspect.is_qat(qat)
    generated = compress.same_backbone(qat, "tiled")
    from_float = compress.same_backbone(stored[0], "tiled")
    for layer in from_float.layers:
        if not isinstance(layer, HyperPWConv2D):
            for a, b in zip(generated.get_layer(layer.name).get_weights(), layer.get_weights(), strict=True):
                np.testing.assert_array_equal(a, b)


def test_candidate_bytes_are_the_byte_report_of_the_model_they_build(stored) -> None:
    for strategy in compress.STRATEGIES:
        every = compress.candidates(stored[0], strategy)
        for candidate in (every[0], every[len(every) // 2], every[-1]):
            model = compress.same_backbone(stored[0], candidate.generator)
            assert accounting.packed_bytes(model).total == candidate.packed_bytes, candidate.describe()


def test_tflm_outputs_equal_the_folded_file_and_track_the_keras_qat_model(run, data) -> None:
    _, out = run
    model_file = out / "model_hyper.tflite"
    x, y = pipeline.inputs_and_labels(data[0]["test"])
    folded, expanded = pipeline.tflm_runnable(model_file.read_bytes())
    assert expanded
    pipeline.check_through_op(model_file, folded, x)  # raises naming the first example that differs
    qat = pipeline.load_model(out / "model_qat.h5")
    keras_pred = qat.predict(x, batch_size=512, verbose=0).argmax(1)
    tflm_pred = interpreters.predict(folded, x, "tflm").argmax(1)
    assert abs(np.mean(keras_pred == y) - np.mean(tflm_pred == y)) <= 0.005


def test_fit_reproduces_the_stored_layers_better_than_a_fresh_init(run) -> None:
    summary, _ = run
    errors = summary["relative_output_error"]
    print(f"relative output error per layer, initial -> fitted: {errors}")
    assert set(errors["after"]) == {"pw2", "pw3", "pw4"}
    for name, after in errors["after"].items():
        assert after < errors["before"][name], name


def test_fitted_model_is_closer_to_the_stored_one_on_real_data_than_its_fresh_twin(stored, data, targets) -> None:
    datasets, _ = data
    model = compress.same_backbone(stored[0], {"strategy": "tiled", "config": {"tile_size": 4, "code_dim": 4,
                                                                               "hidden_dim": 32}})
    fresh = compress.scratch_like(model)
    report = compress.fit_generator(model, targets, steps=300)
    compress.absorb_gains(model, report.gains)
    training.recalibrate_batchnorm(model, datasets["train"])
    fitted, scratch, original = (_balanced_accuracy(m, datasets["val"]) for m in (model, fresh, stored[0]))
    print(f"val balanced accuracy: stored {original:.3f}, fitted (no training) {fitted:.3f}, fresh init {scratch:.3f}")
    x, _ = pipeline.inputs_and_labels(datasets["val"])
    teacher = stored[0].predict(x, batch_size=512, verbose=0)
    gaps = [float(np.mean((m.predict(x, batch_size=512, verbose=0) - teacher) ** 2)) for m in (model, fresh)]
    print(f"val logits' mean squared distance to the stored model's: fitted {gaps[0]:.4f}, fresh init {gaps[1]:.4f}")
    assert gaps[0] < gaps[1]


def test_compressed_file_scores_better_than_chance_in_tflm(run) -> None:
    summary, _ = run
    metrics = summary["tflm_test"]
    print(f"TFLM test metrics of the compressed file: {metrics['metrics']}")
    assert metrics["runtime"] == pipeline.OP_RUNTIME
    assert metrics["metrics"]["balanced_accuracy"] > 0.5


def test_low_rank_starts_at_the_best_rank_r_kernel_and_the_fit_keeps_it(stored, targets) -> None:
    model = compress.same_backbone(stored[0], {"strategy": "low_rank", "config": {"rank": 4}})
    fresh = compress.reconstruction_errors(model, targets)
    compress._low_rank_start(model, targets)
    start = compress.reconstruction_errors(model, targets)
    report = compress.fit_generator(model, targets, steps=50)
    for name in start:
        assert start[name] < fresh[name], name
        assert report.after[name] <= start[name] * 1.05, name  # int8 rounding aside, SVD is the float optimum


def test_a_budget_below_every_size_is_refused_naming_the_smallest(stored, targets, run) -> None:
    overhead = run[0]["measured_overhead"]  # measured by the run's own choice, on this backbone
    with pytest.raises(compress.BudgetError, match=r"budget=1,000 bytes is too small for any tiled generator on "
                                                   r"this backbone; the smallest feasible budget is [\d,]+ bytes"):
        compress.choose(stored[0], 1000, "tiled", targets, overhead=overhead)


def test_bad_arguments_are_refused(stored) -> None:
    with pytest.raises(ValueError, match="strategy must be one of"):
        compress.compress(stored[0], BUDGET, "dense", calibration=np.zeros((2, 256, 1, 1), np.float32), finetune=None)
    with pytest.raises(ValueError, match="'stem' is not a stored PW layer"):
        compress.same_backbone(stored[0], "tiled", generated=["stem"])


def test_cli_refuses_a_budget_too_small_in_one_line(stored, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hyper_tinypw_tf.app.cli", "compress", f"--model={stored[1]}", "--budget=1000",
         "--task=mitdb_v", f"--records={','.join(RECORDS)}", f"--out={tmp_path}"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("hyper-tinypw compress: error:")]
    assert len(errors) == 1
    assert re.search(r"budget=1,000 bytes is too small for any tiled generator .* smallest feasible budget is "
                     r"[\d,]+ bytes", errors[0])
    assert not (tmp_path / "model_hyper.tflite").exists()


def test_frontier_fit_point_is_a_hyper_file_within_its_budget(stored, data, tmp_path: Path, monkeypatch) -> None:
    """bench.frontier's ``fit_<stored point>_<bytes>``: the trained base point compressed, exported within the
    budget, its float hyper model kept for the runtime bill (a second call reads both back)."""
    import functools

    from bench import frontier

    monkeypatch.setattr(compress, "compress", functools.partial(compress.compress, **QUICK))
    base = frontier.Point("stored_small", "stored")
    point = frontier.resolve_points("mitdb_aami", [f"fit_stored_64k_{BUDGET}"])[-1]
    assert (point.kind, point.base, point.budget) == (frontier.FIT, "stored_64k", BUDGET)
    point = replace(point, base=base.name)
    datasets, info = data
    ctx = frontier.Context("mitdb_v", datasets, info, tmp_path, epochs=1, qat_epochs=0, n_boot=0, metrics=(),
                           log=lambda _: None)
    saved = frontier.folder(base.name, 0, ctx) / "model.keras"
    saved.parent.mkdir(parents=True)
    quantization.save_model(stored[0], saved)  # the trained base point, as _train_float leaves it
    output, model = frontier._model_file(point, 0, ctx, {base.name: base, point.name: point})
    assert pipeline.is_hyper(output.read_bytes()) and output.stat().st_size <= BUDGET
    assert accounting.runtime_bill(model).synthesis_macs > 0
    again, reread = frontier._model_file(point, 0, ctx, {base.name: base, point.name: point})
    assert again == output and reread.count_params() == model.count_params()
