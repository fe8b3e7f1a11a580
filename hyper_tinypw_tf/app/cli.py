"""The ``hyper-tinypw`` console script: ``hyper-tinypw COMMAND --flag=value ...``.

Commands (each a thin wrapper over library functions):
  main     hyper model beside the stored CNN of the same budget: train → QAT → export → TFLM → one table
  evaluate metrics with CIs of a .keras/.h5/.tflite model on a task's test split (or val, or all of it)
  train    fit a preset on a task, with checkpoints and resume
  qat      quantization-aware fine-tuning of a trained model
  export   write folded or hyper .tflite (optionally LUT-compressed, --lut_bits; and a C array)
  cluster  fine-tune a trained model with its stored 1x1 layers clustered, then cluster-preserving QAT
           (the LUT peer; export --lut_bits)
  expand   hyper .tflite → folded .tflite, synthesis on the host
  report   byte accounting of a preset, stored against hyper
  tflm     run a .tflite (folded or hyper) in TFLM's MicroInterpreter with the HyperTinyPW op; prints JSON
  fit      flash, SRAM and instructions per synthesis mode on the Cortex-M4 against a board (exit 1: fits nowhere)
  compress trained stored model → hyper model on its backbone within --budget bytes: fit, distil, QAT, TFLM score

Each command declares the flags it takes (:data:`COMMANDS`); a flag given to a command that ignores it,
or a task flag (``--records``, ``--protocol``, ``--rr_features``, ``--kws_split``) given for a task that
ignores it (``hyper_tinypw_tf.tasks``), is refused. This is the only module that reaches across packages
(into ``export`` and ``tflm_harness``), and it imports them lazily.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter would bury the one error line

from absl import app, flags, logging  # noqa: E402

from hyper_tinypw_tf import tasks  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("task", "mitdb_v", list(tasks.NAMES), "Dataset task (hyper_tinypw_tf.tasks).")
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
                  "Build and train under tf.distribute (MirroredStrategy, MultiWorkerMirroredStrategy).")
flags.DEFINE_string("out", "artifacts", "Output folder.")
flags.DEFINE_string("model", None, "A saved model: .keras / .h5 / SavedModel (.tflite for evaluate, tflm, fit).")
flags.DEFINE_enum("format", "hyper", ["folded", "hyper"], "Export format.")
flags.DEFINE_enum("mode", "boot", ["boot", "lazy", "stream", "budget"],
                  "Synthesis mode of the hyper custom op; budget: per layer boot or stream within --sram_budget.")
flags.DEFINE_integer("sram_budget", None, "--mode=budget: bytes of SRAM for cached kernels.", lower_bound=0)
flags.DEFINE_enum("target", "host", ["host", "cortex-m4"], "Where the model runs.")
flags.DEFINE_integer("flash", 1 << 20, "The board's flash in bytes (default: Arduino Nano 33 BLE).", lower_bound=1)
flags.DEFINE_integer("sram", 256 << 10, "The board's SRAM in bytes (default: Arduino Nano 33 BLE).", lower_bound=1)
flags.DEFINE_integer("lut_bits", None, "export: LUT-compress the stored 1x1 filters to this many index bits, "
                     "1..7, decoded by TFLM's DECODE op (the model must be clustered: hyper-tinypw cluster).")
flags.DEFINE_integer("clusters", 16, "cluster: centroids per stored 1x1 layer (export it with "
                     "--lut_bits=ceil(log2(clusters))).", lower_bound=2, upper_bound=256)
flags.DEFINE_string("c_array", None, "Also write NAME.cc/NAME.h with the model as a C array.")
flags.DEFINE_string("input", None, "Input .tflite for expand; int8 examples (.npy, N first) for tflm.")
flags.DEFINE_string("output", None, "Output .tflite for expand/export; int8 outputs (.npy) for tflm.")
flags.DEFINE_integer("n_boot", 1000, "Bootstrap resamples for confidence intervals.", lower_bound=1)
flags.DEFINE_list("records", None, "MIT-BIH only: restrict the record pool to these records (quick runs).")
flags.DEFINE_string(
    "protocol", "patient_wise",
    "MIT-BIH: patient_wise (records of one pool split into train/val/test), inter_patient (de Chazal: DS1 "
    "train/val, DS2 test; needs the whole database) or cv:K (K-fold cross-validation, K >= 3); "
    "speech_commands: cv:K only.",
)
flags.DEFINE_integer("fold", 0, "--protocol=cv:K: the fold (0..K-1) whose test/val/train split is used.",
                     lower_bound=0)
flags.DEFINE_enum("split", "test", ["test", "val", "all"],
                  "The split to score; all = every example (a folder used entirely as test data).")
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
    "rr_features", None,
    "MIT-BIH only: add pre-RR, post-RR and local-mean RR (each over the record's mean RR) as three input "
    "channels beside the waveform window (default: on for mitdb_aami; --norr_features turns it off).",
)
flags.DEFINE_bool(
    "beat_template", None,
    "MIT-BIH only: add each beat minus its record's median beat as an input channel, the per-patient "
    "normalization inter-patient beat classification needs (default: on for mitdb_aami).",
)

# The Cortex-M4 target's tools and the Debian packages that hold them (tools/install_system_deps.sh installs them).
M4_TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-ar", "qemu-system-arm")
M4_PACKAGES = ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi", "libstdc++-arm-none-eabi-newlib", "qemu-system-arm")


def _spec() -> tasks.TaskSpec:
    return tasks.get(FLAGS.task)


def _data_dir() -> Path:
    if FLAGS.data_dir:
        return Path(FLAGS.data_dir)
    spec = _spec()
    if not spec.shared_copy:
        raise app.UsageError(f"--task={spec.name} has no local copy here; pass --data_dir")
    from hyper_tinypw_tf.data.options import default_data_dir

    return default_data_dir(spec.dataset)


def _task_kwargs() -> dict[str, Any]:
    """The task flags the task takes, as its loader's keyword arguments (checked by _check_task_flags)."""
    spec, extra = _spec(), {}
    if FLAGS.records:
        extra["records"] = FLAGS.records
    if spec.takes(tasks.PROTOCOL) and (FLAGS["protocol"].present or "patient_wise" in spec.protocols):
        extra["protocol"] = FLAGS.protocol
        if FLAGS.protocol.startswith(tasks.CV + ":"):
            extra["fold"] = FLAGS.fold
    if spec.takes(tasks.KWS_SPLIT):
        extra["split"] = FLAGS.kws_split
    extra.update({flag: True for flag, on in _input_channels().items() if on})
    return extra


