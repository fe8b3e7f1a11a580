"""The console script: its report command and its refusal of unknown commands."""

import json
import subprocess
import sys


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "hyper_tinypw_tf.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_report_prints_the_same_backbone_comparison():
    result = _run("report", "--preset=large")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "same-backbone ratio (stored / hyper):" in result.stdout
    assert "generated part / PW bytes it replaces:" in result.stdout


def test_unknown_command_prints_usage():
    result = _run("fly")
    assert result.returncode == 2
    assert "Commands" in result.stdout


def test_export_and_expand_commands(tmp_path, shared_data):
    from hyper_tinypw_tf import models

    model = models.separable_cnn_1d("32k", pw="hyper")
    saved = tmp_path / "float.keras"
    model.save(saved)
    out = tmp_path / "out"
    refused = _run("export", f"--model={saved}", f"--out={out}", "--format=hyper")
    assert refused.returncode == 2
    assert "hyper-tinypw export: error: convert: model" in refused.stderr and "needs calibration" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not out.exists() or not any(out.iterdir()), "a refused export must leave no file"
    data_dir = shared_data / "mitdb"
    done = _run(
        "export", f"--model={saved}", f"--out={out}", "--format=hyper", "--c_array=model_data",
        f"--data_dir={data_dir}", "--records=106,119,208,215", "--batch_size=32",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    hyper = out / "model_hyper.tflite"
    assert "flatbuffer overhead" in done.stdout and f"{hyper.stat().st_size:,}" in done.stdout
    assert (out / "model_data.h").exists() and (out / "model_data.cc").exists()
    expanded = tmp_path / "expanded.tflite"
    result = _run("expand", f"--input={hyper}", f"--output={expanded}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert expanded.stat().st_size > hyper.stat().st_size


def test_main_job_runs_end_to_end_on_a_few_records(tmp_path):
    out = tmp_path / "artifacts"
    result = _run(
        "main", f"--out={out}", "--preset=32k", "--epochs=1", "--qat_epochs=1", "--n_boot=20",
        "--records=106,119,203,208,215,223", "--batch_size=256",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("model.keras", "model_qat.h5", "model_folded.tflite", "model_hyper.tflite", "summary.json"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"float", "qat", "folded_tflite_tflm"}
    # One epoch on six records gives a weak model, so only the pipeline is checked here; the folded
    # file's agreement with the QAT model is asserted on a trained model in test_export_folded.py.
    assert all(0.0 <= summary[k]["roc_auc"] <= 1.0 for k in summary)
    assert "same-backbone ratio (stored / hyper):" in result.stdout
    assert "Runtime bill of the hyper model" in result.stdout
