"""The console script: its report command and its refusal of unknown commands."""

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
