"""Bad input to the CLI, as a table: exit status 2, one line naming the flag or file, nothing left behind.

Each case runs ``cli.main`` in this process (the function the console script runs) from an empty working
folder, so a default ``--out=artifacts`` would show up too; after it, the test's folders hold exactly the
files they held before. A few cases at the end run the real console script, where TensorFlow's own C++
start-up lines are the only other output. Models and data are tiny (built here, a few seconds in all).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import wave
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from hyper_tinypw_tf import models, tasks
from hyper_tinypw_tf.app import cli
from hyper_tinypw_tf.data.options import default_data_dir
from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import hyper
from tests.conftest_export import TINY, tiny_exports

MITDB = default_data_dir("mitdb")
# TensorFlow's native logging at import ("I0000 00:00:... port.cc:153] ..."), written before any of our code runs.
_TF_NATIVE_LOG = re.compile(
    r"^([IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\]|WARNING: All log messages before absl::InitializeLog"
    r"|To enable the following instructions:)"
)
KWS_TINY = models.Backbone(input_shape=(49, 10, 1), stem_channels=8, stem_kernel=(10, 4), stem_strides=(2, 2),
                           channels=(16,), strides=((1, 1),), dw_kernel=(3, 3))
_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


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


def _write_wav(path: Path, frames: int = 16000, keep: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(frames, "<i2").tobytes())
    if keep is not None:  # cut the body short after a valid header
        with open(path, "r+b") as f:
            f.truncate(keep)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Inputs the cases name by key: tiny models of both kinds, exports, broken files and data folders."""
    root = tmp_path_factory.mktemp("inputs")
    paths: dict[str, Path] = {"a_file": root / "a_file.txt"}
    paths["a_file"].write_text("not a dataset, not a model\n")
    ecg = models.build_backbone(TINY, 2, pw="stored", name="tiny_ecg")
    kws = models.build_backbone(KWS_TINY, 12, pw="stored", name="tiny_kws")
    for name, model in (("ecg_keras", ecg), ("kws_keras", kws)):
        paths[name] = root / f"{name}.keras"
        model.save(paths[name])
    data = tiny_exports("tiled")[1]
    paths["hyper"] = root / "model_hyper.tflite"
    paths["hyper"].write_bytes(data)
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0xFF
    paths["flipped"] = root / "flipped.tflite"
    paths["flipped"].write_bytes(bytes(flipped))
    paths["truncated"] = root / "truncated.tflite"
    paths["truncated"].write_bytes(data[:1000])
    model_t = fb.read(data)
    model_t.subgraphs[0].operators[1].opcodeIndex = 77
    paths["bad_opcode"] = root / "bad_opcode.tflite"
    paths["bad_opcode"].write_bytes(hyper.seal(fb.write(model_t)))
    paths["x_float"], paths["x_shape"] = root / "x_float.npy", root / "x_shape.npy"
    np.save(paths["x_float"], np.zeros((2, 256, 1, 1), np.float32))
    np.save(paths["x_shape"], np.zeros((2, 100, 1, 1), np.int8))
    # MIT-BIH with one .dat cut short (the other records linked in place).
    paths["wfdb"] = root / "mitdb_truncated"
    paths["wfdb"].mkdir()
    for record in ("101", "106", "119"):
        for ext in ("hea", "dat", "atr"):
            (paths["wfdb"] / f"{record}.{ext}").symlink_to(MITDB / f"{record}.{ext}")
    (paths["wfdb"] / "106.dat").unlink()
    (paths["wfdb"] / "106.dat").write_bytes((MITDB / "106.dat").read_bytes()[:1000])
    # Speech Commands with one WAV cut short.
    paths["wavs"] = root / "kws_truncated"
    for i, word in enumerate(_WORDS):
        _write_wav(paths["wavs"] / word / f"{i:08x}_nohash_0.wav")
    paths["bad_wav"] = paths["wavs"] / "yes" / "ffff0000_nohash_0.wav"
    _write_wav(paths["bad_wav"], keep=2000)
    # A main run's --out that an earlier KWS run left a model in.
    paths["kws_out"] = root / "kws_out"
    (paths["kws_out"] / "hyper").mkdir(parents=True)
    shutil.copyfile(paths["kws_keras"], paths["kws_out"] / "hyper" / "model.keras")
    paths["empty_dir"] = root / "empty"
    paths["empty_dir"].mkdir()
    paths["no_tools"] = root / "no_tools"  # a PATH without the Arm toolchain or QEMU
    paths["no_tools"].mkdir()
    return {key: str(value) for key, value in paths.items()}


