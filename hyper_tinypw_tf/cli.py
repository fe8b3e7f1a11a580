"""The ``hyper-tinypw`` console script: ``hyper-tinypw COMMAND --flag=value ...``.

Commands (each a thin wrapper over library functions):
  main     hyper model beside the stored CNN of the same budget: train → QAT → export → TFLM → one table
  evaluate metrics with CIs of a .keras/.h5/.tflite model on a task's test split (or val, or all of it)
  train    fit a preset on a task, with checkpoints and resume
  qat      quantization-aware fine-tuning of a trained model
  export   write folded or hyper .tflite (and optionally a C array)
  expand   hyper .tflite → folded .tflite, synthesis on the host
  report   byte accounting of a preset, stored against hyper
  tflm     run a .tflite (folded or hyper) in TFLM's MicroInterpreter with the HyperTinyPW op; prints JSON
  fit      flash, SRAM and instructions per synthesis mode on the Cortex-M4 against a board (exit 1: fits nowhere)

This is the only module that reaches across packages (into ``export``), and it imports lazily.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter would bury the one error line

from absl import app, flags, logging  # noqa: E402

COMMANDS = ("main", "evaluate", "train", "qat", "export", "expand", "report", "tflm", "fit")

FLAGS = flags.FLAGS
flags.DEFINE_enum("task", "mitdb_v", ["mitdb_v", "mitdb_aami", "apnea", "ptbxl", "speech_commands"], "Dataset task.")
flags.DEFINE_string(
    "data_dir", None,
    "Local dataset folder (default: $HYPER_TINYPW_DATA/<dataset>, else ../shared/data/<dataset> beside the checkout).",
)
flags.DEFINE_string("preset", "64k", "Model preset (see hyper_tinypw_tf.models.PRESETS).")
flags.DEFINE_enum("pw", "hyper", ["stored", "hyper"], "Stored INT8 or generated PW layers.")
flags.DEFINE_integer("epochs", 4, "Training epochs (early stopping may end sooner).", lower_bound=1)
flags.DEFINE_integer("qat_epochs", 1, "Quantization-aware fine-tuning epochs.", lower_bound=0)
flags.DEFINE_integer("batch_size", 128, "Batch size.", lower_bound=1)
flags.DEFINE_float("learning_rate", 2e-3, "Adam learning rate.")
flags.register_validator("learning_rate", lambda v: v > 0 and math.isfinite(v), "must be a positive number")
flags.DEFINE_integer("patience", 3, "Early-stopping patience (epochs).", lower_bound=0)
flags.DEFINE_integer("seed", 0, "Seed for weights, splits and shuffling.", lower_bound=0)
flags.DEFINE_enum("distribute", "none", ["none", "mirrored", "multi_worker"],
                  "train/main: build and train under tf.distribute (MirroredStrategy, MultiWorkerMirroredStrategy).")
flags.DEFINE_string("out", "artifacts", "Output folder.")
flags.DEFINE_string("model", None, "Path of a saved model (.keras / .h5 / SavedModel) for qat/export.")
flags.DEFINE_enum("format", "hyper", ["folded", "hyper"], "Export format.")
flags.DEFINE_enum("mode", "boot", ["boot", "lazy", "stream", "budget"],
                  "Synthesis mode of the hyper custom op; budget: per layer boot or stream within --sram_budget.")
flags.DEFINE_integer("sram_budget", None, "export --mode=budget: bytes of SRAM for cached kernels.", lower_bound=0)
flags.DEFINE_enum("target", "host", ["host", "cortex-m4"], "tflm: where the model runs.")
flags.DEFINE_integer("flash", 1 << 20, "fit: the board's flash in bytes (default: Arduino Nano 33 BLE).", lower_bound=1)
flags.DEFINE_integer("sram", 256 << 10, "fit: the board's SRAM in bytes (default: Arduino Nano 33 BLE).", lower_bound=1)
flags.DEFINE_string("c_array", None, "Also write NAME.cc/NAME.h with the model as a C array.")
flags.DEFINE_string("input", None, "Input .tflite for expand; int8 examples (.npy, N first) for tflm.")
flags.DEFINE_string("output", None, "Output .tflite for expand/export; int8 outputs (.npy) for tflm.")
flags.DEFINE_integer("n_boot", 1000, "Bootstrap resamples for confidence intervals.", lower_bound=1)
flags.DEFINE_list("records", None, "MIT-BIH only: restrict the patient-wise pool to these records (quick runs).")
flags.DEFINE_enum("protocol", "patient_wise", ["patient_wise", "inter_patient"],
                  "MIT-BIH only: patient_wise (records of one pool split into train/val/test) or inter_patient "
                  "(de Chazal: DS1 train/val, DS2 test; needs the whole database).")
flags.DEFINE_enum("split", "test", ["test", "val", "all"],
                  "evaluate: the split to score; all = every example (a folder used entirely as test data).")
flags.DEFINE_enum("loss", "ce", ["ce", "focal"], "Training loss: cross-entropy or focal loss (--focal_gamma).")
flags.DEFINE_float("focal_gamma", 2.0, "Focal loss focusing parameter gamma.")
flags.DEFINE_bool("class_weights", True, "Weight classes by inverse frequency in the training loss.")
flags.DEFINE_bool("distill", False, "Distil the hyper model from its trained stored twin (same backbone, stored PW): "
                  "--distill_alpha x T^2 x KL at --distill_temperature + (1 - alpha) x the training loss.")
flags.DEFINE_string("teacher", None, "Distillation teacher model file (main: default, train the stored twin).")
flags.DEFINE_float("distill_alpha", 0.7, "Weight of the distillation KL term (the paper: 0.7).")
flags.DEFINE_float("distill_temperature", 2.0, "Distillation softmax temperature T (the paper: 2).")
flags.DEFINE_string(
    "kws_split", "auto",
    "Speech Commands only: how speakers are split. auto (list files, else the dataset's speaker hash at 10,10), "
    "lists, speaker_hash:VAL,TEST, speakers:VAL,TEST (seeded speaker shuffle; ../shared/data's copy holds "
    "official test speakers only, so use e.g. speakers:15,15 there) or all (everything is test data).",
)
flags.DEFINE_bool(
    "rr_features", False,
    "MIT-BIH only: add pre-RR, post-RR and local-mean RR (each over the record's mean RR) as three input "
    "channels beside the waveform window.",
)

_DATASET_DIRS = {"mitdb_v": "mitdb", "mitdb_aami": "mitdb", "ptbxl": "ptbxl", "speech_commands": "speech_commands"}


def _data_dir() -> Path:
    if FLAGS.data_dir:
        return Path(FLAGS.data_dir)
    if FLAGS.task not in _DATASET_DIRS:
        raise app.UsageError(f"--task={FLAGS.task} has no local copy here; pass --data_dir")
    from hyper_tinypw_tf.data.options import default_data_dir

    return default_data_dir(_DATASET_DIRS[FLAGS.task])


def _load_data(shuffle_train: bool = False) -> tuple[dict[str, Any], Any]:
    """Datasets per split and metadata; every split in a fixed order (val/test aligned with info.groups).

    ``training.fit`` shuffles the training set per epoch from (seed, epoch), which a pre-shuffled set would
    undo: its order would then depend on the process, and a resumed run would see other batches.
    """
    from hyper_tinypw_tf import data

    extra: dict[str, Any] = {"records": FLAGS.records} if FLAGS.records else {}
    if FLAGS.task in ("mitdb_v", "mitdb_aami"):
        extra["protocol"] = FLAGS.protocol
    elif FLAGS["protocol"].present:
        raise ValueError(f"--protocol applies to mitdb_v and mitdb_aami, received --task={FLAGS.task}")
    if FLAGS.task == "speech_commands":
        extra["split"] = FLAGS.kws_split
    if FLAGS.rr_features:
        if FLAGS.task not in ("mitdb_v", "mitdb_aami"):
            raise ValueError(f"--rr_features applies to mitdb_v and mitdb_aami, received --task={FLAGS.task}")
        extra["rr_features"] = True
    # Progress bars for a person at a terminal; none in logs and captured output.
    options = data.LoadOptions(quiet=not sys.stderr.isatty())
    return data.load(
        FLAGS.task, _data_dir(), options, batch_size=FLAGS.batch_size, seed=FLAGS.seed, shuffle_train=shuffle_train,
        **extra,
    )


def _build_model(info: Any, train: Any) -> Any:
    """The preset's backbone on the dataset's input shape, input normalization fitted on ``train``."""
    from hyper_tinypw_tf import models

    model = models.for_task(FLAGS.preset, info.task, info.input_shape, info.num_classes, pw=FLAGS.pw)
    models.fit_input_normalization(model, (x for x, _ in train))
    return model


def _labels(dataset: Any) -> Any:
    import numpy as np

    return np.concatenate([y.numpy() for _, y in dataset])


def _run_config() -> Any:
    """The training and evaluation switches of main/train/qat, as one record."""
    from hyper_tinypw_tf import pipeline

    return pipeline.RunConfig(
        preset=FLAGS.preset, epochs=FLAGS.epochs, qat_epochs=FLAGS.qat_epochs, learning_rate=FLAGS.learning_rate,
        patience=FLAGS.patience, seed=FLAGS.seed, n_boot=FLAGS.n_boot, mode=FLAGS.mode,
        sram_budget=FLAGS.sram_budget, loss=FLAGS.loss,
        focal_gamma=FLAGS.focal_gamma, class_weights=FLAGS.class_weights, distill=FLAGS.distill,
        teacher=FLAGS.teacher, distill_alpha=FLAGS.distill_alpha, distill_temperature=FLAGS.distill_temperature,
        distribute=FLAGS.distribute,
    )


def _teacher() -> Any:
    """train/qat --distill: the teacher model of --teacher (main trains the stored twin itself)."""
    from hyper_tinypw_tf import pipeline

    if not FLAGS.distill:
        return None
    if not FLAGS.teacher:
        raise ValueError("--distill needs --teacher=PATH of the trained stored twin (hyper-tinypw main trains it)")
    return pipeline.load_model(FLAGS.teacher)


def _train(out: Path) -> tuple[Any, dict[str, Any], Any]:
    from hyper_tinypw_tf import accounting, pipeline, training

    training.set_seed(FLAGS.seed)
    datasets, info = _load_data()
    with training.distribution_strategy(FLAGS.distribute).scope():  # variables made, and trained, there
        model = _build_model(info, datasets["train"])
        accounting.packed_bytes(model).summary(logging.info)
        pipeline.fit_model(model, datasets, info, _run_config(), FLAGS.epochs, FLAGS.learning_rate,
                           out / "checkpoints", _teacher())
    model.save(out / "model.keras")
    return model, datasets, info


def _evaluate(predict: Any, datasets: dict[str, Any], info: Any, out: Path, name: str) -> Any:
    """Tune t* on validation (binary tasks), score test with record-clustered bootstrap CIs."""
    from hyper_tinypw_tf import evaluation

    scores = {s: evaluation.softmax(predict(datasets[s])) for s in ("val", "test")}
    labels = {s: _labels(datasets[s]) for s in ("val", "test")}
    threshold = (
        evaluation.tune_threshold(scores["val"], labels["val"]) if info.num_classes == 2 else None
    )
    report = evaluation.evaluate(
        scores["test"], labels["test"], info.groups.get("test"), threshold=threshold,
        class_names=info.class_names, n_boot=FLAGS.n_boot, seed=FLAGS.seed, task=f"{info.task} ({name})",
    )
    report.save_json(out / f"eval_{name}.json")
    print(report.to_table())
    return report


def _keras_predict(model: Any) -> Any:
    return lambda dataset: model.predict(dataset, verbose=0)


def _qat(model: Any, datasets: dict[str, Any], info: Any, out: Path) -> Any:
    from hyper_tinypw_tf import pipeline, quantization

    qat_model = quantization.quantize_model(model)
    if FLAGS.qat_epochs > 0:
        pipeline.fit_model(qat_model, datasets, info, _run_config(), FLAGS.qat_epochs, FLAGS.learning_rate / 10,
                           None, _teacher())
    qat_model.save(out / "model_qat.h5")
    return qat_model


def _export(model: Any, out: Path, formats: tuple[str, ...], calibration: Any = None) -> dict[str, Path]:
    """Write each format's .tflite (and the C array, if asked, for --format); each prints its byte table."""
    from hyper_tinypw_tf.export import api

    paths = {}
    for fmt in formats:
        paths[fmt] = Path(FLAGS.output) if FLAGS.output and len(formats) == 1 else out / f"model_{fmt}.tflite"
        c_array = FLAGS.c_array if fmt == FLAGS.format else None
        api.export_files(
            model, paths[fmt], fmt=fmt, mode=FLAGS.mode, representative_data=calibration, c_array_name=c_array,
            sram_budget=FLAGS.sram_budget if fmt == "hyper" else None,
        )
    return paths