def _input_channels() -> dict[str, bool]:
    """The input-channel flags in force for the task (given, else the task's default)."""
    return _spec().input_channels({flag: FLAGS[flag].value for flag in tasks.INPUT_CHANNELS})


def _load_data(shuffle_train: bool = False, fold: int | None = None) -> tuple[dict[str, Any], Any]:
    """Datasets per split and metadata; every split in a fixed order (val/test aligned with info.groups).

    ``fold`` overrides ``--fold`` under ``--protocol=cv:K`` (``main`` runs every fold).

    ``training.fit`` shuffles the training set per epoch from (seed, epoch), which a pre-shuffled set would
    undo: its order would then depend on the process, and a resumed run would see other batches.
    """
    from hyper_tinypw_tf import data

    # Progress bars for a person at a terminal; none in logs and captured output.
    options = data.LoadOptions(quiet=not sys.stderr.isatty())
    extra = _task_kwargs()
    if fold is not None:
        extra["fold"] = fold
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
    from hyper_tinypw_tf.app import pipeline

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
    if not FLAGS.distill:
        return None
    return _load_model(FLAGS.teacher, "teacher")


def _train(out: Path) -> tuple[Any, dict[str, Any], Any]:
    from hyper_tinypw_tf import accounting, quantization, training
    from hyper_tinypw_tf.app import pipeline

    training.set_seed(FLAGS.seed)
    teacher = _teacher()  # loaded and checked against the task before the data
    datasets, info = _load_data()
    with training.distribution_strategy(FLAGS.distribute).scope():  # variables made, and trained, there
        model = _build_model(info, datasets["train"])
        accounting.packed_bytes(model).summary(logging.info)
        pipeline.fit_model(model, datasets, info, _run_config(), FLAGS.epochs, FLAGS.learning_rate,
                           out / "checkpoints", teacher)
    quantization.save_model(model, out / "model.keras")
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