class Case(NamedTuple):
    command: str
    args: tuple[str, ...]
    message: str  # the start of the error message (after "hyper-tinypw COMMAND: error: "), with {placeholders}
    path: str = ""  # PATH for the run, when it matters


_ECG_TASK = "--task=mitdb_v gives input (256, 1, 1) with 2 classes"
_KWS_TASK = "--task=speech_commands gives input (49, 10, 1) with 12 classes"
_KWS = ("--task=speech_commands", "--preset=ds_cnn_s")
_TOOLCHAIN = "needs the Arm toolchain and QEMU; install Debian's " + " ".join(cli.M4_PACKAGES)

CASES: dict[str, Case] = {
    # flags: spelling, values, bounds
    "unknown_flag": Case("train", ("--nope=1",),
                         "Unknown command line flag 'nope' (hyper-tinypw train --help lists the flags)"),
    "unknown_task": Case("train", ("--task=nope",), "flag --task=nope: value should be one of <mitdb_v|mitdb_aami|"),
    "batch_size_0": Case("train", ("--batch_size=0",), "flag --batch_size=0: 0 is not a positive integer"),
    "epochs_0": Case("train", ("--epochs=0",), "flag --epochs=0: 0 is not a positive integer"),
    "learning_rate_0": Case("train", ("--learning_rate=0",), "flag --learning_rate=0.0: must be a positive number"),
    "learning_rate_nan": Case("train", ("--learning_rate=nan",), "flag --learning_rate=nan: must be a positive number"),
    "seed_negative": Case("train", ("--seed=-1",), "flag --seed=-1: -1 is not a non-negative integer"),
    "fold_negative": Case("train", ("--fold=-1",), "flag --fold=-1: -1 is not a non-negative integer"),
    "bare_argument": Case("train", ("extra",), "unexpected argument 'extra' (flags are written --name=value)"),
    "bad_enum": Case("export", ("--format=zip",), "flag --format=zip: value should be one of <folded|hyper>"),
    # flags a command does not read
    "expand_preset": Case("expand", ("--preset=64k",), "--preset does not apply to expand (hyper-tinypw expand --help"),
    "qat_preset": Case("qat", ("--model={ecg_keras}", "--preset=32k"), "--preset does not apply to qat"),
    "report_epochs": Case("report", ("--epochs=3",), "--epochs does not apply to report"),
    "tflm_task": Case("tflm", ("--model={hyper}", "--task=mitdb_v"), "--task does not apply to tflm"),
    "fit_target": Case("fit", ("--model={hyper}", "--target=host"), "--target does not apply to fit"),
    "main_pw": Case("main", ("--pw=stored",), "--pw does not apply to main"),
    "export_calibration_flag": Case("export", ("--model={ecg_keras}", "--records=101,106,119"),
                                    "--records applies to calibration data, which needs --task or --data_dir"),
    # task flags for a task that does not take them (the task registry)
    "rr_features_kws": Case("train", (*_KWS, "--rr_features"),
                            "--rr_features applies to --task=mitdb_v or mitdb_aami, received --task=speech_commands"),
    "records_apnea": Case("train", ("--task=apnea", "--data_dir={empty_dir}", "--records=a01,a02,a03"),
                          "--records applies to --task=mitdb_v or mitdb_aami, received --task=apnea"),
    "kws_split_mitdb": Case("train", ("--kws_split=all",),
                            "--kws_split applies to --task=speech_commands, received --task=mitdb_v"),
    "protocol_ptbxl": Case("train", ("--task=ptbxl", "--protocol=cv:5"),
                           "--protocol applies to --task=mitdb_v or mitdb_aami or speech_commands, received "
                           "--task=ptbxl"),
    "protocol_unknown": Case("train", ("--protocol=nope",),
                             "--protocol=nope does not apply to --task=mitdb_v; it takes patient_wise or inter_patient "
                             "or cv:K"),
    "protocol_cv_2": Case("train", ("--protocol=cv:2",), "--protocol=cv:2: protocol: cv:K needs an integer K >= 3"),
    "protocol_cv_word": Case("evaluate", ("--model={ecg_keras}", "--protocol=cv:x"), "--protocol=cv:x: protocol: cv:K"),
    "protocol_kws_inter": Case("train", (*_KWS, "--protocol=inter_patient"),
                               "--protocol=inter_patient does not apply to --task=speech_commands; it takes cv:K"),
    "fold_without_cv": Case("train", ("--fold=1",), "--fold applies with --protocol=cv:K, which was not given"),
    "fold_out_of_range": Case("evaluate", ("--model={ecg_keras}", "--protocol=cv:3", "--fold=3"),
                              "--fold=3 is not a fold of --protocol=cv:3 (0..2)"),
    # --kws_split, refused before any download or data read (the data folder does not exist)
    "kws_split_numbers": Case("train", (*_KWS, "--kws_split=speakers:x,y", "--data_dir={tmp}/nowhere"),
                              "kws_split: expected auto (list files"),
    "kws_split_sum": Case("train", (*_KWS, "--kws_split=speakers:60,50", "--data_dir={tmp}/nowhere"),
                          "kws_split: VAL and TEST must be >= 0 and leave some training speakers"),
    "kws_split_rule": Case("evaluate", ("--model={kws_keras}", "--task=speech_commands", "--kws_split=bogus",
                                        "--data_dir={tmp}/nowhere"), "kws_split: unknown rule 'bogus'"),
    "kws_split_and_cv": Case("train", (*_KWS, "--kws_split=speakers:15,15", "--protocol=cv:5"),
                             "--kws_split and --protocol=cv:5 both split speakers; give one of them"),
    # presets
    "preset_kws_on_ecg": Case("train", ("--task=mitdb_v", "--preset=ds_cnn_s"),
                              "--preset=ds_cnn_s is for KWS input and --task=mitdb_v needs a preset for ECG input: "
                              "one of 225k, "),
    "preset_ecg_on_kws": Case("train", ("--task=speech_commands", "--preset=64k"),
                              "--preset=64k is for ECG input and --task=speech_commands needs a preset for KWS input"),
    "preset_unknown": Case("main", ("--preset=nope",), "preset must be one of"),
    "report_preset_unknown": Case("report", ("--preset=nope",), "preset must be one of"),
    "report_preset_task": Case("report", ("--preset=ds_cnn_s", "--task=mitdb_aami"),
                               "--preset=ds_cnn_s is for KWS input and --task=mitdb_aami needs a preset for ECG"),
    # modes and budgets
    "budget_without_bytes": Case("main", ("--mode=budget",), "--mode=budget needs --sram_budget=BYTES"),
    "bytes_without_budget": Case("main", ("--sram_budget=4096",),
                                 "--sram_budget applies to --mode=budget, received --mode=boot"),
    "export_budget_folded": Case("export", ("--model={ecg_keras}", "--format=folded", "--mode=budget",
                                            "--sram_budget=4096"), "--mode=budget needs --format=hyper"),
    "export_budget_without_bytes": Case("export", ("--model={ecg_keras}", "--mode=budget"),
                                        "--mode=budget needs --sram_budget=BYTES"),
    # records and data folders
    "records_one": Case("train", ("--records=101",),
                        "--records=101 names 1 distinct record(s); --protocol=patient_wise needs at least 3"),
    "records_repeated": Case("main", ("--records=101,101,101",), "--records=101,101,101 names 1 distinct record(s)"),
    "records_fewer_than_folds": Case("train", ("--records=101,106,119", "--protocol=cv:5"),
                                     "--records=101,106,119 names 3 distinct record(s); --protocol=cv:5 needs at "
                                     "least 5, one for each fold"),
    "records_missing": Case("train", ("--records=101,106,999", "--out={tmp}/new/out"),
                            "mitdb: 1 record(s) needed by this protocol are missing from"),
    "apnea_no_copy": Case("train", ("--task=apnea",), "--task=apnea has no local copy here; pass --data_dir"),
    "data_dir_file": Case("train", ("--data_dir={a_file}",), "--data_dir={a_file} is a file, expected a dataset"),
    "evaluate_ecg_on_ptbxl_length": Case("evaluate", ("--model={ecg_keras}", "--task=ptbxl", "--data_dir={empty_dir}"),
                           "--model={ecg_keras} takes input (256, 1, 1) with 2 classes, but --task=ptbxl gives input "
                           "(1000, 1, 1)"),
    "truncated_wfdb": Case("train", ("--data_dir={wfdb}", "--records=101,106,119", "--out={tmp}/out"),
                           "{wfdb}/106.dat: truncated: 1000 bytes"),
    "truncated_wav": Case("train", (*_KWS, "--data_dir={wavs}", "--kws_split=speakers:15,15", "--out={tmp}/out"),
                          "{bad_wav}: truncated: the header promises 16000 samples"),
    # distillation
    "teacher_without_distill": Case("train", ("--teacher={ecg_keras}",),
                                    "--teacher applies with --distill, which was not given"),
    "distill_without_teacher": Case("train", ("--distill",), "--distill needs --teacher=PATH"),
    "teacher_missing": Case("qat", ("--model={ecg_keras}", "--distill", "--teacher={tmp}/t.keras"),
                            "--teacher={tmp}/t.keras: no such file"),
    # required and missing paths
    "export_no_model": Case("export", (), "--model is required: a QAT model"),
    "qat_no_model": Case("qat", (), "--model is required: the trained model"),
    "expand_no_input": Case("expand", (), "--input is required: the hyper .tflite to expand"),
    "expand_no_output": Case("expand", ("--input={hyper}",), "--output is required: the folded .tflite to write"),
    "qat_model_missing": Case("qat", ("--model=/nonexistent/model.keras",),
                              "--model=/nonexistent/model.keras: no such file"),
    "expand_input_missing": Case("expand", ("--input=/nonexistent/m.tflite", "--output=x.tflite"),
                                 "--input=/nonexistent/m.tflite: no such file"),
    "expand_input_dir": Case("expand", ("--input={tmp}", "--output=x.tflite"),
                             "--input={tmp} is a directory, expected a file"),
    "expand_output_no_dir": Case("expand", ("--input={hyper}", "--output={tmp}/no/m.tflite"),
                                 "--output={tmp}/no/m.tflite: the directory '{tmp}/no' does not exist"),
    "expand_output_proc": Case("expand", ("--input={hyper}", "--output=/proc/m.tflite"),
                               "--output=/proc/m.tflite: cannot write in '/proc'"),
    "expand_output_dir": Case("expand", ("--input={hyper}", "--output={tmp}"),
                              "--output={tmp} is a directory, expected a file name"),
    "export_output_no_dir": Case("export", ("--model={hyper}", "--output={tmp}/no/m.tflite"),
                                 "--output={tmp}/no/m.tflite: the directory '{tmp}/no' does not exist"),
    "out_is_file": Case("train", ("--out={a_file}",), "--out={a_file} exists and is not a directory"),
    "out_under_file": Case("qat", ("--model={a_file}", "--out={a_file}/sub"),
                           "--out={a_file}/sub: cannot create the directory (Not a directory)"),
    "out_in_proc": Case("train", ("--out=/proc/hyper_tinypw/out",),
                        "--out=/proc/hyper_tinypw/out: cannot create the directory"),
    # corrupt files
    "expand_flipped": Case("expand", ("--input={flipped}", "--output={tmp}/o.tflite"),
                           "--input={flipped}: hyper model: file CRC-32 mismatch"),
    "expand_truncated": Case("expand", ("--input={truncated}", "--output={tmp}/o.tflite"),
                             "--input={truncated}: hyper model: corrupt .tflite flatbuffer"),
    "expand_bad_opcode": Case("expand", ("--input={bad_opcode}", "--output={tmp}/o.tflite"),
                              "--input={bad_opcode}: hyper model: operator 1: opcode index 77 is out of range"),
    "export_not_a_model": Case("export", ("--model={a_file}", "--output={tmp}/m.tflite"),
                               "--model={a_file}: not a loadable Keras model (Unable to synchronously open file"),
    "export_bad_c_name": Case("export", ("--model={a_file}", "--c_array=1bad"),
                              "c_array: name must be a C identifier, received name='1bad'"),
    "export_needs_calibration": Case("export", ("--model={ecg_keras}", "--out={tmp}/new/out"),
                                     "convert: model"),
    "evaluate_corrupt_tflite": Case("evaluate", ("--model={truncated}",), "--model={truncated}: "),
    # the model meets its task: input shape and classes, before any data is read
    "evaluate_kws_on_ecg": Case("evaluate", ("--model={kws_keras}",),
                                f"--model={{kws_keras}} takes input (49, 10, 1) with 12 classes, but {_ECG_TASK}"),
    "evaluate_ecg_on_kws": Case("evaluate", ("--model={hyper}", "--task=speech_commands"),
                                f"--model={{hyper}} takes input (256, 1, 1) with 2 classes, but {_KWS_TASK}"),
    "evaluate_rr_channels": Case("evaluate", ("--model={ecg_keras}", "--rr_features"),
                                 "--model={ecg_keras} takes input (256, 1, 1) with 2 classes, but --task=mitdb_v "
                                 "--rr_features gives input (256, 1, 4) with 2 classes"),
    "evaluate_aami_classes": Case("evaluate", ("--model={ecg_keras}", "--task=mitdb_aami"),
                                  "--model={ecg_keras} takes input (256, 1, 1) with 2 classes, but --task=mitdb_aami "
                                  "--rr_features --beat_template gives input (256, 1, 5) with 5 classes"),
    "qat_ecg_on_kws": Case("qat", ("--model={ecg_keras}", "--task=speech_commands", "--out={tmp}/new"),
                           f"--model={{ecg_keras}} takes input (256, 1, 1) with 2 classes, but {_KWS_TASK}"),
    "export_calibrated_on_other_task": Case("export", ("--model={kws_keras}", "--task=mitdb_v", "--out={tmp}/new"),
                                            f"--model={{kws_keras}} takes input (49, 10, 1) with 12 classes, but "
                                            f"{_ECG_TASK}"),
    "train_teacher_other_task": Case("train", ("--distill", "--teacher={kws_keras}", "--out={tmp}/new"),
                                     f"--teacher={{kws_keras}} takes input (49, 10, 1) with 12 classes, but "
                                     f"{_ECG_TASK}"),
    "main_resumes_other_task": Case("main", ("--out={kws_out}",),
                                    "--out={kws_out} holds {kws_out}/hyper/model.keras from an earlier run, which "
                                    f"takes input (49, 10, 1) with 12 classes, but {_ECG_TASK}"),
    # the TFLM runners: examples, and the Cortex-M4 toolchain
    "tflm_input_not_npy": Case("tflm", ("--model={hyper}", "--input={a_file}"),
                               "--input={a_file}: not a .npy array"),
    "tflm_input_float": Case("tflm", ("--model={hyper}", "--input={x_float}"),
                             "--input={x_float} holds float32; the model takes int8 examples"),
    "tflm_input_shape": Case("tflm", ("--model={hyper}", "--input={x_shape}"),
                             "--input={x_shape} holds shape (2, 100, 1, 1); --model={hyper} takes a batch of examples "
                             "of shape (256, 1, 1)"),
    "tflm_m4_no_toolchain": Case("tflm", ("--model={hyper}", "--target=cortex-m4"),
                                 f"the Cortex-M4 runner {_TOOLCHAIN}", path="{no_tools}"),
    "fit_no_toolchain": Case("fit", ("--model={hyper}",), f"fit (the Cortex-M4 runner) {_TOOLCHAIN}",
                             path="{no_tools}"),
}