def _calibration() -> Any:
    """Training inputs for calibrating a float model, when --task or --data_dir was given."""
    import numpy as np

    if not (FLAGS["task"].present or FLAGS["data_dir"].present):
        return None
    datasets, _ = _load_data()
    return np.concatenate([x.numpy() for x, _ in datasets["train"].take(4)])


def cmd_report() -> None:
    """Same-backbone bytes (stored twin vs hyper), the runtime bill, and the budget comparison."""
    from hyper_tinypw_tf import accounting, models

    preset = models.get_preset(FLAGS.preset)
    classes = 2 if preset.task == "ecg" else 12
    hyper = models.build_backbone(preset.backbone, classes, pw="hyper", generator=preset.generator,
                                  name=f"{preset.name}_hyper")
    twin = models.build_backbone(preset.backbone, classes, pw="stored", name=f"{preset.name}_stored_same_backbone")
    print(accounting.packed_bytes(hyper).table(), end="\n\n")
    accounting.compare(twin, hyper)
    print("\nRuntime bill of the hyper model (the backbone's MACs are unchanged):")
    print(accounting.runtime_bill(hyper).table())
    if preset.stored_backbone is not None:
        budget = models.build_backbone(preset.stored_backbone, classes, pw="stored", name=f"{preset.name}_stored")
        stored_total, hyper_total = accounting.packed_bytes(budget).total, accounting.packed_bytes(hyper).total
        print(f"\nAt the {preset.budget:,}-byte budget: the stored CNN of this preset packs "
              f"{stored_total:,} bytes, the hyper model {hyper_total:,}.")


