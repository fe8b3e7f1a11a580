"""Every bad input to the CLI ends in exit status 2 and one line, ``hyper-tinypw COMMAND: error: ...``.

Most cases call ``cli.main`` in this process (the function the console script runs); a few run the
real console script, where TensorFlow's own C++ start-up log lines are the only other output.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from hyper_tinypw_tf import cli
from hyper_tinypw_tf.data.options import default_data_dir
from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import hyper
from tests.conftest_export import tiny_exports

MITDB = default_data_dir("mitdb")
# TensorFlow's native logging at import ("I0000 00:00:... port.cc:153] ..."), written before any of our code runs.
_TF_NATIVE_LOG = re.compile(
    r"^([IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\]|WARNING: All log messages before absl::InitializeLog"
    r"|To enable the following instructions:)"
)


def refused(capsys: pytest.CaptureFixture[str], command: str, *args: str) -> str:
    """Run ``hyper-tinypw command args`` in-process; assert exit 2 and one error line; return its message."""
    status = cli.main([command, *args])
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert status == 2, captured.err
    assert len(lines) == 1, lines
    prefix = f"hyper-tinypw {command}: error: "
    assert lines[0].startswith(prefix), lines[0]
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    return lines[0][len(prefix):]


@pytest.fixture()
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "a_file.txt"
    path.write_text("not a dataset, not a model\n")
    return path


@pytest.fixture()
def hyper_file(tmp_path: Path) -> Path:
    path = tmp_path / "model_hyper.tflite"
    path.write_bytes(tiny_exports("tiled")[1])
    return path


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("train", ["--nope=1"], "Unknown command line flag 'nope' (hyper-tinypw train --help lists the flags)"),
        ("train", ["--task=nope"], "flag --task=nope: value should be one of <mitdb_v|mitdb_aami|apnea|"),
        ("export", [], "--model is required: a QAT model"),
        ("expand", [], "--input is required: the hyper .tflite to expand"),
        ("qat", [], "--model is required: the trained model"),
        ("train", ["--batch_size=0"], "flag --batch_size=0: 0 is not a positive integer"),
        ("train", ["--epochs=0"], "flag --epochs=0: 0 is not a positive integer"),
        ("train", ["--learning_rate=0"], "flag --learning_rate=0.0: must be a positive number"),
        ("train", ["--seed=-1"], "flag --seed=-1: -1 is not a non-negative integer"),
        ("train", ["extra"], "unexpected argument 'extra' (flags are written --name=value)"),
        ("train", ["--task=mitdb_v", "--preset=ds_cnn_s"],
         "--preset=ds_cnn_s is for KWS input and --task=mitdb_v needs a preset for ECG input: one of 225k, 32k"),
        ("train", ["--task=speech_commands", "--preset=64k"],
         "--preset=64k is for ECG input and --task=speech_commands needs a preset for KWS input: one of ds_cnn"),
        ("main", ["--preset=nope"], "preset must be one of"),
        ("main", ["--mode=budget"], "--mode=budget needs --sram_budget=BYTES (SRAM for cached kernels)"),
        ("main", ["--sram_budget=4096"], "--sram_budget applies to --mode=budget, received --mode=boot"),
        ("report", ["--preset=nope"], "preset must be one of"),
        ("train", ["--records=101"], "--records=101 names 1 distinct record(s); a patient-wise split needs at least 3"),
        ("main", ["--records=101,101,101"], "--records=101,101,101 names 1 distinct record(s)"),
        ("train", ["--records=101,106,999"], "mitdb: 1 record(s) needed by this protocol are missing from"),
        ("train", ["--task=apnea"], "--task=apnea has no local copy here; pass --data_dir"),
        ("qat", ["--model=/nonexistent/model.keras"], "--model=/nonexistent/model.keras: no such file"),
        ("expand", ["--input=/nonexistent/m.tflite", "--output=x.tflite"],
         "--input=/nonexistent/m.tflite: no such file"),
    ],
)
def test_bad_arguments(capsys, shared_data, command: str, args: list[str], message: str) -> None:
    assert refused(capsys, command, *args).startswith(message)


def test_records_for_a_task_without_records(capsys, tmp_path) -> None:
    message = refused(capsys, "train", "--task=apnea", f"--data_dir={tmp_path}", "--records=a01,a02,a03")
    assert message == "--records applies to --task=mitdb_v or mitdb_aami, received --task=apnea"


def test_data_dir_that_is_a_file(capsys, a_file) -> None:
    message = refused(capsys, "train", f"--data_dir={a_file}")
    assert message == f"--data_dir={a_file} is a file, expected a dataset directory"


def test_out_in_a_file_or_unwritable_place(capsys, a_file) -> None:
    assert refused(capsys, "train", f"--out={a_file}") == f"--out={a_file} exists and is not a directory"
    assert refused(capsys, "qat", f"--model={a_file}", f"--out={a_file}/sub") == (
        f"--out={a_file}/sub: cannot create the directory (Not a directory)"
    )
    assert refused(capsys, "train", "--out=/proc/hyper_tinypw/out").startswith(
        "--out=/proc/hyper_tinypw/out: cannot create the directory"
    )


def test_output_in_a_missing_or_unwritable_directory(capsys, tmp_path, hyper_file) -> None:
    missing = tmp_path / "no" / "m.tflite"
    assert refused(capsys, "expand", f"--input={hyper_file}", f"--output={missing}") == (
        f"--output={missing}: the directory '{missing.parent}' does not exist"
    )
    assert refused(capsys, "export", f"--model={hyper_file}", f"--output={missing}") == (
        f"--output={missing}: the directory '{missing.parent}' does not exist"
    )
    assert refused(capsys, "expand", f"--input={hyper_file}", "--output=/proc/m.tflite").startswith(
        "--output=/proc/m.tflite: cannot write in '/proc'"
    )
    assert refused(capsys, "expand", f"--input={hyper_file}", f"--output={tmp_path}") == (
        f"--output={tmp_path} is a directory, expected a file name"
    )
    assert refused(capsys, "expand", f"--input={tmp_path}", "--output=x.tflite") == (
        f"--input={tmp_path} is a directory, expected a file"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_hyper.tflite"], "nothing may be written"


def test_export_of_a_file_that_is_no_model(capsys, tmp_path, a_file) -> None:
    message = refused(capsys, "export", f"--model={a_file}", f"--output={tmp_path / 'm.tflite'}")
    assert message == (
        f"--model={a_file}: not a loadable Keras model (Unable to synchronously open file (file signature not found))"
    )
    assert refused(capsys, "export", f"--model={a_file}", "--c_array=1bad") == (
        "c_array: name must be a C identifier, received name='1bad'"
    )


def _resealed(data: bytes, change) -> bytes:
    model_t = fb.read(data)
    change(model_t, model_t.subgraphs[0])
    return hyper.seal(fb.write(model_t))


def test_expand_of_bad_indices(capsys, tmp_path, hyper_file) -> None:
    data = hyper_file.read_bytes()

    def opcode(model_t, subgraph):
        subgraph.operators[1].opcodeIndex = 77

    def buffer(model_t, subgraph):
        subgraph.tensors[3].buffer = 4000

    out = tmp_path / "folded.tflite"
    for change, message in [(opcode, "hyper model: operator 1: opcode index 77 is out of range (the file has "),
                            (buffer, "hyper model: tensor 3 (")]:
        bad = tmp_path / "bad.tflite"
        bad.write_bytes(_resealed(data, change))
        assert refused(capsys, "expand", f"--input={bad}", f"--output={out}").startswith(message)
    assert not out.exists()


def test_expand_of_a_corrupt_or_truncated_file(capsys, tmp_path, hyper_file) -> None:
    data = bytearray(hyper_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "flipped.tflite"
    bad.write_bytes(bytes(data))
    assert refused(capsys, "expand", f"--input={bad}", f"--output={tmp_path / 'o.tflite'}").startswith(
        "hyper model: file CRC-32 mismatch"
    )
    bad.write_bytes(hyper_file.read_bytes()[:1000])
    assert refused(capsys, "expand", f"--input={bad}", f"--output={tmp_path / 'o.tflite'}").startswith("hyper model: ")


def test_expand_in_process_succeeds_and_reproduces_the_folded_file(capsys, tmp_path, hyper_file) -> None:
    out = tmp_path / "folded.tflite"
    assert cli.main(["expand", f"--input={hyper_file}", f"--output={out}"]) == 0
    assert out.read_bytes() == tiny_exports("tiled")[0]
    assert capsys.readouterr().err == ""


def test_flags_do_not_leak_between_in_process_runs(capsys, tmp_path, hyper_file) -> None:
    out = tmp_path / "folded.tflite"
    assert cli.main(["expand", f"--input={hyper_file}", f"--output={out}"]) == 0
    assert refused(capsys, "expand", f"--input={hyper_file}") == "--output is required: the folded .tflite to write"


def test_missing_data_dir_says_it_downloads_first_and_leaves_nothing(capsys, caplog, tmp_path, monkeypatch) -> None:
    import logging

    import wfdb

    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(wfdb, "dl_database", offline)
    target = tmp_path / "new" / "mitdb"
    with caplog.at_level(logging.WARNING, logger="hyper_tinypw_tf.data"):
        message = refused(capsys, "train", f"--data_dir={target}", f"--out={tmp_path / 'out'}")
    said = f"mitdb: no local copy in {target} (a new folder); downloading it from https://physionet.org/content/mitdb/"
    assert [r.getMessage() for r in caplog.records if said in r.getMessage()], "the download must be announced"
    assert message.startswith("Could not download mitdb from https://physionet.org/content/mitdb/ (OSError: Network")
    assert not target.exists()


# ---- the console script itself -----------------------------------------------------------------------


def _script(*args: str) -> tuple[int, list[str], str]:
    done = subprocess.run([sys.executable, "-m", "hyper_tinypw_tf.cli", *args], capture_output=True, text=True,
                          timeout=300)
    return done.returncode, [line for line in done.stderr.splitlines() if not _TF_NATIVE_LOG.match(line)], done.stdout


def test_script_bare_command_prints_one_usage_line() -> None:
    status, err, out = _script()
    assert status == 2 and out == ""
    assert len(err) == 1 and err[0].startswith("usage: hyper-tinypw COMMAND [--flag=value ...]"), err


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["fly"], "hyper-tinypw: error: unknown command 'fly'; usage: hyper-tinypw COMMAND"),
        (["train", "--colour=red"], "hyper-tinypw train: error: Unknown command line flag 'colour'"),
        (["expand", "--output=x.tflite"], "hyper-tinypw expand: error: --input is required"),
        (["train", "--task=mitdb_v", "--preset=ds_cnn_s"],
         "hyper-tinypw train: error: --preset=ds_cnn_s is for KWS input"),
    ],
)
def test_script_errors_are_one_line(args: list[str], line: str) -> None:
    status, err, out = _script(*args)
    assert status == 2
    assert len(err) == 1 and err[0].startswith(line), err
    assert "USAGE" not in out and "Try --helpfull" not in out


def test_help_lists_flags() -> None:
    status, _, out = _script("train", "--help")
    assert status == 0 and "--batch_size" in out


def test_learning_rate_nan_is_refused(capsys) -> None:
    assert refused(capsys, "train", "--learning_rate=nan") == "flag --learning_rate=nan: must be a positive number"