def _export(model: Any, out: Path, formats: tuple[str, ...], calibration: Any = None) -> dict[str, Path]:
    """Write each format's .tflite (and the C array, if asked, for --format); each prints its byte table."""
    from hyper_tinypw_tf.export import api

    paths = {}
    for fmt in formats:
        paths[fmt] = Path(FLAGS.output) if FLAGS.output and len(formats) == 1 else out / f"model_{fmt}.tflite"
        c_array = FLAGS.c_array if fmt == FLAGS.format else None
        api.export_files(
            model, paths[fmt], fmt=fmt, mode=FLAGS.mode, representative_data=calibration, c_array_name=c_array,
            sram_budget=FLAGS.sram_budget if fmt == "hyper" else None, lut_bits=FLAGS.lut_bits,
        )
    return paths


def _calibrates() -> bool:
    """export: whether a float model is calibrated on --task's training inputs (--task or --data_dir given)."""
    return FLAGS["task"].present or FLAGS["data_dir"].present


def _calibration() -> Any:
    """Training inputs for calibrating a float model, when --task or --data_dir was given."""
    import numpy as np

    if not _calibrates():
        return None
    datasets, _ = _load_data()
    return np.concatenate([x.numpy() for x, _ in datasets["train"].take(4)])


# ---- the model meets its task: shapes and class counts compared before any data is read ----


def _one_line(error: BaseException) -> str:
    """The first line of an error's message (an OSError as 'reason: path')."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        return f"{error.strerror}: {error.filename}"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _read_model(path: str | Path, flag: str) -> Any:
    """A saved Keras model with the QAT classes in scope; an unreadable file is named as --flag=path."""
    from hyper_tinypw_tf import quantization
    from hyper_tinypw_tf._keras import keras

    with quantization.quantize_scope():
        try:
            return keras.models.load_model(path)
        except (OSError, ValueError) as error:  # h5py and Keras do not name the file
            raise ValueError(f"--{flag}={path}: not a loadable Keras model ({_one_line(error)})") from error


def _keras_signature(model: Any) -> tuple[tuple[int, ...], int]:
    return tuple(model.input_shape[1:]), int(model.output_shape[-1])


def _load_model(path: str, flag: str = "model") -> Any:
    """A saved Keras model, checked against --task."""
    model = _read_model(path, flag)
    _check_fits_task(flag, path, *_keras_signature(model))
    return model


def _signature(path: Path, flag: str) -> tuple[tuple[int, ...], int]:
    """(input shape without the batch, class count) of a model file: a .tflite's flatbuffer, a Keras model loaded."""
    if path.suffix != ".tflite":
        return _keras_signature(_read_model(path, flag))
    from hyper_tinypw_tf.export import _flatbuffer as fb

    graph = fb.read(path.read_bytes(), f"--{flag}={path}").subgraphs[0]
    shape = [int(d) for d in graph.tensors[graph.inputs[0]].shape]
    return tuple(shape[1:]), int(graph.tensors[graph.outputs[0]].shape[-1])


def _check_fits_task(flag: str, path: str | Path, input_shape: tuple[int, ...], classes: int) -> None:
    problem = tasks.mismatch(_spec(), input_shape, classes, **_input_channels())
    if problem:
        raise ValueError(f"--{flag}={path} {problem}")


# ---- commands ----


def cmd_report() -> None:
    """Same-backbone bytes (stored twin vs hyper), the runtime bill, and the budget comparison."""
    from hyper_tinypw_tf import accounting, models

    preset = models.get_preset(FLAGS.preset)
    task = tasks.get(FLAGS.task) if FLAGS["task"].present else tasks.get(tasks.of_family(preset.task)[0])
    classes = task.num_classes
    print(f"{preset.name} on {task.name} ({classes} classes)", end="\n\n")
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


def cmd_qat() -> None:
    from hyper_tinypw_tf import quantization
    from hyper_tinypw_tf.app import pipeline

    out = Path(FLAGS.out)
    model, teacher = _load_model(FLAGS.model), _teacher()  # both checked against the task before the data
    datasets, info = _load_data()
    qat_model = quantization.quantize_model(model)
    if FLAGS.qat_epochs > 0:
        pipeline.fit_model(qat_model, datasets, info, _run_config(), FLAGS.qat_epochs, FLAGS.learning_rate / 10,
                           None, teacher)
    quantization.save_model(qat_model, out / "model_qat.h5")
    _evaluate(_keras_predict(qat_model), datasets, info, out, "qat")