def cmd_train() -> None:
    out = Path(FLAGS.out)
    model, datasets, info = _train(out)
    _evaluate(_keras_predict(model), datasets, info, out, "float")


def _load_model(path: str) -> Any:
    from hyper_tinypw_tf import quantization
    from hyper_tinypw_tf._keras import keras

    with quantization.quantize_scope():
        try:
            return keras.models.load_model(path)
        except (OSError, ValueError) as error:  # h5py and Keras do not name the file
            raise ValueError(f"--model={path}: not a loadable Keras model ({_one_line(error)})") from error


def cmd_qat() -> None:
    out = Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    datasets, info = _load_data()
    qat_model = _qat(_load_model(FLAGS.model), datasets, info, out)
    _evaluate(_keras_predict(qat_model), datasets, info, out, "qat")


def cmd_export() -> None:
    out = Path(FLAGS.out)
    if not FLAGS.output:
        out.mkdir(parents=True, exist_ok=True)
    _export(_load_model(FLAGS.model), out, (FLAGS.format,), _calibration())


def cmd_expand() -> None:
    from hyper_tinypw_tf.export import api

    api.expand_file(FLAGS.input, FLAGS.output)


def cmd_tflm() -> None:
    """Build (cached) and run --model in TFLM on --target; print the runner's statistics as JSON."""
    from tflm_harness import build, qemu, run

    try:
        stats = run.run_files(FLAGS.model, FLAGS.target, FLAGS.input, FLAGS.output)
    except build.BuildError as error:  # TFLM_DIR or a toolchain that does not build: the user's setup
        raise ValueError(f"building the TFLM runner failed: {error}") from None
    except qemu.QemuError as error:  # no qemu-system-arm, or the firmware crashed
        raise ValueError(f"running the Cortex-M4 runner under QEMU failed: {error}") from None
    print(json.dumps(stats, indent=2))