def _tree(*roots: Path) -> set[str]:
    return {str(p) for root in roots for p in root.rglob("*")}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name: str, files: dict[str, str], tmp_path: Path, capsys, monkeypatch, shared_data) -> None:
    case = CASES[name]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # a default --out=artifacts would land here
    names = {**files, "tmp": str(tmp_path)}
    if case.path:
        monkeypatch.setenv("PATH", case.path.format(**names))
    inputs = Path(files["a_file"]).parent
    before = _tree(tmp_path, inputs)
    message = refused(capsys, case.command, *(a.format(**names) for a in case.args))
    assert message.startswith(case.message.format(**names)), message
    assert _tree(tmp_path, inputs) == before, "a failed command must leave no new file or folder"


def test_the_table_holds_64_cases_or_more() -> None:
    assert len(CASES) >= 64


def test_every_task_flag_of_the_registry_is_a_flag_some_command_takes() -> None:
    taken = {flag for command in cli.COMMANDS.values() for flag in command.flags}
    assert set(tasks.TASK_FLAGS) <= taken


def test_the_toolchain_message_names_packages_the_install_script_installs() -> None:
    script = (Path(__file__).parents[1] / "tools" / "install_system_deps.sh").read_text()
    assert all(package in script.split() for package in cli.M4_PACKAGES)


