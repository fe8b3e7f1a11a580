"""The main job (hyper beside the stored CNN of the same budget) and ``evaluate``, through the CLI.

One tiny main run (preset 32k, 1 + 1 epochs, five records, the hyper model distilled from its
stored twin) is shared by the module: its files are what ``evaluate`` is run on, so the ``.tflite``
numbers of both must agree exactly.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hyper_tinypw_tf.app import pipeline

RECORDS = "106,119,208,215,223"
MAIN = ("main", "--preset=32k", "--epochs=1", "--qat_epochs=1", "--n_boot=30", f"--records={RECORDS}",
        "--batch_size=256", "--distill")
STAGES = [("twin", "train")] + [
    (side, stage) for side in ("stored", "hyper") for stage in ("train", "qat", "export", "tflm evaluation")
]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hyper_tinypw_tf.app.cli", *args], capture_output=True, text=True, timeout=900
    )


def _table(stdout: str) -> str:
    return stdout[stdout.index("mitdb_v, preset 32k"):]


@pytest.fixture(scope="module")
def main_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("main")
    result = _run(*MAIN, f"--out={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_main_prints_both_models_side_by_side_with_their_file_bytes(main_run) -> None:
    out, result = main_run
    summary = json.loads((out / "summary.json").read_text())
    files = {"stored": out / "stored" / "model_folded.tflite", "hyper": out / "hyper" / "model_hyper.tflite"}
    for side, path in files.items():
        assert summary[side]["file_bytes"] == path.stat().st_size
        assert set(summary[side]["evaluation"]["metrics"]) >= {"macro_f1", "balanced_accuracy", "roc_auc"}
    stored, hyper = files["stored"].stat().st_size, files["hyper"].stat().st_size
    line = next(row for row in _table(result.stdout).splitlines() if row.startswith("file bytes"))
    assert line.split()[2:] == [f"{stored:,}", f"{hyper:,}", f"{hyper - stored:+,}"]
    assert set(summary["difference"]) >= {"macro_f1", "balanced_accuracy", "roc_auc"}
    diff = summary["difference"]["macro_f1"]
    assert diff["difference"] == pytest.approx(
        summary["hyper"]["evaluation"]["metrics"]["macro_f1"] - summary["stored"]["evaluation"]["metrics"]["macro_f1"]
    )
    assert all(f"[{side}] {stage}: running" in result.stdout for side, stage in STAGES)


def test_training_logs_one_line_per_epoch_into_a_pipe(main_run) -> None:
    _, result = main_run
    epochs = re.findall(r"^epoch 1/1: loss=\S+ accuracy=\S+ val_loss=\S+ val_accuracy=\S+ val_macro_f1=\S+ \(\d+ s\)$",
                        result.stdout, re.M)
    assert len(epochs) == 5  # the twin (the teacher); train and QAT, stored and hyper
    assert "\r" not in result.stdout and "\x08" not in result.stdout and "Epoch 1/1" not in result.stdout


def test_main_skips_finished_stages_and_resumes_at_the_first_missing_file(main_run) -> None:
    out, first = main_run
    again = _run(*MAIN, f"--out={out}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert all(f"[{side}] {stage}: skipped, {out / side}" in again.stdout for side, stage in STAGES)
    assert "running" not in again.stdout
    assert _table(again.stdout) == _table(first.stdout)
    # A run killed after the hyper model's QAT: its export and evaluation run again, nothing else.
    hyper_file = out / "hyper" / "model_hyper.tflite"
    exported = hyper_file.read_bytes()
    hyper_file.unlink()
    (out / "hyper" / "tflm.npz").unlink()
    resumed = _run(*MAIN, f"--out={out}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ran = {(s, t) for s, t in STAGES if f"[{s}] {t}: running" in resumed.stdout}
    assert ran == {("hyper", "export"), ("hyper", "tflm evaluation")}
    assert hyper_file.read_bytes() == exported
    assert _table(resumed.stdout) == _table(first.stdout)


@pytest.mark.parametrize("side, name", [("stored", "model_folded.tflite"), ("hyper", "model_hyper.tflite")])
def test_evaluate_tflite_reproduces_the_main_jobs_numbers(main_run, side: str, name: str) -> None:
    out, _ = main_run
    result = _run("evaluate", f"--model={out / side / name}", f"--records={RECORDS}", "--n_boot=30",
                  "--batch_size=256")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    expected = json.loads((out / "summary.json").read_text())[side]["evaluation"]
    assert report["metrics"] == expected["metrics"] and report["ci"] == expected["ci"]
    assert report["threshold"] == expected["threshold"] and report["split"] == "test"
    assert report["runtime"] == (pipeline.OP_RUNTIME if side == "hyper" else "tflm")


@pytest.mark.parametrize("path", ["stored/model.keras", "hyper/model_qat.h5"])
def test_evaluate_keras_files(main_run, path: str) -> None:
    out, _ = main_run
    result = _run("evaluate", f"--model={out / path}", f"--records={RECORDS}", "--n_boot=10", "--batch_size=256")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    summary = json.loads((out / "summary.json").read_text())
    assert report["runtime"] == "keras" and report["n_examples"] == summary["n_test_examples"]
    assert report["threshold_source"].startswith("validation")
    assert 0.0 <= report["metrics"]["macro_f1"] <= 1.0 and len(report["ci"]["macro_f1"]) == 2


def test_evaluate_all_of_a_folder_used_as_test_data(main_run, tmp_path: Path, shared_data: Path) -> None:
    import wfdb

    from hyper_tinypw_tf.data.mitdb import AAMI_MAP

    out, _ = main_run
    records = ("106", "119", "223")
    for record in records:
        for suffix in ("hea", "dat", "atr"):
            (tmp_path / f"{record}.{suffix}").symlink_to(shared_data / "mitdb" / f"{record}.{suffix}")
    beats = sum(sum(s in AAMI_MAP for s in wfdb.rdann(str(tmp_path / r), "atr").symbol) for r in records)
    result = _run("evaluate", f"--model={out / 'stored' / 'model_folded.tflite'}", f"--data_dir={tmp_path}",
                  "--split=all", "--n_boot=10")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert (report["split"], report["n_examples"], report["n_groups"]) == ("all", beats, 3)
    assert report["threshold_source"] == "fixed"


def test_evaluate_a_speech_commands_folder_that_is_all_test_data(tmp_path: Path, shared_data: Path) -> None:
    from hyper_tinypw_tf import models

    clips = sorted((shared_data / "speech_commands" / "yes").glob("*.wav"))[:2] + sorted(
        (shared_data / "speech_commands" / "no").glob("*.wav"))[:3]
    for clip in clips:
        (tmp_path / "data" / clip.parent.name).mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / clip.parent.name / clip.name).symlink_to(clip)
    model = models.for_task("ds_cnn_s", "speech_commands", (49, 10, 1), 12, pw="stored")
    model.save(tmp_path / "kws.keras")
    result = _run("evaluate", f"--model={tmp_path / 'kws.keras'}", "--task=speech_commands",
                  f"--data_dir={tmp_path / 'data'}", "--split=all", "--n_boot=10")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["n_examples"] == 5 and report["per_class"]["yes"]["support"] == 2.0
    assert report["per_class"]["no"]["support"] == 3.0


def test_evaluate_refuses_a_missing_model_before_loading_data(tmp_path: Path) -> None:
    missing = tmp_path / "nope.keras"
    result = _run("evaluate", f"--model={missing}")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == f"hyper-tinypw evaluate: error: --model={missing}: no such file"
    result = _run("evaluate")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "hyper-tinypw evaluate: error: --model is required: a .keras, .h5 or .tflite model to score"
    )


def test_main_cv_tests_every_record_once_and_pairs_the_two_models_over_all_folds(tmp_path: Path) -> None:
    """``main --protocol=cv:3`` on three records: one main job per fold, test predictions pooled."""
    records = ("106", "119", "208")
    result = _run("main", "--preset=32k", "--epochs=1", "--qat_epochs=0", "--n_boot=30", "--protocol=cv:3",
                  f"--records={','.join(records)}", "--batch_size=256", f"--out={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["folds"], summary["protocol"], summary["n_test_groups"]) == (3, "cv:3", 3)
    tested = []
    for fold in range(3):
        with np.load(tmp_path / f"fold{fold}" / "stored" / "tflm.npz") as z:
            tested += sorted(set(z["test_groups"].tolist()))
    assert sorted(tested) == sorted(records)  # every record tested exactly once
    total = sum(len(np.load(tmp_path / f"fold{f}" / "hyper" / "tflm.npz")["test_labels"]) for f in range(3))
    assert summary["n_test_examples"] == total
    assert len(summary["stored"]["evaluation"]["threshold"]) == 3  # each fold's own validation threshold
    diff = summary["difference"]["macro_f1"]
    assert diff["difference"] == pytest.approx(
        summary["hyper"]["evaluation"]["metrics"]["macro_f1"] - summary["stored"]["evaluation"]["metrics"]["macro_f1"]
    )
    assert "(test predictions of the 3 folds pooled)" in result.stdout
    assert "CAUTION: 3 test groups are too few" in result.stdout