def cmd_fit() -> int:
    """Measure --model on the Cortex-M4 in each synthesis mode; exit status 1 when no mode fits the board."""
    from tflm_harness import build, fit, qemu

    try:
        report = fit.fit_file(FLAGS.model, flash=FLAGS.flash, sram=FLAGS.sram)
    except build.BuildError as error:  # TFLM_DIR or a toolchain that does not build: the user's setup
        raise ValueError(f"building the Cortex-M4 runner failed: {error}") from None
    except qemu.QemuError as error:  # no qemu-system-arm, or the firmware crashed
        raise ValueError(f"running the Cortex-M4 runner under QEMU failed: {error}") from None
    print(report.table())
    return 0 if report.any_fits else 1


def cmd_main() -> None:
    """The README's main job: the hyper model beside the stored CNN of the same budget, one table."""
    from hyper_tinypw_tf import pipeline

    pipeline.MainJob(FLAGS.out, _run_config(), _load_data).run()


def cmd_evaluate() -> None:
    """Metrics JSON with clustered-bootstrap CIs of one model file on --split of --task."""
    from hyper_tinypw_tf import pipeline

    if not FLAGS.model:
        raise ValueError("evaluate needs --model=PATH of a .keras, .h5 or .tflite model")
    if FLAGS.split == "all" and FLAGS.task == "speech_commands" and not FLAGS["kws_split"].present:
        FLAGS.kws_split = "all"  # every clip is test data; no split may be required to hold training clips
    result = pipeline.evaluate_model(
        FLAGS.model, lambda: _load_data(shuffle_train=False), FLAGS.split, FLAGS.n_boot, FLAGS.seed
    )
    print(json.dumps(result, indent=2))


