"""The stages of a run, shared by ``main`` (``main_job.MainJob``) and ``bench.frontier``: train, QAT, export, score.

Each stage is a function of its inputs that writes one output file through :mod:`hyper_tinypw_tf.atomic`
and is skipped when that file exists. A stopped run started again therefore resumes at the first
missing file, and training resumes at its last finished epoch (``training.fit``'s checkpoints), with
the numbers of a run never stopped. The callers decide only where files go and which model to build.

``data`` arguments are callables returning ``(datasets, info)``: they are called after the seed is
set, so a caller that loads data afresh (``main``) sees the same shuffles on every side.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hyper_tinypw_tf import atomic

Log = Callable[[str], None] | None
Data = Callable[[], tuple[dict[str, Any], Any]]
Build = Callable[[dict[str, Any], Any], Any]  # (datasets, info) -> a new float model
Teacher = Callable[[], Any] | None  # -> the trained distillation teacher, when the stage needs one
Predict = Callable[[np.ndarray], np.ndarray]  # float inputs -> logits
SCORED_SPLITS = ("val", "test")


def done(output: Path, stage: str, log: Log = None) -> bool:
    """Whether ``output`` exists, so ``stage`` is skipped; if not, its folder is made ready."""
    if output.exists():
        if log:
            log(f"{stage}: skipped, {output} exists")
        return True
    if log:
        log(f"{stage}: running -> {output}")
    output.parent.mkdir(parents=True, exist_ok=True)
    return False


def cached_json(output: Path, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``output``'s record if it exists; else ``compute()``, written atomically."""
    if output.exists():
        return json.loads(output.read_text())
    record = compute()
    write_json(output, record)
    return record


def write_json(output: Path, record: dict[str, Any]) -> None:
    atomic.write_all({output: json.dumps(record, indent=2) + "\n"})


def _fit(model: Any, data: tuple[dict[str, Any], Any], config: Any, epochs: int, learning_rate: float,
         checkpoints: Path, teacher: Teacher, curve: Path | None) -> None:
    from hyper_tinypw_tf.app import pipeline

    curve_record = pipeline.fit_model(model, data[0], data[1], config, epochs, learning_rate, checkpoints,
                                      teacher() if teacher else None)
    if curve is not None:
        write_json(curve, curve_record)


def train(output: Path, build: Build, data: Data, config: Any, *, curve: Path, teacher: Teacher = None,
          stage: str = "train", log: Log = None) -> Path:
    """The float model (``.keras``) built by ``build`` and trained on ``config``'s schedule from ``config.seed``.

    Checkpoints go to ``checkpoints/`` beside ``output``, the learning curve to ``curve``.
    """
    from hyper_tinypw_tf import accounting, quantization, training

    if done(output, stage, log):
        return output
    training.set_seed(config.seed)
    loaded = data()
    with training.distribution_strategy(config.distribute).scope():  # variables made, and trained, there
        model = build(*loaded)
        if log:
            accounting.packed_bytes(model).summary(log)
        _fit(model, loaded, config, config.epochs, config.learning_rate, output.parent / "checkpoints", teacher,
             curve)
    quantization.save_model(model, output)
    return output


def qat(output: Path, float_model: Path, data: Data, config: Any, *, curve: Path | None = None,
        teacher: Teacher = None, stage: str = "qat", log: Log = None) -> Path:
    """The QAT model (``.h5``): ``float_model`` quantized, then ``config.qat_epochs`` at a tenth of the rate.

    Checkpoints go to ``checkpoints_qat/`` beside ``output``; the learning curve to ``curve`` if given.
    """
    from hyper_tinypw_tf import quantization, training
    from hyper_tinypw_tf.app import pipeline

    if done(output, stage, log):
        return output
    training.set_seed(config.seed)
    model = quantization.quantize_model(pipeline.load_model(float_model))
    if config.qat_epochs > 0:
        _fit(model, data(), config, config.qat_epochs, config.learning_rate / 10, output.parent / "checkpoints_qat",
             teacher, curve)
    quantization.save_model(model, output)
    return output


def export(output: Path, qat_model: Path, fmt: str, *, stage: str = "export", log: Log = None,
           **options: Any) -> Path:
    """The ``.tflite`` file of the QAT model in format ``fmt`` (``export.api.export_files`` ``options``)."""
    from hyper_tinypw_tf.app import pipeline
    from hyper_tinypw_tf.export import api

    if not done(output, stage, log):
        api.export_files(pipeline.load_model(qat_model), output, fmt=fmt, print_fn=log, **options)
    return output


def score(output: Path, model_file: Path, data: Data, *, predict: Predict | None = None,
          extra: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None, stage: str = "score",
          log: Log = None) -> Path:
    """Logits and labels of ``model_file`` on the val and test splits, and the test groups, in ``output`` (.npz).

    ``predict`` defaults to ``pipeline.predictor``: TFLM for a ``.tflite`` file, a hyper file through the
    HyperTinyPW op in the host runner. ``extra(datasets, info)`` adds arrays (the main job's bill).
    """
    from hyper_tinypw_tf.app import pipeline

    if done(output, stage, log):
        return output
    datasets, info = data()
    if predict is None:
        predict = pipeline.predictor(model_file)[0]
    arrays: dict[str, Any] = {}
    for split in SCORED_SPLITS:
        x, y = pipeline.inputs_and_labels(datasets[split])
        arrays[f"{split}_logits"], arrays[f"{split}_labels"] = predict(x), y
    arrays["test_groups"] = np.asarray(info.groups["test"]).astype(str)
    if extra is not None:
        arrays.update(extra(datasets, info))
    with atomic.atomic_path(output) as tmp:
        np.savez(tmp, **arrays)
    return output
