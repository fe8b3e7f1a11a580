"""The frontier: hyper models against what a TFLM user already has, at equal file bytes, over seeds.

Run from the repository root (each command resumes from its cache when run again)::

    python -m bench.frontier --task=mitdb_aami --epochs=25 --patience=6 --out=runs/frontier_mitdb_aami \
        --points=stored_28k,hyper_28k,stored_64k,hyper_64k,twin_64k,hyper_64k_t16z8,hyper_64k_low_rank_r8,\
lut8_stored_64k,lut16_stored_64k,lut8_stored_28k
    python -m bench.frontier --task=speech_commands --epochs=40 --patience=8 --out=runs/frontier_speech_commands \
        --points=stored_ds_cnn_s,hyper_ds_cnn_s,stored_ds_cnn_m,hyper_ds_cnn_m,lut8_stored_ds_cnn_s,\
lut16_stored_ds_cnn_m,hyper_ds_cnn_m_low_rank_r8
    python -m bench.frontier --task=mitdb_aami --points=stored_64k --seeds=1 --tag=baseline_after --epochs=25 \
        --patience=6 --out=runs/aami_baseline_after      (the AAMI baseline with the new recipe)
    python -m bench.frontier --task=mitdb_aami --quick --out=/tmp/frontier_quick   (what CI runs: cv:3, 3 records)

The protocol is ``--protocol=cv:5`` unless given: every record or speaker is tested once, and the
five test folds are pooled before scoring.

Every point is trained with the main job's functions (``pipeline.fit_model``, the same schedule, QAT and
export), turned into a ``.tflite`` and scored in TFLM (``pipeline.predictor``: a hyper file expanded, its
first examples checked through the HyperTinyPW op in the host runner). Points: the stored CNN at several
widths; hyper models
(tiled at several code/tile sizes, the paper's dense and factorized heads, distillation on/off);
and the stored CNN clustered by tfmot to 16 and 8 centroids (one fine-tuning epoch from the trained
stored model) then LUT-compressed by ``tflite_micro.compression`` (``export.peers.lut_compress``).

Each (point, seed, fold) writes ``OUT/POINT/seedS/foldF/result.json`` and ``scores.npz`` (the TFLM logits)
and is skipped when they exist; training checkpoints every epoch, so a killed run resumes with the same
numbers. The pooled result of a (point, seed) is ``OUT/POINT/seedS/result.json``. ``OUT/settings.json``
records the settings the cached results depend on (``RESULT_SETTINGS``); a run under other settings is refused
rather than mixed into the folder. Without ``--quick``
the script writes the ``frontier_<task>`` section of BENCHMARKS.md and ``docs/frontier_<task>.png``;
with ``--quick`` both go under ``--out`` (CI must not touch the repo).
The folds are fixed by the records or speakers and K; seeds vary initialization and shuffling.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import _frontier_answers as answers_mod
from bench._report import BENCHMARKS_PATH, machine_line, write_section
from hyper_tinypw_tf import tasks
from hyper_tinypw_tf.data.options import default_data_dir

ROOT = Path(__file__).resolve().parents[1]
DATA = default_data_dir()
TASKS = tuple(name for name, spec in tasks.TASKS.items() if tasks.CV in spec.protocols)  # the cross-validated ones
KWS_SPLIT = "speakers:15,15"  # the shared copy holds test-set speakers only (see data/speech_commands.py)
QUICK_RECORDS = ("101", "106", "108")  # the fewest records a patient-wise split accepts (train, val, test)
COMMAND = "python -m bench.frontier"
HYPER, LUT, HYPERLUT, FIT = "hyper", "lut", "hyperlut", "fit"
CLUSTERED = {LUT: "stored", HYPERLUT: HYPER}  # a clustered kind → the kind of the point it starts from
STARTS_FROM_BASE = (LUT, HYPERLUT, FIT)  # kinds made from a trained base point (its learning curve is theirs)


@dataclass(frozen=True)
class Point:
    """One model of the frontier.

    ``kind`` is "stored" (a folded file), "hyper" (a hyper file), "lut" (the stored point ``base``
    clustered to ``clusters`` centroids, LUT-compressed) or "hyperlut" (the hyper point ``base``, its
    stored 1×1 layers clustered and LUT-compressed beside its HyperTinyPW ops) or "fit" (post-training
    generation, ``hyper_tinypw_tf.app.compress``: the trained stored point ``base`` turned into a hyper model on
    its own backbone whose file fits ``budget`` bytes). ``preset``/``side`` pick the backbone as
    ``pipeline.build_model`` does ("stored" = the preset's stored CNN, "twin" = the hyper backbone
    with stored PW, "hyper"); ``generator`` overrides the preset's; ``teacher`` names the stored
    point a hyper model is distilled from.
    """

    name: str
    kind: str
    preset: str = ""
    side: str = "stored"
    label: str = ""
    generator: dict[str, Any] | None = None
    teacher: str | None = None
    base: str | None = None
    clusters: int = 0
    cluster_qat: bool = False  # clustered, then cluster-preserving QAT (name ``lutNq_``)
    budget: int = 0  # a fit point's file budget in bytes
    twin: str | None = None  # the stored point with this point's backbone (for the answers)

    @property
    def report_kind(self) -> str:
        """How the answers and the plot group the point: a low_rank file is a hyper file but no hypernetwork."""
        from hyper_tinypw_tf.low_rank import LowRankGenerator

        if self.generator is not None and self.generator["strategy"] == LowRankGenerator.strategy:
            return answers_mod.LOW_RANK
        return HYPER if self.kind in (HYPERLUT, FIT) else self.kind  # generated points, however made


def _tiled(tile: int, code: int, hidden: int = 32) -> dict[str, Any]:
    from hyper_tinypw_tf.generators import TiledGenerator  # TensorFlow only once points are listed

    return {"strategy": TiledGenerator.strategy, "config": {"tile_size": tile, "code_dim": code, "hidden_dim": hidden}}


def _paper(factorized: bool, code: int = 8, hidden: int = 32) -> dict[str, Any]:
    from hyper_tinypw_tf.generators import PaperGenerator

    head = PaperGenerator.FACTORIZED if factorized else PaperGenerator.DENSE
    return {"strategy": PaperGenerator.strategy, "config": {"head": head, "code_dim": code, "hidden_dim": hidden}}


def _low_rank(rank: int) -> dict[str, Any]:
    """K = U·V per layer, no generator network: the baseline for what a hypernetwork adds."""
    from hyper_tinypw_tf.low_rank import LowRankGenerator

    return {"strategy": LowRankGenerator.strategy, "config": {"rank": rank}}


def _ecg_points() -> list[Point]:
    return [
        Point("stored_28k", "stored", "28k", "stored", "stored CNN (28k preset)"),
        Point("stored_32k", "stored", "32k", "stored", "stored CNN (32k preset)"),
        Point("stored_64k", "stored", "64k", "stored", "stored CNN (64k preset)"),
        Point("stored_225k", "stored", "225k", "stored", "stored CNN (225k preset)"),
        Point("twin_64k", "stored", "64k", "twin", "stored twin of hyper 64k"),
        Point("twin_large", "stored", "large", "stored", "stored twin of hyper large"),
        Point("hyper_28k", "hyper", "28k", "hyper", "hyper 28k, tiled t8 z4", twin=None),
        Point("hyper_32k", "hyper", "32k", "hyper", "hyper 32k, tiled t8 z4", twin=None),
        Point("hyper_64k", "hyper", "64k", "hyper", "hyper 64k, tiled t8 z4", twin="twin_64k"),
        Point("hyper_64k_kd", "hyper", "64k", "hyper", "hyper 64k, tiled t8 z4, KD from twin_64k",
              teacher="twin_64k", twin="twin_64k"),
        Point("hyper_64k_t16z8", "hyper", "64k", "hyper", "hyper 64k, tiled t16 z8", _tiled(16, 8), twin="twin_64k"),
        Point("hyper_64k_t4z4", "hyper", "64k", "hyper", "hyper 64k, tiled t4 z4", _tiled(4, 4), twin="twin_64k"),
        Point("hyper_64k_paper_dense", "hyper", "64k", "hyper", "hyper 64k, paper dense head", _paper(factorized=False),
              twin="twin_64k"),
        Point("hyper_64k_paper_fact", "hyper", "64k", "hyper", "hyper 64k, paper factorized head",
              _paper(factorized=True), twin="twin_64k"),
        Point("hyper_64k_low_rank_r8", "hyper", "64k", "hyper", "64k backbone, low_rank r8 (no generator)",
              _low_rank(8), twin="twin_64k"),
        Point("hyper_large", "hyper", "large", "hyper", "hyper large, tiled t8 z4", twin="twin_large"),
        Point("lut16_stored_64k", "lut", label="stored 64k, 16 clusters + LUT4", base="stored_64k", clusters=16),
        Point("lut8_stored_64k", "lut", label="stored 64k, 8 clusters + LUT3", base="stored_64k", clusters=8),
        Point("lut16_stored_225k", "lut", label="stored 225k, 16 clusters + LUT4", base="stored_225k", clusters=16),
        Point("lut16_twin_64k", "lut", label="twin 64k, 16 clusters + LUT4", base="twin_64k", clusters=16),
        Point("hyperlut16_hyper_32k", HYPERLUT, label="hyper 32k, stored 1x1 16 clusters + LUT4", base="hyper_32k",
              clusters=16),
        Point("hyperlut16_hyper_64k", HYPERLUT, label="hyper 64k, stored 1x1 16 clusters + LUT4", base="hyper_64k",
              clusters=16, twin="twin_64k"),
        Point("hyperlut8_hyper_64k", HYPERLUT, label="hyper 64k, stored 1x1 8 clusters + LUT3", base="hyper_64k",
              clusters=8, twin="twin_64k"),
        # Post-training generation from the trained stored 64k CNN, at the LUT peers' file sizes (BENCHMARKS:
        # lut8_stored_64k 39,952 B, lut16_stored_64k 48,240 B).
        _fit_point("stored_64k", 40_000),
        _fit_point("stored_64k", 48_000),
    ]


def _fit_point(base: str, budget: int, twin: str | None = None) -> Point:
    return Point(f"{FIT}_{base}_{budget}", FIT, label=f"{base} fitted into a hyper file of <= {budget:,} B",
                 base=base, budget=budget, twin=twin or base)


def _kws_points() -> list[Point]:
    return [
        Point("stored_ds_cnn_s", "stored", "ds_cnn_s", "stored", "DS-CNN S stored"),
        Point("stored_ds_cnn_m", "stored", "ds_cnn_m", "stored", "DS-CNN M stored"),
        Point("stored_ds_cnn_l", "stored", "ds_cnn_l", "stored", "DS-CNN L stored"),
        Point("hyper_ds_cnn_s", "hyper", "ds_cnn_s", "hyper", "DS-CNN S hyper, tiled t8 z4", twin="stored_ds_cnn_s"),
        Point("hyper_ds_cnn_m", "hyper", "ds_cnn_m", "hyper", "DS-CNN M hyper, tiled t8 z4", twin="stored_ds_cnn_m"),
        Point("hyper_ds_cnn_m_kd", "hyper", "ds_cnn_m", "hyper", "DS-CNN M hyper, KD from stored M",
              teacher="stored_ds_cnn_m", twin="stored_ds_cnn_m"),
        Point("hyper_ds_cnn_l", "hyper", "ds_cnn_l", "hyper", "DS-CNN L hyper, tiled t8 z4", twin="stored_ds_cnn_l"),
        Point("hyper_ds_cnn_m_paper_fact", "hyper", "ds_cnn_m", "hyper", "DS-CNN M hyper, paper factorized",
              _paper(factorized=True), twin="stored_ds_cnn_m"),
        Point("hyper_ds_cnn_m_low_rank_r8", "hyper", "ds_cnn_m", "hyper", "DS-CNN M, low_rank r8 (no generator)",
              _low_rank(8), twin="stored_ds_cnn_m"),
        Point("lut16_stored_ds_cnn_s", "lut", label="DS-CNN S, 16 clusters + LUT4", base="stored_ds_cnn_s",
              clusters=16),
        Point("lut16_stored_ds_cnn_m", "lut", label="DS-CNN M, 16 clusters + LUT4", base="stored_ds_cnn_m",
              clusters=16),
        Point("lut8_stored_ds_cnn_m", "lut", label="DS-CNN M, 8 clusters + LUT3", base="stored_ds_cnn_m",
              clusters=8),
    ]


def all_points(task: str) -> dict[str, Point]:
    """Every point defined for ``task``, by name."""
    points = _kws_points() if task == "speech_commands" else _ecg_points()
    return {p.name: p for p in points}


QUICK_POINTS = {
    "mitdb_aami": ("stored_32k", "hyper_32k", "lut16_stored_32k"),
    "mitdb_v": ("stored_32k", "hyper_32k", "lut16_stored_32k"),
    "speech_commands": ("stored_ds_cnn_s", "hyper_ds_cnn_s", "lut16_stored_ds_cnn_s"),
}
DEFAULT_POINTS = {
    "mitdb_aami": ("stored_32k", "stored_64k", "twin_64k", "hyper_32k", "hyper_64k", "hyper_64k_kd",
                   "hyper_64k_paper_fact", "lut16_stored_64k", "lut8_stored_64k"),
    "speech_commands": ("stored_ds_cnn_s", "stored_ds_cnn_m", "hyper_ds_cnn_s", "hyper_ds_cnn_m",
                        "lut16_stored_ds_cnn_s", "lut8_stored_ds_cnn_m"),
}
DEFAULT_POINTS["mitdb_v"] = DEFAULT_POINTS["mitdb_aami"]


def resolve_points(task: str, names: list[str]) -> list[Point]:
    """The named points, with every stored point they depend on (bases, teachers) placed before them.

    A clustered point ``lutN_<stored point>`` or ``hyperlutN_<hyper point>`` (``lutNq_``/``hyperlutNq_``: with
    cluster-preserving QAT), and a post-training generated point ``fit_<stored point>_<budget bytes>``, is made for
    any such point on request.

    Raises:
      ValueError: an unknown name, listing the known ones.
    """
    known = all_points(task)
    chosen: dict[str, Point] = {}

    def add(name: str) -> None:
        if name in chosen:
            return
        point = known.get(name)
        if point is None and name.startswith(f"{FIT}_"):
            base, _, budget = name[len(FIT) + 1:].rpartition("_")
            if budget.isdigit() and base in known and known[base].kind == "stored":
                point = _fit_point(base, int(budget))
        kind = next((k for k in (HYPERLUT, LUT) if name.startswith(k)), None)
        if point is None and kind and "_" in name:
            clusters, base = name[len(kind):].split("_", 1)
            cqat = clusters.endswith("q")
            clusters = clusters.removesuffix("q")
            if clusters.isdigit() and base in known and known[base].kind == CLUSTERED[kind]:
                label = f"{base}, {clusters} clusters{' + CQAT' if cqat else ''} + LUT"
                point = Point(name, kind, label=label, base=base, clusters=int(clusters), twin=known[base].twin,
                              cluster_qat=cqat)
        if point is None:
            raise ValueError(f"frontier: unknown point {name!r} for --task={task}; known: {sorted(known)}")
        for need in (point.base, point.teacher):
            if need:
                add(need)
        chosen[name] = point

    for name in names:
        add(name)
    return list(chosen.values())


# --- data -------------------------------------------------------------------------------------


def load_data(task: str, data_dir: Path, split_seed: int, quick: bool, records: list[str] | None,
              protocol: str = "patient_wise", fold: int = 0, rr_features: bool = False,
              beat_template: bool = False) -> tuple[Any, Any]:
    """The task's datasets on the shared copy: DS1 records for MIT-BIH (patient-wise or fold ``fold`` of
    ``cv:K``), speakers for KWS (a seeded split, or fold ``fold``); KWS training clips are augmented."""
    from hyper_tinypw_tf import data
    from hyper_tinypw_tf.data import speech_commands

    kwargs: dict[str, Any] = {}
    cv = protocol.startswith("cv:")
    if task == "speech_commands":
        kwargs["augment"] = speech_commands.Augment()
        if cv:
            kwargs.update(protocol=protocol, fold=fold)
        else:
            kwargs["split"] = KWS_SPLIT
        if quick:
            data_dir = _kws_subset(data_dir, 8)
    else:
        kwargs.update(protocol=protocol, rr_features=rr_features, beat_template=beat_template,
                      **({"fold": fold} if cv else {}))
        if records or quick:
            kwargs["records"] = list(records or QUICK_RECORDS)
    return data.load(task, data_dir, batch_size=64, seed=split_seed, **kwargs)


def _kws_subset(data_dir: Path, per_word: int) -> Path:
    """A folder of symlinks to ``per_word`` clips per word (and the noise files): the quick run's few clips.

    Links, not copies, in a temporary folder: the shared copy is read in place.
    """
    import tempfile

    out = Path(tempfile.mkdtemp(prefix="frontier_kws_"))
    for word in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        (out / word.name).mkdir()
        files = sorted(word.glob("*.wav"))
        for wav in files if word.name.startswith("_") else files[:per_word]:
            (out / word.name / wav.name).symlink_to(wav)
    return out


# --- one point, one seed ------------------------------------------------------------------------


@dataclass
class Context:
    """What every point of a run shares: data, schedule, the output folder."""

    task: str
    datasets: dict[str, Any]
    info: Any
    out: Path
    epochs: int
    qat_epochs: int
    n_boot: int
    metrics: tuple[str, ...]
    log: Any = print
    learning_rate: float | None = None  # None: the main job's (pipeline.RunConfig)
    patience: int = 8
    fold: int | None = None  # cv:K: this context's fold; None: one patient-wise/speaker split
    schedule: dict[str, Any] = field(default_factory=dict)  # RunConfig overrides (--schedule, --monitor, ...)


def _config(ctx: Context, seed: int, distill: bool = False) -> Any:
    """The main job's schedule for every point: cosine with warmup, early stopping on validation macro-F1."""
    from hyper_tinypw_tf.app import pipeline

    rate = {} if ctx.learning_rate is None else {"learning_rate": ctx.learning_rate}
    return pipeline.RunConfig(epochs=ctx.epochs, qat_epochs=ctx.qat_epochs, seed=seed, distill=distill,
                              patience=ctx.patience, **rate, **ctx.schedule)