# ---- argument checks: each command's validate_<command> runs before any data is read or model built ----

_MITDB_TASKS = ("mitdb_v", "mitdb_aami")


def _require(flag: str, what: str) -> str:
    value = FLAGS[flag].value
    if not value:
        raise ValueError(f"--{flag} is required: {what}")
    return value


def _check_existing(flag: str, what: str, directory_ok: bool = False) -> None:
    """A required input path that must exist (a file, or also a folder, e.g. a SavedModel)."""
    path = Path(_require(flag, what))
    if not path.exists():
        raise ValueError(f"--{flag}={path}: no such file")
    if path.is_dir() and not directory_ok:
        raise ValueError(f"--{flag}={path} is a directory, expected a file")


def _check_writable(directory: Path, flag: str) -> None:
    """Create and delete a probe file: permission bits alone do not tell (root ignores them, /proc refuses)."""
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        where = f"--{flag}={FLAGS[flag].value}"
        raise ValueError(f"{where}: cannot write in {str(directory)!r} ({error.strerror})") from None


def _check_output_file(flag: str) -> None:
    """An output file path whose folder exists and is writable (the file itself is not created here)."""
    path = Path(FLAGS[flag].value)
    parent = path.parent
    if path.is_dir():
        raise ValueError(f"--{flag}={path} is a directory, expected a file name")
    if not parent.is_dir():
        raise ValueError(f"--{flag}={path}: the directory {str(parent)!r} does not exist")
    _check_writable(parent, flag)