def cmd_export() -> None:
    # A float model calibrated on --task's data must fit that task; a QAT model needs no data.
    model = _load_model(FLAGS.model) if _calibrates() else _read_model(FLAGS.model, "model")
    _export(model, Path(FLAGS.out), (FLAGS.format,), _calibration())


def cmd_cluster() -> None:
    """--model's stored 1×1 layers clustered to --clusters centroids, fine-tuned --epochs at a tenth of the rate,
    then --qat_epochs of cluster-preserving QAT at that rate.

    Writes --out/model_clustered_qat.h5 (a QAT model; with --qat_epochs=0 --out/model_clustered.keras, a float
    model for post-training calibration) and scores it; ``export --lut_bits`` makes the LUT file.
    """
    from hyper_tinypw_tf import quantization
    from hyper_tinypw_tf.app import pipeline
    from hyper_tinypw_tf.export import peers

    out = Path(FLAGS.out)
    model = _load_model(FLAGS.model)  # checked against the task before the data
    datasets, info = _load_data()
    clustered = pipeline.cluster_model(model, datasets, info, _run_config(), FLAGS.clusters, FLAGS.epochs,
                                       FLAGS.learning_rate / 10, None, qat_epochs=FLAGS.qat_epochs)
    qat = FLAGS.qat_epochs > 0
    path = out / ("model_clustered_qat.h5" if qat else "model_clustered.keras")
    quantization.save_model(clustered, path)
    _evaluate(_keras_predict(clustered), datasets, info, out, "clustered_qat" if qat else "clustered")
    how = "no data needed: QAT ranges" if qat else "and --task: post-training calibration"
    print(f"\n{path}: export it with --lut_bits={peers.bits_for_clusters(FLAGS.clusters)} ({how})")


def cmd_expand() -> None:
    from hyper_tinypw_tf.export import api

    try:
        api.expand_file(FLAGS.input, FLAGS.output)
    except ValueError as error:  # the exporter speaks of "hyper model"; the user named a file
        raise ValueError(f"--input={FLAGS.input}: {_one_line(error)}") from None


_RUNNER_TEMP = re.compile(r"\S*htpw_(run|m4)_\w+/x\.npy")


def _toolchain_message(what: str) -> str:
    return (f"{what} needs the Arm toolchain and QEMU; install Debian's {' '.join(M4_PACKAGES)} "
            f"(apt-get install, or tools/install_system_deps.sh)")


def _run_harness(what: str, function: Callable[[], Any]) -> Any:
    """Call into tflm_harness with its setup failures as one line about the user's setup or files."""
    from tflm_harness import build, qemu

    try:
        return function()
    except build.BuildError as error:  # TFLM_DIR or a toolchain that does not build: the user's setup
        raise ValueError(f"building the {what} failed: {_one_line(error)}") from None
    except qemu.QemuError as error:  # no qemu-system-arm, or the firmware crashed
        raise ValueError(f"running the Cortex-M4 runner under QEMU failed: {_one_line(error)}") from None
    except FileNotFoundError as error:
        if "arm-none-eabi" in str(error.filename):
            raise ValueError(_toolchain_message(what) + f" ({error.filename} not found)") from None
        raise
    except ValueError as error:  # the runner's own usage errors name its temporary copy of the examples
        if FLAGS.input and _RUNNER_TEMP.search(str(error)):
            raise ValueError(_RUNNER_TEMP.sub(FLAGS.input, str(error))) from None
        raise


def cmd_tflm() -> None:
    """Build (cached) and run --model in TFLM on --target; print the runner's statistics as JSON."""
    from tflm_harness import run

    runner = "TFLM runner" if FLAGS.target == "host" else "Cortex-M4 runner"
    stats = _run_harness(runner, lambda: run.run_files(FLAGS.model, FLAGS.target, FLAGS.input, FLAGS.output))
    print(json.dumps(stats, indent=2))


def cmd_fit() -> int:
    """Measure --model on the Cortex-M4 in each synthesis mode; exit status 1 when no mode fits the board."""
    from tflm_harness import fit

    report = _run_harness("Cortex-M4 runner", lambda: fit.fit_file(FLAGS.model, flash=FLAGS.flash, sram=FLAGS.sram))
    print(report.table())
    return 0 if report.any_fits else 1