def test_a_failed_command_keeps_an_out_folder_that_existed(capsys, tmp_path, files) -> None:
    out = tmp_path / "existing"
    out.mkdir()
    refused(capsys, "qat", f"--model={files['ecg_keras']}", "--task=speech_commands", f"--out={out}")
    assert out.is_dir()


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
    assert not target.exists() and not (tmp_path / "out").exists()


def test_expand_in_process_succeeds_and_reproduces_the_folded_file(capsys, tmp_path, files) -> None:
    out = tmp_path / "folded.tflite"
    assert cli.main(["expand", f"--input={files['hyper']}", f"--output={out}"]) == 0
    assert out.read_bytes() == tiny_exports("tiled")[0]
    assert capsys.readouterr().err == ""


def test_flags_do_not_leak_between_in_process_runs(capsys, tmp_path, files) -> None:
    out = tmp_path / "folded.tflite"
    assert cli.main(["expand", f"--input={files['hyper']}", f"--output={out}"]) == 0
    assert refused(capsys, "expand", f"--input={files['hyper']}") == "--output is required: the folded .tflite to write"


def test_help_lists_only_the_command_s_flags(capsys) -> None:
    assert cli.main(["expand", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--input:" in out and "--output:" in out and "--preset" not in out and "--task" not in out


# ---- the console script itself -----------------------------------------------------------------------


def _script(*args: str) -> tuple[int, list[str], str]:
    done = subprocess.run([sys.executable, "-m", "hyper_tinypw_tf.app.cli", *args], capture_output=True, text=True,
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
        (["expand", "--output=x.tflite", "--task=mitdb_v"], "hyper-tinypw expand: error: --task does not apply"),
    ],
)
def test_script_errors_are_one_line(args: list[str], line: str) -> None:
    status, err, out = _script(*args)
    assert status == 2
    assert len(err) == 1 and err[0].startswith(line), err
    assert "USAGE" not in out and "Try --helpfull" not in out


def test_help_lists_flags() -> None:
    status, _, out = _script("train", "--help")
    assert status == 0 and "--batch_size" in out and "--target" not in out