def folder(point: str, seed: int, ctx: Context) -> Path:
    """Where one (point, seed) run keeps its files: ``OUT/POINT/seedS`` and, under cv:K, ``/foldF`` below it."""
    base = ctx.out / point / f"seed{seed}"
    return base if ctx.fold is None else base / f"fold{ctx.fold}"


def _build(point: Point, ctx: Context) -> Any:
    """A new float model for ``point`` with input normalization fitted on the train split."""
    from hyper_tinypw_tf.app import pipeline

    return pipeline.build_model(point.preset, ctx.info, (x for x, _ in ctx.datasets["train"]), point.side,
                                point.generator)


def _calibration(ctx: Context, n: int = 256) -> np.ndarray:
    from hyper_tinypw_tf.app import pipeline

    x, _ = pipeline.inputs_and_labels(ctx.datasets["train"].take(max(1, n // 64)))
    return x[:n]


def _train_float(point: Point, seed: int, ctx: Context) -> Path:
    """Train (or reuse) the float model of a stored or hyper point; returns its .keras path.

    ``stages.train``: checkpoints every epoch, so a killed run resumes mid-training with the numbers of
    one never killed; its learning curve goes to ``curve.json``.
    """
    from hyper_tinypw_tf.app import stages

    where = folder(point.name, seed, ctx)
    config = _config(ctx, seed, distill=bool(point.teacher))
    teacher = (lambda: _teacher(point, seed, ctx)) if point.teacher else None
    return stages.train(where / "model.keras", lambda datasets, info: _build(point, ctx),
                        lambda: (ctx.datasets, ctx.info), config, curve=where / "curve.json", teacher=teacher)


def _teacher(point: Point, seed: int, ctx: Context) -> Any:
    """The trained float teacher of a KD point (trained first if needed), or None."""
    from hyper_tinypw_tf.app import pipeline

    if not point.teacher:
        return None
    return pipeline.load_model(_train_float(all_points(ctx.task)[point.teacher], seed, ctx))


def _model_file(point: Point, seed: int, ctx: Context, points: dict[str, Point]) -> tuple[Path, Any]:
    """The point's .tflite (written once) and the Keras model whose bill it carries."""
    from hyper_tinypw_tf import atomic
    from hyper_tinypw_tf.app import pipeline, stages
    from hyper_tinypw_tf.export import api, peers

    where = folder(point.name, seed, ctx)
    where.mkdir(parents=True, exist_ok=True)
    output = where / "model.tflite"
    if point.kind == FIT:
        return _fit_file(point, seed, ctx, points, output)
    if point.kind in CLUSTERED:
        # Clustered points start from the trained base point: one fine-tuning epoch with the stored 1×1
        # layers clustered, then post-training quantization, or (``lutNq_``) the QAT epochs every QAT point gets,
        # cluster-preserving (plain QAT's weight updates would undo the clusters); then LUT. A hyperlut file
        # keeps its generated layers as HyperTinyPW ops.
        base = points[point.base]  # type: ignore[index]
        float_model = pipeline.load_model(_train_float(base, seed, ctx))
        if not stages.done(output, "cluster"):
            config = _config(ctx, seed)
            clustered = pipeline.cluster_model(float_model, ctx.datasets, ctx.info, config, point.clusters, 1,
                                               config.learning_rate / 10, where / "checkpoints_cluster",
                                               qat_epochs=ctx.qat_epochs if point.cluster_qat else 0)
            fmt = api.HYPER if point.kind == HYPERLUT else api.FOLDED
            calibration = None if point.cluster_qat else _calibration(ctx)
            atomic.write_all({output: api.export_model(clustered, fmt=fmt, representative_data=calibration,
                                                       lut_bits=peers.bits_for_clusters(point.clusters))})
        return output, float_model
    float_path = _train_float(point, seed, ctx)
    if not output.exists():  # a finished file needs no QAT model (runs before model_qat.h5 was kept have none)
        teacher = (lambda: _teacher(point, seed, ctx)) if point.teacher else None
        qat = stages.qat(where / "model_qat.h5", float_path, lambda: (ctx.datasets, ctx.info),
                         _config(ctx, seed, distill=bool(point.teacher)), teacher=teacher)
        fmt = api.HYPER if point.kind == "hyper" else api.FOLDED
        # Stored files get the hyper files' zero-point layout, so a byte difference is the method's.
        stages.export(output, qat, fmt, slim_zero_points=fmt == api.FOLDED)
    return output, pipeline.load_model(float_path)


def _fit_file(point: Point, seed: int, ctx: Context, points: dict[str, Point], output: Path) -> tuple[Path, Any]:
    """A fit point's hyper file: ``compress.compress`` of the trained base point (size choice, layer-wise output
    fit, one epoch of distillation from the stored model, then QAT), exported only if it fits the budget.

    The fine-tuning budget is the clustered peers' (one epoch at a tenth of the rate) plus the QAT epochs
    every QAT point gets. The float hyper model is kept as ``model_fit.keras`` for the runtime bill.
    """
    from hyper_tinypw_tf import quantization, training
    from hyper_tinypw_tf.app import compress, pipeline

    where = output.parent
    keep = where / "model_fit.keras"
    if output.exists() and keep.exists():
        return output, pipeline.load_model(keep)
    stored = pipeline.load_model(_train_float(points[point.base], seed, ctx))  # type: ignore[index]
    training.set_seed(seed)
    rate = _config(ctx, seed).learning_rate / 10
    finetune = compress.Finetune(epochs=1, qat_epochs=ctx.qat_epochs, learning_rate=rate, seed=seed)
    result = compress.compress(stored, point.budget, datasets=ctx.datasets, info=ctx.info, finetune=finetune,
                               print_fn=ctx.log)
    compress.export_within_budget(result.qat, output, point.budget, print_fn=None)
    quantization.save_model(result.model, keep)
    return output, result.model


def _scores(model_file: Path, ctx: Context) -> Any:
    """The file's test predictions in TFLM (``pipeline.predictor``) with its validation-tuned
    decision rule, as ``crossval.FoldScores``; the logits are kept in ``scores.npz`` beside the file."""
    from hyper_tinypw_tf import crossval
    from hyper_tinypw_tf.app import stages

    cache = stages.score(model_file.with_name("scores.npz"), model_file, lambda: (ctx.datasets, ctx.info))
    return crossval.FoldScores.from_npz(ctx.fold or 0, cache)


def run_point(point: Point, seed: int, ctx: Context, points: dict[str, Point]) -> dict[str, Any]:
    """Train, export and score one point at one seed (on one fold under cv:K); cached in ``result.json``."""
    from hyper_tinypw_tf.app import stages

    return stages.cached_json(folder(point.name, seed, ctx) / "result.json",
                              lambda: _point_result(point, seed, ctx, points))


def _point_result(point: Point, seed: int, ctx: Context, points: dict[str, Point]) -> dict[str, Any]:
    from hyper_tinypw_tf import accounting
    from hyper_tinypw_tf.app import pipeline

    start = time.monotonic()
    model_file, float_model = _model_file(point, seed, ctx, points)
    data = model_file.read_bytes()
    report = _scores(model_file, ctx).evaluate(ctx.info.class_names, ctx.n_boot, seed).to_json_dict()
    runnable, expanded = pipeline.tflm_runnable(data)
    arena = pipeline.tflm_arena_bytes(runnable)
    bill = accounting.runtime_bill(float_model)
    curve_path = folder(point.kind in STARTS_FROM_BASE and point.base or point.name, seed, ctx) / "curve.json"
    curve = json.loads(curve_path.read_text()) if curve_path.exists() else {}
    result = {
        "point": point.name, "kind": point.kind, "label": point.label, "twin": point.twin, "seed": seed,
        "fold": ctx.fold, "file": str(model_file), "file_bytes": len(data),
        # Boot/lazy: the arena plus every generated kernel cached; stream: plus the largest kernel's buffer.
        "tflm_arena_bytes": arena,
        "sram_boot_bytes": arena + (bill.cached_kernel_bytes if expanded else 0),
        "sram_stream_bytes": arena + (bill.stream_kernel_bytes if expanded else 0),
        "macs": bill.inference_macs, "synthesis_macs": bill.synthesis_macs,
        "metrics": {m: report["metrics"].get(m) for m in ctx.metrics},
        "ci": {m: report["ci"].get(m) for m in ctx.metrics},
        "per_class": report["per_class"],
        "best_epochs": [curve["best_epoch"]] if curve else [],
        "hit_max": [bool(curve["hit_max"])] if curve else [],
        "seconds": round(time.monotonic() - start, 1),
    }
    ctx.log(f"{point.name} seed {seed}" + (f" fold {ctx.fold}" if ctx.fold is not None else "")
            + f": {len(data):,} B, "
            + ", ".join(f"{m}={result['metrics'][m]:.3f}" for m in ctx.metrics if result["metrics"][m] is not None)
            + (f", best epoch {curve['best_epoch']}/{curve['max_epochs']}" if curve else "")
            + f" ({result['seconds']:.0f} s)")
    return result


def pooled_scores(point: str, seed: int, ctxs: list[Context]) -> Any:
    """A (point, seed)'s test predictions of every fold pooled (``crossval.pool``): each record or speaker once."""
    from hyper_tinypw_tf import crossval

    return crossval.pool([_scores(folder(point, seed, c) / "model.tflite", c) for c in ctxs])


def run_pooled(point: Point, seed: int, ctxs: list[Context], points: dict[str, Point]) -> dict[str, Any]:
    """Under cv:K: the point at one seed on every fold, then scored once on the pooled out-of-fold predictions.

    Cached in ``OUT/POINT/seedS/result.json``; each fold is cached on its own, so a stopped run continues
    at the first fold not done.
    """
    from hyper_tinypw_tf.app import stages

    return stages.cached_json(ctxs[0].out / point.name / f"seed{seed}" / "result.json",
                              lambda: _pooled_result(point, seed, ctxs, points))


def _pooled_result(point: Point, seed: int, ctxs: list[Context], points: dict[str, Point]) -> dict[str, Any]:
    ctx = ctxs[0]
    folds = [run_point(point, seed, c, points) for c in ctxs]
    report = pooled_scores(point.name, seed, ctxs).evaluate(ctx.info.class_names, ctx.n_boot, seed).to_json_dict()
    largest = max(folds, key=lambda f: f["file_bytes"])  # quantization parameters move a file's size by a few bytes
    result = {
        **{k: folds[0][k] for k in ("point", "kind", "label", "twin", "seed", "macs", "synthesis_macs")},
        "file": largest["file"], "fold": None, "folds": len(folds),
        **{k: max(f[k] for f in folds) for k in ("file_bytes", "tflm_arena_bytes", "sram_boot_bytes",
                                                 "sram_stream_bytes")},
        "metrics": {m: report["metrics"].get(m) for m in ctx.metrics},
        "ci": {m: report["ci"].get(m) for m in ctx.metrics},
        "per_class": report["per_class"], "n_test": report["n_examples"], "n_groups": report["n_groups"],
        "fold_metrics": [f["metrics"] for f in folds],
        "best_epochs": [e for f in folds for e in f["best_epochs"]],
        "hit_max": [h for f in folds for h in f["hit_max"]],
        "seconds": round(sum(f["seconds"] for f in folds), 1),
    }
    ctx.log(f"{point.name} seed {seed}, {len(folds)} folds pooled: "
            + ", ".join(f"{m}={result['metrics'][m]:.3f}" for m in ctx.metrics if result["metrics"][m] is not None))
    return result


def measure_fit(point: Point, seed: int, ctx: Context) -> dict[str, Any]:
    """SRAM measured on the Cortex-M4 (QEMU, ``tflm_harness.fit``) for one point's file, per mode; cached.

    Hyper files run through the HyperTinyPW op in boot and in stream mode; stored and LUT files once (the
    runner registers TFLM's DECODE op). A file the Cortex-M4 runner cannot run gets the runner's error
    instead of numbers, with the firmware's last line as the reason.
    """
    from hyper_tinypw_tf.app import stages

    return stages.cached_json(folder(point.name, seed, ctx) / "fit.json", lambda: _measure_fit(point, seed, ctx))


def _measure_fit(point: Point, seed: int, ctx: Context) -> dict[str, Any]:
    from hyper_tinypw_tf.export import format as fmt
    from tflm_harness import fit

    where = folder(point.name, seed, ctx)
    modes = (fmt.MODE_BOOT, fmt.MODE_STREAM) if point.kind == "hyper" else None
    try:
        report = fit.fit((where / "model.tflite").read_bytes(), name=f"{point.name}/seed{seed}", modes=modes)
        measured: dict[str, Any] = {row.mode: {"sram_bytes": row.sram_bytes, "fits_nano": row.fits,
                                               "inference_instructions": row.inference_instructions,
                                               "setup_instructions": row.setup_instructions}
                                    for row in report.rows}
    except (ValueError, RuntimeError) as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
        measured = {"error": lines[0][:200]}
        if len(lines) > 1:  # the firmware's own last word, e.g. "model.tflite: larger than 4 MB"
            measured["why"] = lines[-1][:120]
    ctx.log(f"{point.name} seed {seed}: Cortex-M4 fit {measured}")
    return measured


# --- report -----------------------------------------------------------------------------------


def plot(rows: list[dict[str, Any]], metric: str, path: Path, title: str) -> None:
    """Metric (mean ± sd over seeds) against file bytes, log x, one marker per kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    style = {"stored": ("o", "tab:blue", "stored CNN"), "hyper": ("^", "tab:red", "hyper"),
             "lut": ("s", "tab:green", "clustered + TFLM LUT"),
             answers_mod.LOW_RANK: ("D", "tab:purple", "low_rank U·V (no generator)")}
    for kind, (marker, color, label) in style.items():
        pts = [r for r in rows if r["kind"] == kind and r[metric]["mean"] is not None]
        if not pts:
            continue
        ax.errorbar([r["file_bytes"] for r in pts], [r[metric]["mean"] for r in pts],
                    yerr=[r[metric]["sd"] or 0.0 for r in pts], fmt=marker, color=color, label=label, capsize=3)
        for r in pts:
            ax.annotate(r["point"], (r["file_bytes"], r[metric]["mean"]), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
    for budget in answers_mod.BUDGETS:
        ax.axvline(budget, color="grey", lw=0.5, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("file bytes (.tflite, log scale)")
    ax.set_ylabel(f"{metric} (TFLM, test; mean ± sd over seeds)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def section(task: str, rows: list[dict[str, Any]], result: dict[str, Any], args: argparse.Namespace,
            metrics: tuple[str, ...], wall: float, info: Any, plot_path: Path, bench_path: Path, note: str) -> str:
    """The BENCHMARKS.md section: command, setting, table, answers, the plot."""
    cv = args.protocol.startswith("cv:")
    clips = {s: int(sum(c.values())) for s, c in info.counts.items()}
    records = info.notes.get("records")
    # The command as anyone reruns it: no --collect, and no work folder of this machine.
    argv = [a for a in sys.argv[1:] if a != "--collect" and not a.startswith("--out")]
    lines = [
        f"## Frontier: {task}" + (f" ({args.tag})" if args.tag else ""), "",
        f"Command: `{shlex.join([*COMMAND.split(), *argv])}`"
        + (" (this section re-collected from its cached results with `--collect`)" if args.collect else "") + "  ",
        f"Machine: {machine_line()} (shared with other jobs while it ran); "
        + (f"time {wall / 60:.1f} min, the sum of the points' own times (train, export, TFLM evaluation)  "
           if args.collect else f"wall time {wall / 60:.1f} min.  "),
        f"Setting: protocol {args.protocol}"
        + (" (fold i trains on K−2 folds, stops early and tunes thresholds on fold i+1, is tested on fold i; "
           "the K test folds are pooled, so every record or speaker is tested once)" if cv else "")
        + f"; at most {args.epochs} epochs, {args.schedule} schedule"
        + (" with 1 warmup epoch" if args.schedule == "cosine" else "") + f" at {_rate(args)}, early "
        f"stopping on {args.monitor} (patience {args.patience}), class weights (1/frequency)^"
        f"{args.class_weight_power:g}, + {args.qat_epochs} QAT epoch(s) at a "
        f"tenth of the rate (clustered points: 1 clustering fine-tune epoch from the trained stored model, then "
        f"post-training INT8 and LUT; `lutNq_` points: then the QAT epochs, cluster-preserving, then LUT); "
        f"seeds {args.seeds}; "
        + ("RR features on; " if args.rr_features and args.task != "speech_commands" else "")
        + ("beat-minus-record-template channel on; " if args.beat_template and args.task != "speech_commands" else "")
        + ("training clips augmented (time shift, background noise); " if args.task == "speech_commands" else "")
        + f"examples per split {'(fold 0) ' if cv else ''}{clips}"
        + (f"; records {records}" if records and not cv else "") + ".  ",
        "Every metric is measured on the exported `.tflite` in TFLM (a hyper file through the HyperTinyPW op in "
        "the host runner, or, from commit 3a3c1c6 on, as its expanded file in the tflite_micro wheel with the op "
        "checked on the first 64 examples: the two give equal outputs, BENCHMARKS `scoring`). "
        "SRAM boot = TFLM arena + cached generated kernels; SRAM stream = arena + the largest "
        "generated kernel's buffer. CI columns: 95% t-interval of the mean over seeds (needs ≥ 2 seeds), and the "
        "first seed's clustered bootstrap CI over records/speakers of the pooled predictions, with its half-width. "
        "Best epoch: median over folds and seeds of the epoch early stopping kept; 'max hit': runs whose best "
        "epoch was the last allowed (not converged).",
    ]
    if note:
        lines += ["", note]
    lines += ["", answers_mod.markdown_table(rows, metrics), "", "Answers (computed by "
              "`bench._frontier_answers.answers` from the rows above, metric " + metrics[0] + "):", ""]
    lines += [f"- {text}" for text in answers_mod.answer_lines(result)]
    lines += ["", f"![{task} frontier]({os.path.relpath(plot_path, bench_path.parent)})"]
    return "\n".join(lines)


def _rate(args: argparse.Namespace) -> str:
    from hyper_tinypw_tf.app import pipeline

    return f"{args.learning_rate or pipeline.RunConfig.learning_rate:g}"


def metrics_for(task: str) -> tuple[str, ...]:
    return tasks.get(task).headline


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=TASKS, default="mitdb_aami")
    parser.add_argument("--data_dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="work folder (default /tmp/frontier_<task>)")
    parser.add_argument("--points", default="", help="comma-separated point names (default: the task's set)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--protocol", default="cv:5",
                        help="cv:K (every record or speaker tested once, predictions pooled) or patient_wise")
    parser.add_argument("--epochs", type=int, default=30,
                        help="the maximum; early stopping on validation macro-F1 (--patience) ends most runs first")
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--rr_features", action=argparse.BooleanOptionalAction, default=None,
                        help="MIT-BIH: RR-interval channels (default: on for mitdb_aami)")
    parser.add_argument("--beat_template", action=argparse.BooleanOptionalAction, default=None,
                        help="MIT-BIH: each beat minus its record's median beat as a channel (default: on for AAMI)")
    parser.add_argument("--schedule", choices=("cosine", "constant"), default="cosine")
    parser.add_argument("--monitor", choices=("val_macro_f1", "val_loss"), default="val_macro_f1")
    parser.add_argument("--class_weight_power", type=float, default=0.5,
                        help="class weights (1/frequency)**power: 1 = inverse frequency, 0.5 = its square root")
    parser.add_argument("--qat_epochs", type=int, default=1)
    parser.add_argument("--learning_rate", type=float, default=None,
                        help="Adam's rate for the float training (default: the main job's)")
    parser.add_argument("--split_seed", type=int, default=0)
    parser.add_argument("--records", default="", help="MIT-BIH: comma-separated records of the patient-wise pool")
    parser.add_argument("--n_boot", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="3 records or 8 clips per word, 1 epoch, 1 seed, 3 points")
    parser.add_argument("--tag", default="", help="a second run of a task: section and plot frontier_<task>_<tag>")
    parser.add_argument("--note", default="", help="a sentence to print in the section (e.g. what was not run)")
    parser.add_argument("--fit", action="store_true",
                        help="also measure each point's SRAM per mode on the Cortex-M4 under QEMU (first seed)")
    parser.add_argument("--collect", action="store_true",
                        help="train nothing: report the (point, seed) results already in --out (a cut-short run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.qat_epochs, args.n_boot, args.protocol = 1, 1, 0, 50, "cv:3"
        args.points = args.points or ",".join(QUICK_POINTS[args.task])
    if args.rr_features is None:
        args.rr_features = args.task == "mitdb_aami"
    if args.beat_template is None:
        args.beat_template = args.task == "mitdb_aami"
    args.points = args.points or ",".join(DEFAULT_POINTS[args.task])
    args.data_dir = args.data_dir or DATA / ("speech_commands" if args.task == "speech_commands" else "mitdb")
    args.out = args.out or Path("/tmp") / f"frontier_{args.task}{'_quick' if args.quick else ''}"
    return args


def contexts(args: argparse.Namespace) -> list[Context]:
    """One context per fold under cv:K (each with its fold's data), else one for the single split."""
    from hyper_tinypw_tf.data import splits

    k = splits.parse_cv(args.protocol)
    records = [r for r in args.records.split(",") if r] or None
    out = []
    for fold in range(k) if k else (None,):
        datasets, info = load_data(args.task, args.data_dir, args.split_seed, args.quick, records, args.protocol,
                                   fold or 0, args.rr_features, args.beat_template)
        schedule = {"schedule": args.schedule, "monitor": args.monitor, "class_weight_power": args.class_weight_power}
        out.append(Context(args.task, datasets, info, args.out, args.epochs, args.qat_epochs, args.n_boot,
                           metrics_for(args.task), log=lambda s: print(s, flush=True),
                           learning_rate=args.learning_rate, patience=args.patience, fold=fold, schedule=schedule))
    return out


def paired_gap(ctxs: list[Context], seeds: int) -> Any:
    """``gap(a, b)``: point a − point b in the first metric over the seeds both have, paired (same examples,
    each resample scores both, every seed's predictions of a drawn group included), with its 95% CI."""
    from hyper_tinypw_tf import crossval

    def gap(a: str, b: str) -> dict[str, Any] | None:
        both = [s for s in range(seeds) if all((ctxs[0].out / p / f"seed{s}" / "result.json").exists() for p in (a, b))]
        if not both:
            return None
        if ctxs[0].fold is None:
            stacked = {p: crossval.stack([_scores(folder(p, s, ctxs[0]) / "model.tflite", ctxs[0]) for s in both])
                       for p in (a, b)}
        else:
            stacked = {p: crossval.stack([pooled_scores(p, s, ctxs) for s in both]) for p in (a, b)}
        d = crossval.paired(stacked[a], stacked[b], ctxs[0].n_boot, 0)[ctxs[0].metrics[0]]
        return {"difference": d.difference, "ci": list(d.ci), "seeds": both}

    return gap


# The arguments every cached result in --out depends on (what a point, a seed and a fold do not name).
RESULT_SETTINGS = ("task", "data_dir", "protocol", "split_seed", "records", "quick", "rr_features", "beat_template",
                   "epochs", "patience", "schedule", "monitor", "class_weight_power", "qat_epochs", "learning_rate",
                   "n_boot")


def check_settings(args: argparse.Namespace) -> None:
    """Refuse an ``--out`` whose cached results were made under other settings; record them on first use.

    The cache is keyed by point, seed and fold only, so continuing a run with another schedule or other
    input channels would mix two experiments in one table without a word. ``OUT/settings.json`` holds
    the settings of the run that made the folder; a setting it does not list is not checked.

    Raises:
      SystemExit: a setting differs, naming it, both values and the folder.
    """
    from hyper_tinypw_tf.app import stages

    mine = {k: str(v) if isinstance(v := getattr(args, k), Path) else v for k in RESULT_SETTINGS}
    path = args.out / "settings.json"
    if not path.exists():
        args.out.mkdir(parents=True, exist_ok=True)
        stages.write_json(path, mine)
        return
    theirs = json.loads(path.read_text())
    differ = [f"{k}={theirs[k]!r} there, {mine[k]!r} here" for k in mine if k in theirs and theirs[k] != mine[k]]
    if differ:
        raise SystemExit(f"frontier: --out {args.out} holds results made under other settings ({'; '.join(differ)}); "
                         f"give another --out, or the settings in {path}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the points over seeds, aggregate, answer, write the section, the plot and ``frontier.json``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parse(argv)
    check_settings(args)
    start = time.monotonic()
    points = resolve_points(args.task, [p for p in args.points.split(",") if p])
    by_name = {p.name: p for p in points}
    ctxs = contexts(args)
    ctx = ctxs[0]
    metrics = ctx.metrics
    if args.collect:
        found = (ctx.out / p.name / f"seed{seed}" / "result.json" for seed in range(args.seeds) for p in points)
        runs = [json.loads(path.read_text()) for path in found if path.exists()]
        if not runs:
            raise SystemExit(f"frontier: --collect found no result.json under {ctx.out}")
    elif ctx.fold is None:
        runs = [run_point(p, seed, ctx, by_name) for seed in range(args.seeds) for p in points]
    else:  # seeds outermost: every point's first seed on all folds before any second seed
        runs = [run_pooled(p, seed, ctxs, by_name) for seed in range(args.seeds) for p in points]
    info = ctx.info
    rows = answers_mod.aggregate(runs, metrics)
    for row in rows:
        row["kind"] = by_name[row["point"]].report_kind
    if args.fit:
        for row in rows:
            row["m4"] = measure_fit(by_name[row["point"]], row["seeds"][0], ctx)
    result = answers_mod.answers(rows, metrics[0], paired=paired_gap(ctxs, args.seeds))
    wall = sum(float(r["seconds"]) for r in runs) if args.collect else time.monotonic() - start
    name = f"frontier_{args.task}" + (f"_{args.tag}" if args.tag else "")
    plot_path = (args.out if args.quick else ROOT / "docs") / f"{name}.png"
    bench_path = args.out / "BENCHMARKS.md" if args.quick else BENCHMARKS_PATH
    title = f"{args.task}: {metrics[0]} vs file bytes ({args.seeds} seed(s), {args.protocol}, <= {args.epochs} epochs)"
    plot(rows, metrics[0], plot_path, title)
    body = section(args.task, rows, result, args, metrics, wall, info, plot_path, bench_path, args.note)
    write_section(name, body, bench_path)
    summary = {"task": args.task, "wall_seconds": round(wall, 1), "rows": rows, "answers": result,
               "runs": runs, "plot": str(plot_path), "benchmarks": str(bench_path)}
    (args.out / "frontier.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print("\n".join(answers_mod.answer_lines(result)))
    print(f"wall time {wall / 60:.1f} min; section {name} -> {bench_path}; plot -> {plot_path}")
    return summary


if __name__ == "__main__":
    main()