def cmd_main() -> None:
    """The README's main job: the hyper model beside the stored CNN of the same budget, one table."""
    from hyper_tinypw_tf.app import main_job

    main_job.run_main(FLAGS.out, _run_config(), lambda fold: _load_data(fold=fold), FLAGS.protocol)


def cmd_evaluate() -> None:
    """Metrics JSON with clustered-bootstrap CIs of one model file on --split of --task."""
    from hyper_tinypw_tf.app import pipeline

    if FLAGS.split == "all" and FLAGS.task == "speech_commands" and not FLAGS["kws_split"].present:
        FLAGS.kws_split = "all"  # every clip is test data; no split may be required to hold training clips
    result = pipeline.evaluate_model(
        FLAGS.model, lambda: _load_data(shuffle_train=False), FLAGS.split, FLAGS.n_boot, FLAGS.seed
    )
    print(json.dumps(result, indent=2))


# ---- argument checks: each command's validate function runs before any data is read or model built ----


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


_created: list[Path] = []  # folders this run made (the topmost new one), removed again if it fails


def _check_out_dir() -> None:
    """--out is a writable folder; it is made here (with its parents) so a bad path fails before any work."""
    out = Path(FLAGS.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out={out} exists and is not a directory")
    new = next((p for p in reversed([out, *out.parents]) if not p.exists()), None)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"--out={out}: cannot create the directory ({error.strerror})") from None
    if new is not None:
        _created.append(new)
    _check_writable(out, "out")


def _remove_created() -> None:
    """After a failure: remove the folders this run made, unless they hold a file (a resumable run's state)."""
    while _created:
        folder = _created.pop()
        if folder.is_dir() and not any(p.is_file() or p.is_symlink() for p in folder.rglob("*")):
            shutil.rmtree(folder, ignore_errors=True)


def _check_preset() -> None:
    """The preset exists and is built for the task's kind of input (its family in the task registry)."""
    from hyper_tinypw_tf import models

    preset, spec = models.get_preset(FLAGS.preset), _spec()
    if preset.task != spec.family:
        fitting = sorted(name for name, p in models.PRESETS.items() if p.task == spec.family)
        raise ValueError(
            f"--preset={FLAGS.preset} is for {preset.task.upper()} input and --task={FLAGS.task} needs a preset "
            f"for {spec.family.upper()} input: one of {', '.join(fitting)}"
        )


def _check_task_flags() -> None:
    """Each task flag given is one --task takes, with a value it takes (before any download or data read)."""
    spec = _spec()
    for flag in tasks.TASK_FLAGS:
        if FLAGS[flag].present and not spec.takes(flag):
            takers = " or ".join(tasks.taking(flag))
            raise ValueError(f"--{flag} applies to --task={takers}, received --task={spec.name}")
    folds = tasks.parse_protocol(spec, FLAGS.protocol) if FLAGS["protocol"].present else None
    if folds is not None and FLAGS["kws_split"].present:
        raise ValueError(f"--kws_split and --protocol={FLAGS.protocol} both split speakers; give one of them")
    if FLAGS["fold"].present and folds is None:
        raise ValueError("--fold applies with --protocol=cv:K, which was not given")
    if folds is not None and FLAGS.fold >= folds:
        raise ValueError(f"--fold={FLAGS.fold} is not a fold of --protocol={FLAGS.protocol} (0..{folds - 1})")
    if spec.takes(tasks.KWS_SPLIT):
        from hyper_tinypw_tf.data import speech_commands

        speech_commands.SplitRule.parse(FLAGS.kws_split)  # raises naming the bad rule


def _check_data() -> None:
    """--data_dir and the task flags fit --task (a missing --data_dir is a download target, said before it starts)."""
    _check_task_flags()
    data_dir = _data_dir()
    if data_dir.exists() and not data_dir.is_dir():
        raise ValueError(f"--data_dir={data_dir} is a file, expected a dataset directory")
    if not FLAGS.records:
        return
    from hyper_tinypw_tf.data import mitdb

    distinct = sorted(set(FLAGS.records))
    protocol = FLAGS.protocol
    folds = tasks.parse_protocol(_spec(), protocol)
    needed, each = (folds, "fold") if folds else (mitdb.MIN_POOL_RECORDS if protocol == "patient_wise" else 0,
                                                  "of train, val and test")
    if len(distinct) < needed:
        raise ValueError(
            f"--records={','.join(FLAGS.records)} names {len(distinct)} distinct record(s); --protocol={protocol} "
            f"needs at least {needed}, one for each {each}"
        )


