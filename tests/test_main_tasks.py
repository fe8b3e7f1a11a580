"""``hyper-tinypw main`` for every task beside ``mitdb_v`` (tests/test_pipeline.py covers that one).

Each run is tiny (1 + 1 epochs, the smallest preset of the task's family, few bootstrap resamples) and
exists to show that the task's input shape, labels and splits flow through both sides of the main job:
train, QAT, export, TFLM evaluation and the side-by-side table. Apnea-ECG has no shared copy, so its
WFDB records are written here; PTB-XL and Speech Commands use the shared copies.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from tests.test_data_apnea import write_record

SMALL = ("main", "--epochs=1", "--qat_epochs=1", "--n_boot=20", "--batch_size=128")
FILES = {"stored": "model_folded.tflite", "hyper": "model_hyper.tflite"}
METRICS = {"macro_f1": "macro-F1", "balanced_accuracy": "balanced accuracy", "roc_auc": "ROC-AUC"}  # table labels
# Ten records of six minutes, both classes in each, so that val and test (two records each) hold both.
APNEA = {f"a{i:02d}": pattern for i, pattern in enumerate(
    ("NNAANNA", "ANNANNA", "NAANNAN", "AANNANN", "NANANAN", "ANANANA", "NNAAANN", "AANNNAA", "NAANNNA", "ANNAANN"),
    start=1,
)}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hyper_tinypw_tf.app.cli", *args], capture_output=True, text=True, timeout=900
    )


def _check_main(out: Path, result: subprocess.CompletedProcess[str], task: str, preset: str) -> dict[str, Any]:
    """The outcome every task must reach: status 0, the table with both columns, both sides in summary.json."""
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout[result.stdout.index(f"{task}, preset {preset}"):].splitlines()
    assert table[1].split() == ["stored", "CNN", "hyper", "hyper", "-", "stored"]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["task"], summary["preset"]) == (task, preset)
    sizes = {side: (out / side / name).stat().st_size for side, name in FILES.items()}
    for side in FILES:
        assert summary[side]["file_bytes"] == sizes[side]
        metrics = summary[side]["evaluation"]["metrics"]
        assert all(math.isfinite(metrics[key]) for key in METRICS), metrics
    row = next(line for line in table if line.startswith("file bytes"))
    stored, hyper = sizes["stored"], sizes["hyper"]
    assert row.split()[2:] == [f"{stored:,}", f"{hyper:,}", f"{hyper - stored:+,}"]
    for key, name in METRICS.items():
        line = next(line for line in table if line.startswith(name))
        cells = re.findall(r"([+-]?\d+\.\d{3}) \[[^\]]*\]", line[len(name):])
        difference = summary["difference"][key]["difference"]
        assert math.isfinite(difference)
        assert cells == [f"{summary['stored']['evaluation']['metrics'][key]:.3f}",
                         f"{summary['hyper']['evaluation']['metrics'][key]:.3f}", f"{difference:+.3f}"]
    return summary


def test_main_mitdb_aami(tmp_path: Path, shared_data: Path) -> None:
    result = _run(*SMALL, "--task=mitdb_aami", "--preset=32k", "--records=106,119,208,215,223",
                  f"--out={tmp_path}")
    summary = _check_main(tmp_path, result, "mitdb_aami", "32k")
    assert set(summary["stored"]["evaluation"]["per_class"]) == {"N", "S", "V", "F", "Q"}


def test_main_apnea_on_written_wfdb_records(tmp_path: Path) -> None:
    data = tmp_path / "apnea-ecg"
    data.mkdir()
    for i, (name, symbols) in enumerate(APNEA.items()):
        write_record(data, name, symbols + "N", i)  # the trailing half minute is dropped by the loader
    # --mode=budget: the exporter caches what fits in 8 KB of SRAM and streams the rest.
    result = _run(*SMALL, "--task=apnea", "--preset=32k", f"--data_dir={data}", f"--out={tmp_path / 'out'}",
                  "--mode=budget", "--sram_budget=8192")
    summary = _check_main(tmp_path / "out", result, "apnea", "32k")
    assert summary["n_test_groups"] == 2 and summary["n_test_examples"] == 2 * 7
    from tflm_harness import fit

    ops = fit.hyper_ops((tmp_path / "out" / "hyper" / FILES["hyper"]).read_bytes())
    cached = sum(o.c_out * o.c_in for o in ops if o.mode != "stream")
    assert {o.mode for o in ops} == {"boot", "stream"} and 0 < cached <= 8192


def test_main_ptbxl_on_the_shared_copy(tmp_path: Path, shared_data: Path) -> None:
    result = _run(*SMALL, "--task=ptbxl", "--preset=32k", f"--out={tmp_path}")
    summary = _check_main(tmp_path, result, "ptbxl", "32k")
    assert list(summary["stored"]["evaluation"]["per_class"]) == ["NORM", "abnormal"]
    # With 3 training steps an epoch, BatchNorm's moving statistics once stayed near their initial
    # values and every test example got the same logits; precise BN (training.recalibrate_batchnorm) fixed it.
    for side in FILES:
        logits = np.load(tmp_path / side / "tflm.npz")["test_logits"]
        assert len(np.unique(logits, axis=0)) > len(logits) // 2, side


def test_main_speech_commands_on_the_shared_copy(tmp_path: Path, shared_data: Path) -> None:
    result = _run(*SMALL, "--task=speech_commands", "--preset=ds_cnn_s", "--kws_split=speakers:15,15",
                  f"--out={tmp_path}")
    summary = _check_main(tmp_path, result, "speech_commands", "ds_cnn_s")
    assert len(summary["hyper"]["evaluation"]["per_class"]) == 12  # 10 words, silence, unknown
