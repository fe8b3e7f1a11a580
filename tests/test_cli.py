"""The console script: its report command and its refusal of unknown commands."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "hyper_tinypw_tf.app.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_report_prints_the_same_backbone_comparison():
    result = _run("report", "--preset=large")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "same-backbone ratio (stored / hyper):" in result.stdout
    assert "generated part / PW bytes it replaces:" in result.stdout


@pytest.mark.parametrize(("task", "classes"), [("mitdb_aami", 5), ("mitdb_v", 2)])
def test_report_builds_the_task_s_classifier(capsys, task, classes):
    """The class count comes from the task registry: the 32k preset's last 192 channels x the task's classes."""
    from hyper_tinypw_tf.app import cli

    assert cli.main(["report", "--preset=32k", f"--task={task}"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"32k on {task} ({classes} classes)")
    assert re.search(rf"^classifier +8 +{192 * classes:,}$", out, re.MULTILINE), out


def test_every_readme_command_line_parses():
    """Each `hyper-tinypw` line of the README (optional [--flags] included) gives only flags its command takes."""
    from hyper_tinypw_tf.app import cli

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    lines = [line.split("#")[0] for line in readme.splitlines() if line.startswith("hyper-tinypw ")]
    assert len(lines) >= 15
    for line in lines:
        command, *args = line.replace("[", " ").replace("]", " ").split()[1:]
        args = [a.split("|")[0] for a in args if a.startswith("--")]  # --split=test|val|all: the first choice
        cli.parse(command, args)


def test_unknown_command_prints_usage():
    result = _run("fly")
    assert result.returncode == 2
    assert "hyper-tinypw: error: unknown command 'fly'; usage: hyper-tinypw COMMAND" in result.stderr
    assert result.stdout == ""


def test_train_qat_export_expand_as_the_readme_shows(tmp_path, shared_data, capsys):
    """The README's path through the console script, both formats, on a few records; expand gives the folded file.

    Then the LUT peer from the same trained model: cluster (with cluster-preserving QAT), export --lut_bits
    (bytes = file, fewer than folded).
    """
    from hyper_tinypw_tf.app import cli
    from hyper_tinypw_tf.export import _flatbuffer as fb
    from hyper_tinypw_tf.export import api, interpreters

    records = "--records=101,106,119,208,215"
    run, qat = tmp_path / "R", tmp_path / "Q"
    common = (records, "--batch_size=256", "--n_boot=10")
    steps = [
        ("train", "--preset=32k", *common, "--epochs=1", f"--out={run}"),
        ("qat", f"--model={run / 'model.keras'}", *common, "--qat_epochs=1", f"--out={qat}"),
        ("export", f"--model={qat / 'model_qat.h5'}", "--format=hyper", f"--output={qat / 'm_hyper.tflite'}"),
        ("export", f"--model={qat / 'model_qat.h5'}", "--format=folded", f"--output={qat / 'm_folded.tflite'}"),
        ("expand", f"--input={qat / 'm_hyper.tflite'}", f"--output={qat / 'm_expanded.tflite'}"),
    ]
    for step in steps:
        result = _run(*step)
        assert result.returncode == 0, (step, result.stderr[-3000:])
        assert "Traceback" not in result.stderr
        if step[0] == "export":
            size = Path(step[-1].split("=", 1)[1]).stat().st_size
            assert f"{size:,}" in result.stdout, "the byte table's total is the file size"
    folded = (qat / "m_folded.tflite").read_bytes()
    assert (qat / "m_expanded.tflite").read_bytes() == folded
    assert len((qat / "m_hyper.tflite").read_bytes()) < len(folded)

    # LUT: an unclustered model is refused by tensor name; a clustered one exports to fewer bytes and runs in TFLM.
    lut, clustered = tmp_path / "L", tmp_path / "L" / "model_clustered_qat.h5"
    unclustered = (f"--model={qat / 'model_qat.h5'}", f"--output={tmp_path / 'x.tflite'}")
    assert cli.main(["export", *unclustered, "--lut_bits=2"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"tensor '\S+' has \d+ distinct values .* \(hyper-tinypw cluster --clusters=4", err), err
    assert cli.main(["export", *unclustered, "--lut_bits=9"]) == 2
    assert "lut_bits must be one of (1, 2, 3, 4, 5, 6, 7)" in capsys.readouterr().err
    cluster = ("cluster", f"--model={run / 'model.keras'}", *common, "--clusters=4", "--epochs=1", f"--out={lut}")
    assert cli.main(list(cluster)) == 0  # then one epoch of cluster-preserving QAT (--qat_epochs defaults to 1)
    assert "--lut_bits=2 (no data needed" in capsys.readouterr().out
    # The trained model is a hyper model (train's default --pw): its stored 1x1 layers (PW1, classifier) are clustered.
    for bits in (None, 2):
        output = lut / f"m_hyper_{bits}.tflite"
        assert cli.main(["export", f"--model={clustered}", "--format=hyper", *([f"--lut_bits={bits}"] if bits else []),
                         f"--output={output}"]) == 0
        assert f"{output.stat().st_size:,}" in capsys.readouterr().out, "the byte table's total is the file's size"
    plain, compressed = (lut / "m_hyper_None.tflite").read_bytes(), (lut / "m_hyper_2.tflite").read_bytes()
    assert len(compressed) < len(plain)
    graph = fb.read(plain, "plain").subgraphs[0]
    x = np.random.default_rng(0).integers(-128, 128, (8, *graph.tensors[graph.inputs[0]].shape[1:]), dtype=np.int8)
    # DECODE runs in TFLM's interpreter: the expanded LUT file gives the expanded plain file's outputs.
    assert np.array_equal(interpreters.run_int8(api.expand(compressed), x), interpreters.run_int8(api.expand(plain), x))


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