def _check_budget_flags() -> None:
    """--mode=budget and --sram_budget come together (main and export)."""
    if FLAGS.mode == "budget" and FLAGS.sram_budget is None:
        raise ValueError("--mode=budget needs --sram_budget=BYTES (SRAM for cached kernels)")
    if FLAGS.sram_budget is not None and FLAGS.mode != "budget":
        raise ValueError(f"--sram_budget applies to --mode=budget, received --mode={FLAGS.mode}")


def _check_teacher() -> None:
    """--teacher goes with --distill; train/qat need it, main trains the stored twin without it."""
    if FLAGS.teacher and not FLAGS.distill:
        raise ValueError("--teacher applies with --distill, which was not given")
    if FLAGS.distill and FLAGS.teacher:
        _check_existing("teacher", "the distillation teacher", directory_ok=True)


def validate_train() -> None:
    _check_preset()
    _check_data()
    _check_teacher()
    if FLAGS.distill and not FLAGS.teacher:
        raise ValueError("--distill needs --teacher=PATH of the trained stored twin (hyper-tinypw main trains it)")
    _check_out_dir()


def _stage_files(out: Path) -> list[Path]:
    """Model files an earlier main run left in --out, which this run would resume from."""
    from hyper_tinypw_tf.app import main_job, pipeline

    names = ("model.keras", "model_qat.h5", "model_folded.tflite", "model_hyper.tflite")
    return [out / side / name for side in (*main_job.SIDES, pipeline.TWIN) for name in names
            if (out / side / name).is_file()]


def validate_main() -> None:
    _check_preset()
    _check_data()
    _check_teacher()
    _check_budget_flags()
    if FLAGS.distill and FLAGS.teacher:
        _check_fits_task("teacher", FLAGS.teacher, *_signature(Path(FLAGS.teacher), "teacher"))
    for path in _stage_files(Path(FLAGS.out)):  # a resumed run must be of the same task
        problem = tasks.mismatch(_spec(), *_signature(path, "out"), **_input_channels())
        if problem:
            raise ValueError(f"--out={FLAGS.out} holds {path} from an earlier run, which {problem}")
    _check_out_dir()


def validate_qat() -> None:
    _check_existing("model", "the trained model (.keras / .h5 / SavedModel folder) to fine-tune", directory_ok=True)
    _check_data()
    _check_teacher()
    if FLAGS.distill and not FLAGS.teacher:
        raise ValueError("--distill needs --teacher=PATH of the trained stored twin (hyper-tinypw main trains it)")
    _check_out_dir()


def validate_export() -> None:
    _check_existing("model", "a QAT model (or a float model with --task/--data_dir for calibration)", directory_ok=True)
    if FLAGS.c_array is not None:
        from hyper_tinypw_tf.export import c_array

        c_array.to_c_array(b"\0", FLAGS.c_array)  # raises naming a bad C identifier
    if FLAGS.mode == "budget" and FLAGS.format != "hyper":
        raise ValueError(f"--mode=budget needs --format=hyper, received --format={FLAGS.format}")
    _check_budget_flags()
    if _calibrates():
        _check_data()
    else:
        for flag in ("records", "protocol", "kws_split", "rr_features", "beat_template", "batch_size", "seed"):
            if FLAGS[flag].present:
                raise ValueError(f"--{flag} applies to calibration data, which needs --task or --data_dir")
    if FLAGS.output:
        _check_output_file("output")
    else:
        _check_out_dir()


def validate_cluster() -> None:
    _check_existing("model", "the trained float model (.keras / SavedModel folder) to cluster", directory_ok=True)
    _check_data()
    _check_out_dir()


def validate_expand() -> None:
    _check_existing("input", "the hyper .tflite to expand")
    _require("output", "the folded .tflite to write")
    _check_output_file("output")


def _check_arm_toolchain(what: str) -> None:
    missing = [tool for tool in M4_TOOLS if shutil.which(tool) is None]
    if missing:
        raise ValueError(_toolchain_message(what) + f" ({', '.join(missing)} not on PATH)")


