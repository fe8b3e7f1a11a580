"""The ``hyper-tinypw`` console script: ``hyper-tinypw COMMAND --flag=value ...``.

Commands (each a thin wrapper over library functions):
  main     train → QAT → export → report, on MIT-BIH by default (the README's main job)
  train    fit a preset on a task, with checkpoints and resume
  qat      quantization-aware fine-tuning of a trained model
  export   write folded or hyper .tflite (and optionally a C array)
  expand   hyper .tflite → folded .tflite, synthesis on the host
  report   byte accounting of a preset, stored against hyper

This is the only module that reaches across packages (into ``export``), and it imports lazily.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from absl import app, flags, logging

COMMANDS = ("main", "train", "qat", "export", "expand", "report")
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

FLAGS = flags.FLAGS
flags.DEFINE_enum("task", "mitdb_v", ["mitdb_v", "mitdb_aami", "apnea", "ptbxl", "speech_commands"], "Dataset task.")
flags.DEFINE_string("data_dir", None, "Local dataset folder (default: ../shared/data/<dataset> beside the checkout).")
flags.DEFINE_string("preset", "64k", "Model preset (see hyper_tinypw_tf.models.PRESETS).")
flags.DEFINE_enum("pw", "hyper", ["stored", "hyper"], "Stored INT8 or generated PW layers.")
flags.DEFINE_integer("epochs", 4, "Training epochs (early stopping may end sooner).")
flags.DEFINE_integer("qat_epochs", 1, "Quantization-aware fine-tuning epochs.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_float("learning_rate", 2e-3, "Adam learning rate.")
flags.DEFINE_integer("patience", 3, "Early-stopping patience (epochs).")
flags.DEFINE_integer("seed", 0, "Seed for weights, splits and shuffling.")
flags.DEFINE_string("out", "artifacts", "Output folder.")
flags.DEFINE_string("model", None, "Path of a saved model (.keras / .h5 / SavedModel) for qat/export.")
flags.DEFINE_enum("format", "hyper", ["folded", "hyper"], "Export format.")
flags.DEFINE_enum("mode", "boot", ["boot", "lazy", "stream"], "Synthesis mode of the hyper custom op.")
flags.DEFINE_string("c_array", None, "Also write NAME.cc/NAME.h with the model as a C array.")
flags.DEFINE_string("input", None, "Input .tflite for expand.")
flags.DEFINE_string("output", None, "Output .tflite for expand/export.")
flags.DEFINE_integer("n_boot", 1000, "Bootstrap resamples for confidence intervals.")
flags.DEFINE_list("records", None, "MIT-BIH only: restrict the patient-wise pool to these records (quick runs).")

_DATASET_DIRS = {"mitdb_v": "mitdb", "mitdb_aami": "mitdb", "ptbxl": "ptbxl", "speech_commands": "speech_commands"}


def _data_dir() -> Path:
    if FLAGS.data_dir:
        return Path(FLAGS.data_dir)
    if FLAGS.task not in _DATASET_DIRS:
        raise app.UsageError(f"--task={FLAGS.task} has no local copy here; pass --data_dir")
    return DEFAULT_DATA / _DATASET_DIRS[FLAGS.task]


def _load_data() -> tuple[dict[str, Any], Any]:
    """Datasets per split (train shuffled; val/test in order, aligned with info.groups) and metadata."""
    from hyper_tinypw_tf import data

    extra = {"records": FLAGS.records} if FLAGS.records else {}
    return data.load(
        FLAGS.task, _data_dir(), batch_size=FLAGS.batch_size, seed=FLAGS.seed, shuffle_train=True, **extra
    )


def _build_model(num_classes: int) -> Any:
    from hyper_tinypw_tf import models

    preset = models.get_preset(FLAGS.preset)
    build = models.separable_cnn_1d if preset.task == "ecg" else models.ds_cnn
    return build(FLAGS.preset, num_classes=num_classes, pw=FLAGS.pw)


def _labels(dataset: Any) -> Any:
    import numpy as np

    return np.concatenate([y.numpy() for _, y in dataset])


def _train(out: Path) -> tuple[Any, dict[str, Any], Any]:
    from hyper_tinypw_tf import accounting, training

    training.set_seed(FLAGS.seed)
    datasets, info = _load_data()
    model = _build_model(info.num_classes)
    accounting.packed_bytes(model).summary(logging.info)
    config = training.TrainConfig(
        epochs=FLAGS.epochs, learning_rate=FLAGS.learning_rate, patience=FLAGS.patience,
        seed=FLAGS.seed, checkpoint_dir=str(out / "checkpoints"),
    )
    weights = training.balanced_class_weight(_labels(datasets["train"]), info.num_classes)
    training.fit(model, datasets["train"], datasets["val"], config, class_weight=weights)
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


def _tflite_predict(path: Path) -> Any:
    """Logits of the exported file in the TFLM interpreter, the deployment runtime."""
    import numpy as np

    from export import interpreters

    data = path.read_bytes()
    return lambda dataset: interpreters.predict(data, np.concatenate([x.numpy() for x, _ in dataset]), "tflm")


def _qat(model: Any, datasets: dict[str, Any], info: Any, out: Path) -> Any:
    from hyper_tinypw_tf import quantization, training

    qat_model = quantization.quantize_model(model)
    if FLAGS.qat_epochs > 0:
        config = training.TrainConfig(
            epochs=FLAGS.qat_epochs, learning_rate=FLAGS.learning_rate / 10, patience=FLAGS.patience, seed=FLAGS.seed
        )
        weights = training.balanced_class_weight(_labels(datasets["train"]), info.num_classes)
        training.fit(qat_model, datasets["train"], datasets["val"], config, class_weight=weights)
    qat_model.save(out / "model_qat.h5")
    return qat_model


def _export(model: Any, out: Path, formats: tuple[str, ...], calibration: Any = None) -> dict[str, Path]:
    """Write each format's .tflite (and the C array, if asked, for --format); each prints its byte table."""
    from export import api

    paths = {}
    for fmt in formats:
        paths[fmt] = Path(FLAGS.output) if FLAGS.output and len(formats) == 1 else out / f"model_{fmt}.tflite"
        c_array = FLAGS.c_array if fmt == FLAGS.format else None
        api.export_files(
            model, paths[fmt], fmt=fmt, mode=FLAGS.mode, representative_data=calibration, c_array_name=c_array
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
        return keras.models.load_model(path)


def cmd_qat() -> None:
    if not FLAGS.model:
        raise app.UsageError("qat needs --model=PATH of a trained model")
    out = Path(FLAGS.out)
    datasets, info = _load_data()
    qat_model = _qat(_load_model(FLAGS.model), datasets, info, out)
    _evaluate(_keras_predict(qat_model), datasets, info, out, "qat")


def cmd_export() -> None:
    if not FLAGS.model:
        raise app.UsageError("export needs --model=PATH of a QAT model (or a float model with --task data)")
    out = Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    _export(_load_model(FLAGS.model), out, (FLAGS.format,), _calibration())


def cmd_expand() -> None:
    from export import api

    if not FLAGS.input or not FLAGS.output:
        raise app.UsageError("expand needs --input=HYPER.tflite and --output=FOLDED.tflite")
    api.expand_file(FLAGS.input, FLAGS.output)


def cmd_main() -> None:
    """Train, QAT, export, report: the README's main job."""
    out = Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    model, datasets, info = _train(out)
    reports = {"float": _evaluate(_keras_predict(model), datasets, info, out, "float")}
    qat_model = _qat(model, datasets, info, out)
    reports["qat"] = _evaluate(_keras_predict(qat_model), datasets, info, out, "qat")
    paths = _export(qat_model, out, ("folded", "hyper"))
    reports["folded_tflite_tflm"] = _evaluate(_tflite_predict(paths["folded"]), datasets, info, out, "tflite")
    summary = {name: r.metrics for name, r in reports.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    cmd_report()


def run() -> None:
    """Entry point of the ``hyper-tinypw`` console script."""
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        sys.exit(2)
    command = sys.argv.pop(1)

    def main(argv: list[str]) -> None:
        from hyper_tinypw_tf.data.errors import DataError

        try:
            globals()[f"cmd_{command}"]()
        except (ValueError, DataError) as error:
            # Bad input (arguments, files, models, data): one clear line, not a traceback.
            sys.stderr.write(f"hyper-tinypw {command}: error: {error}\n")
            sys.exit(2)

    app.run(main)


if __name__ == "__main__":
    run()