def _check_out_dir() -> None:
    """--out is a writable folder; it is made here (with its parents) so a bad path fails before any work."""
    out = Path(FLAGS.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out={out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"--out={out}: cannot create the directory ({error.strerror})") from None
    _check_writable(out, "out")


def _check_preset() -> None:
    """The preset exists and is built for the task's kind of input (ECG windows or KWS features)."""
    from hyper_tinypw_tf import models

    preset = models.get_preset(FLAGS.preset)
    kind = "kws" if FLAGS.task == "speech_commands" else "ecg"
    if preset.task != kind:
        fitting = sorted(name for name, p in models.PRESETS.items() if p.task == kind)
        raise ValueError(
            f"--preset={FLAGS.preset} is for {preset.task.upper()} input and --task={FLAGS.task} needs a preset "
            f"for {kind.upper()} input: one of {', '.join(fitting)}"
        )


def _check_data() -> None:
    """--data_dir and --records fit --task (a missing --data_dir is a download target, said before it starts)."""
    data_dir = _data_dir()
    if data_dir.exists() and not data_dir.is_dir():
        raise ValueError(f"--data_dir={data_dir} is a file, expected a dataset directory")
    if not FLAGS.records:
        return
    if FLAGS.task not in _MITDB_TASKS:
        raise ValueError(f"--records applies to --task={' or '.join(_MITDB_TASKS)}, received --task={FLAGS.task}")
    from hyper_tinypw_tf.data import mitdb

    distinct = sorted(set(FLAGS.records))
    if getattr(FLAGS, "protocol", "patient_wise") == "patient_wise" and len(distinct) < mitdb.MIN_POOL_RECORDS:
        raise ValueError(
            f"--records={','.join(FLAGS.records)} names {len(distinct)} distinct record(s); a patient-wise split "
            f"needs at least {mitdb.MIN_POOL_RECORDS}, one for each of train, val and test"
        )


def validate_train() -> None:
    _check_preset()
    _check_data()
    _check_out_dir()


def validate_main() -> None:
    validate_train()
    _check_budget_flags()


def _check_budget_flags() -> None:
    """--mode=budget and --sram_budget come together (main and export)."""
    if FLAGS.mode == "budget" and FLAGS.sram_budget is None:
        raise ValueError("--mode=budget needs --sram_budget=BYTES (SRAM for cached kernels)")
    if FLAGS.sram_budget is not None and FLAGS.mode != "budget":
        raise ValueError(f"--sram_budget applies to --mode=budget, received --mode={FLAGS.mode}")


def validate_qat() -> None:
    _check_existing("model", "the trained model (.keras / .h5 / SavedModel folder) to fine-tune", directory_ok=True)
    _check_data()
    _check_out_dir()


def validate_export() -> None:
    _check_existing("model", "a QAT model (or a float model with --task/--data_dir for calibration)", directory_ok=True)
    if FLAGS.c_array is not None:
        from hyper_tinypw_tf.export import c_array

        c_array.to_c_array(b"\0", FLAGS.c_array)  # raises naming a bad C identifier
    if FLAGS.output:
        _check_output_file("output")
    else:
        _check_out_dir()
    if FLAGS["task"].present or FLAGS["data_dir"].present:
        _check_data()
    if FLAGS.mode == "budget" and FLAGS.format != "hyper":
        raise ValueError(f"--mode=budget needs --format=hyper, received --format={FLAGS.format}")
    _check_budget_flags()


def validate_expand() -> None:
    _check_existing("input", "the hyper .tflite to expand")
    _require("output", "the folded .tflite to write")
    _check_output_file("output")


def validate_tflm() -> None:
    _check_existing("model", "the .tflite (folded or hyper) to run")
    if FLAGS.input:
        _check_existing("input", "int8 examples as .npy, the batch first")
    if FLAGS.output:
        _check_output_file("output")


def validate_fit() -> None:
    _check_existing("model", "the .tflite (folded or hyper) to fit")


def validate_report() -> None:
    from hyper_tinypw_tf import models

    models.get_preset(FLAGS.preset)


def validate_evaluate() -> None:
    _check_existing("model", "a .keras, .h5 or .tflite model to score", directory_ok=True)
    _check_data()


USAGE = (
    f"usage: hyper-tinypw COMMAND [--flag=value ...]   COMMAND: {', '.join(COMMANDS)}   "
    "(hyper-tinypw COMMAND --help lists the flags)"
)
_HELP = ("-h", "-?", "--help", "--helpshort", "--helpfull")


def _one_line(error: BaseException) -> str:
    """The first line of an error's message (an OSError as 'reason: path')."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        return f"{error.strerror}: {error.filename}"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _fail(command: str, message: str) -> int:
    sys.stderr.write(f"hyper-tinypw {command}: error: {message}\n")
    return 2


def main(argv: Sequence[str]) -> int:
    """Run ``hyper-tinypw COMMAND --flag=value ...`` in this process and return the exit status.

    Bad input of any kind (flags, paths, files, data) returns 2 after one ``hyper-tinypw COMMAND: error:``
    line on stderr; only exceptions that mean bad input are caught, so internal bugs keep their traceback.
    """
    if not argv:
        sys.stderr.write(USAGE + "\n")
        return 2
    if argv[0] in _HELP:
        print(__doc__)
        return 0
    command, args = argv[0], list(argv[1:])
    if command not in COMMANDS:
        sys.stderr.write(f"hyper-tinypw: error: unknown command {command!r}; {USAGE}\n")
        return 2
    if any(arg in _HELP for arg in args):
        print(f"usage: hyper-tinypw {command} [--flag=value ...]\n" + FLAGS.module_help(__name__))
        return 0
    FLAGS.unparse_flags()
    try:
        rest = FLAGS([f"hyper-tinypw {command}", *args])
    except flags.UnrecognizedFlagError as error:
        return _fail(command, f"{_one_line(error)} (hyper-tinypw {command} --help lists the flags)")
    except flags.Error as error:
        return _fail(command, _one_line(error))
    if len(rest) > 1:
        return _fail(command, f"unexpected argument {rest[1]!r} (flags are written --name=value)")
    logging.use_absl_handler()
    from hyper_tinypw_tf.data.errors import DataError

    try:
        validate = globals().get(f"validate_{command}")
        if validate is not None:
            validate()
        status = globals()[f"cmd_{command}"]()  # None, or a command's own exit status (fit: 1 = fits nowhere)
    except (ValueError, OSError, DataError, app.UsageError) as error:
        # Bad input (arguments, files, models, data): one clear line, not a traceback.
        return _fail(command, _one_line(error))
    return int(status or 0)


def run() -> None:
    """Entry point of the ``hyper-tinypw`` console script."""
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()