def _check_examples() -> None:
    """tflm --input: int8 examples, the batch first, each the size of --model's input tensor."""
    import numpy as np

    try:
        x = np.load(FLAGS.input, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"--input={FLAGS.input}: not a .npy array ({_one_line(error)})") from None
    if x.dtype != np.int8:
        raise ValueError(f"--input={FLAGS.input} holds {x.dtype}; the model takes int8 examples (quantized)")
    shape, _ = _signature(Path(FLAGS.model), "model")
    if x.ndim < 1 or len(x) == 0 or int(np.prod(x.shape[1:])) != int(np.prod(shape)):
        raise ValueError(f"--input={FLAGS.input} holds shape {x.shape}; --model={FLAGS.model} takes a batch "
                         f"of examples of shape {shape}")


def validate_tflm() -> None:
    _check_existing("model", "the .tflite (folded or hyper) to run")
    if FLAGS.target == "cortex-m4":
        _check_arm_toolchain("the Cortex-M4 runner")
    if FLAGS.input:
        _check_existing("input", "int8 examples as .npy, the batch first")
        _check_examples()
    if FLAGS.output:
        _check_output_file("output")


def validate_fit() -> None:
    _check_existing("model", "the .tflite (folded or hyper) to fit")
    _check_arm_toolchain("fit (the Cortex-M4 runner)")


def validate_report() -> None:
    from hyper_tinypw_tf import models

    models.get_preset(FLAGS.preset)
    if FLAGS["task"].present:
        _check_preset()


def validate_evaluate() -> None:
    _check_existing("model", "a .keras, .h5 or .tflite model to score", directory_ok=True)
    _check_data()
    _check_fits_task("model", FLAGS.model, *_signature(Path(FLAGS.model), "model"))


flags.DEFINE_integer("budget", None, "compress: bytes the hyper file may take, flatbuffer included.", lower_bound=1)
flags.DEFINE_enum("strategy", "tiled", ["tiled", "paper", "low_rank"], "compress: the generator strategy.")
flags.DEFINE_enum("init", "fit", ["fit", "scratch"],
                  "compress: fit the generator to the stored PW layers, or start from scratch (the baseline).")


def validate_compress() -> None:
    _check_existing("model", "the trained stored model (.keras, or a QAT .h5) to compress", directory_ok=True)
    _require("budget", "the hyper file's byte budget")
    _check_data()
    _check_out_dir()


def cmd_compress() -> None:
    """--model (stored) → --out/model_hyper.tflite within --budget: fine-tunes --epochs, then --qat_epochs."""
    from hyper_tinypw_tf.app import compress

    finetune = compress.Finetune(epochs=FLAGS.epochs, qat_epochs=FLAGS.qat_epochs, learning_rate=FLAGS.learning_rate,
                                 distill_alpha=FLAGS.distill_alpha, distill_temperature=FLAGS.distill_temperature,
                                 patience=FLAGS.patience, seed=FLAGS.seed)
    compress.run(FLAGS.model, FLAGS.budget, FLAGS.out, _load_data, FLAGS.strategy, finetune, FLAGS.init, FLAGS.mode,
                 n_boot=FLAGS.n_boot)


# ---- the command table: what each command runs and the flags it takes ----

_DATA = ("task", "data_dir", "batch_size", "seed", "records", "protocol", "kws_split", "rr_features",
         "beat_template")
_TRAINING = ("learning_rate", "patience", "loss", "focal_gamma", "class_weights", "distill", "teacher",
             "distill_alpha", "distill_temperature")


@dataclass(frozen=True)
class Command:
    """One command: its checks (run first), its body, and every flag it reads."""

    validate: Callable[[], None]
    run: Callable[[], int | None]
    flags: tuple[str, ...]


COMMANDS: dict[str, Command] = {
    "main": Command(validate_main, cmd_main, (*_DATA, *_TRAINING, "preset", "epochs", "qat_epochs", "distribute",
                                              "out", "mode", "sram_budget", "n_boot")),
    "evaluate": Command(validate_evaluate, cmd_evaluate, (*_DATA, "fold", "model", "split", "n_boot")),
    "train": Command(validate_train, cmd_train, (*_DATA, *_TRAINING, "fold", "preset", "pw", "epochs", "distribute",
                                                 "out", "n_boot")),
    "qat": Command(validate_qat, cmd_qat, (*_DATA, *_TRAINING, "fold", "model", "qat_epochs", "out", "n_boot")),
    "export": Command(validate_export, cmd_export, (*_DATA, "model", "format", "mode", "sram_budget", "lut_bits",
                                                    "c_array", "output", "out")),
    "cluster": Command(validate_cluster, cmd_cluster, (*_DATA, "model", "clusters", "epochs", "qat_epochs",
                                                       "learning_rate",
                                                       "patience", "loss", "focal_gamma", "class_weights", "out",
                                                       "n_boot")),
    "expand": Command(validate_expand, cmd_expand, ("input", "output")),
    "report": Command(validate_report, cmd_report, ("preset", "task")),
    "tflm": Command(validate_tflm, cmd_tflm, ("model", "target", "input", "output")),
    "fit": Command(validate_fit, cmd_fit, ("model", "flash", "sram")),
    "compress": Command(validate_compress, cmd_compress, (*_DATA, "model", "budget", "strategy", "init", "epochs",
                                                          "qat_epochs", "learning_rate", "patience", "distill_alpha",
                                                          "distill_temperature", "mode", "out", "n_boot")),
}
# Every flag this module defines is some command's (a new flag must be added to the commands that read it).
_OURS = {name for command in COMMANDS.values() for name in command.flags}

USAGE = (
    f"usage: hyper-tinypw COMMAND [--flag=value ...]   COMMAND: {', '.join(COMMANDS)}   "
    "(hyper-tinypw COMMAND --help lists the flags)"
)
_HELP = ("-h", "-?", "--help", "--helpshort", "--helpfull")


def _command_help(command: str) -> str:
    lines = [f"usage: hyper-tinypw {command} [--flag=value ...]", "", "flags:"]
    for name in COMMANDS[command].flags:
        flag = FLAGS[name]
        default = "" if flag.default is None else f" (default: {flag.default_as_str or repr(flag.default)})"
        lines.append(f"  --{name}: {flag.help}{default}")
    return "\n".join(lines)


def _check_flags_apply(command: str) -> None:
    """Flags the command does not read are refused: a flag that silently did nothing would mislead."""
    takes = COMMANDS[command].flags
    for name in sorted(_OURS):
        if FLAGS[name].present and name not in takes:
            raise ValueError(f"--{name} does not apply to {command} (hyper-tinypw {command} --help lists its flags)")


def parse(command: str, args: Sequence[str]) -> None:
    """Set FLAGS from ``args`` for ``command``; ValueError (one line) for a flag it does not take or a bad value."""
    FLAGS.unparse_flags()
    try:
        rest = FLAGS([f"hyper-tinypw {command}", *args])
    except flags.UnrecognizedFlagError as error:
        raise ValueError(f"{_one_line(error)} (hyper-tinypw {command} --help lists the flags)") from None
    except flags.Error as error:
        raise ValueError(_one_line(error)) from None
    if len(rest) > 1:
        raise ValueError(f"unexpected argument {rest[1]!r} (flags are written --name=value)")
    _check_flags_apply(command)


def _fail(command: str, message: str) -> int:
    sys.stderr.write(f"hyper-tinypw {command}: error: {message}\n")
    return 2


def main(argv: Sequence[str]) -> int:
    """Run ``hyper-tinypw COMMAND --flag=value ...`` in this process and return the exit status.

    Bad input of any kind (flags, paths, files, data) returns 2 after one ``hyper-tinypw COMMAND: error:``
    line on stderr; only exceptions that mean bad input are caught, so internal bugs keep their traceback.
    A failing command removes the output folder it made (when it holds no file).
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
        print(_command_help(command))
        return 0
    try:
        parse(command, args)
    except ValueError as error:
        return _fail(command, str(error))
    logging.use_absl_handler()
    from hyper_tinypw_tf.data.errors import DataError

    _created.clear()
    status = 1
    try:
        COMMANDS[command].validate()
        status = int(COMMANDS[command].run() or 0)  # a command's own exit status (fit: 1 = fits nowhere)
    except (ValueError, OSError, DataError, app.UsageError) as error:
        # Bad input (arguments, files, models, data): one clear line, not a traceback.
        status = _fail(command, _one_line(error))
    finally:
        if status != 0:
            _remove_created()
    return status


def run() -> None:
    """Entry point of the ``hyper-tinypw`` console script."""
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()
