"""The main job: a hyper model beside the stored CNN of the same budget, trained, exported and scored alike.

``MainJob.run`` trains the preset's hyper model and its ``stored_backbone`` (the stored CNN of the
same byte budget; for a preset without a budget, the hyper model's stored twin) with the same data,
seed and schedule, fine-tunes both with QAT, exports both
(stored → folded ``.tflite``, hyper → hyper ``.tflite``), runs both files in the TFLM interpreter
and prints one side-by-side table (:func:`comparison_table`) whose differences carry a paired
clustered-bootstrap CI (:func:`hyper_tinypw_tf.evaluation.paired_difference`).

Each stage is one of :mod:`hyper_tinypw_tf.app.stages` (shared with ``bench.frontier``): it writes one
file atomically and is skipped when that file exists, so a killed run started again resumes at the
first missing file; training itself resumes from its last finished epoch. Layout::

    out/stored/model.keras  model_qat.h5  model_folded.tflite  tflm.npz
    out/hyper/ model.keras  model_qat.h5  model_hyper.tflite   tflm.npz
    out/twin/  model.keras          (with --distill at a budget preset: the teacher, the stored twin)
    out/summary.json

Under ``--protocol=cv:K`` (:class:`CrossValidatedJob`) that layout is repeated in ``out/fold<i>/``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hyper_tinypw_tf.app import stages
from hyper_tinypw_tf.app.pipeline import TWIN, LoadData, RunConfig, load_model

SIDES = ("stored", "hyper")
FILE_FORMAT = {"stored": "folded", "hyper": "hyper"}
HEADLINE = ("macro_f1", "balanced_accuracy", "roc_auc")
# A clustered bootstrap over fewer groups resamples a handful of records: the percentile interval collapses onto
# whichever record dominates (the README's old default printed [0.500, 1.000] from 3 records).
MIN_TRUSTED_GROUPS = 10


class MainJob:
    """The main job's stages for both sides (:mod:`hyper_tinypw_tf.app.stages`), in ``out/<side>/``."""

    def __init__(self, out: str | Path, config: RunConfig, load_data: LoadData,
                 print_fn: Callable[[str], None] = print) -> None:
        self.out = Path(out)
        self.config = config
        self.load_data = load_data
        self.print = print_fn
        self._data: tuple[dict[str, Any], Any] | None = None

    def path(self, side: str, name: str) -> Path:
        return self.out / side / name

    def data(self) -> tuple[dict[str, Any], Any]:
        """Datasets and metadata, loaded once (and only if a stage needs them)."""
        if self._data is None:
            self._data = self.load_data()
        return self._data

    def _log(self, side: str) -> Callable[[str], None]:
        return lambda line: self.print(f"[{side}] {line}")

    def _teacher_for(self, side: str) -> stages.Teacher:
        return self.teacher if side == "hyper" and self.config.distill else None

    def train(self, side: str) -> Path:
        """Train the float model of ``side`` (same seed and schedule for every side)."""
        from hyper_tinypw_tf.app import pipeline

        def build(datasets: dict[str, Any], info: Any) -> Any:
            return pipeline.build_model(self.config.preset, info, (x for x, _ in datasets["train"]), side)

        # Data loaded again after the seed, so every side sees the same shuffles.
        return stages.train(self.path(side, "model.keras"), build, self.load_data, self.config,
                            curve=self.path(side, "checkpoints.json"), teacher=self._teacher_for(side),
                            log=self._log(side))

    def teacher_side(self) -> str:
        """Where the stored twin is trained: its own folder, or "stored" when that side is the twin already."""
        from hyper_tinypw_tf import models

        return TWIN if models.get_preset(self.config.preset).stored_backbone is not None else "stored"

    def teacher(self) -> Any:
        """The distillation teacher: ``--teacher`` if given, else the trained stored twin."""
        if self.config.teacher:
            return load_model(self.config.teacher)
        return load_model(self.train(self.teacher_side()))  # skipped (it says so) when trained already

    def qat(self, side: str) -> Path:
        return stages.qat(self.path(side, "model_qat.h5"), self.path(side, "model.keras"), self.load_data,
                          self.config, curve=self.path(side, "checkpoints_qat.json"),
                          teacher=self._teacher_for(side), log=self._log(side))

    def export(self, side: str) -> Path:
        from hyper_tinypw_tf.export import api

        hyper = FILE_FORMAT[side] == api.HYPER
        # The stored file gets the hyper file's zero-point layout: a byte difference is the method's.
        return stages.export(self.path(side, f"model_{FILE_FORMAT[side]}.tflite"), self.path(side, "model_qat.h5"),
                             FILE_FORMAT[side], log=self._log(side), mode=self.config.mode, slim_zero_points=True,
                             sram_budget=self.config.sram_budget if hyper else None)

    def evaluate(self, side: str, model_file: Path) -> Path:
        """Logits of the exported file in TFLM on val and test, the arena it needs, and the model's bill.

        A hyper file runs expanded in the tflite_micro wheel and, on the same examples, through the
        HyperTinyPW op in the host TFLM runner; both must give the same outputs.
        """
        from hyper_tinypw_tf import accounting
        from hyper_tinypw_tf.app import pipeline
        from hyper_tinypw_tf.export import interpreters

        op_stats: dict[str, Any] = {}

        @functools.cache
        def runnable() -> tuple[bytes, bool]:  # expanded only when the stage runs
            return pipeline.tflm_runnable(model_file.read_bytes())

        def predict(x: np.ndarray) -> np.ndarray:
            folded, expanded = runnable()
            if expanded:
                op_stats.update(pipeline.check_through_op(model_file, folded, x))
                self.print(f"{model_file.name} through the HyperTinyPW op (host TFLM runner): {len(x):,} outputs "
                           f"identical to the folded file's; arena {op_stats['arena_used_bytes']:,} bytes, "
                           f"cached kernels {op_stats['cached_kernel_bytes']:,} bytes")
            return interpreters.predict(folded, x, "tflm")

        def bill(datasets: dict[str, Any], info: Any) -> dict[str, Any]:
            arrays: dict[str, Any] = {}
            if op_stats:
                arrays.update(op_arena_used_bytes=op_stats["arena_used_bytes"],
                              op_cached_kernel_bytes=op_stats["cached_kernel_bytes"])
            model_bill = accounting.runtime_bill(load_model(self.path(side, "model.keras")))
            return {
                **arrays, "arena_bytes": pipeline.tflm_arena_bytes(runnable()[0]), "expanded": runnable()[1],
                "macs": model_bill.inference_macs, "synthesis_macs": model_bill.synthesis_macs,
                "kernel_cache_bytes": model_bill.cached_kernel_bytes, "class_names": np.asarray(info.class_names),
                "task": info.task, "protocol": str(info.notes.get("protocol", "")),
            }

        return stages.score(self.path(side, "tflm.npz"), model_file, self.data, predict=predict, extra=bill,
                            stage="tflm evaluation", log=self._log(side))

    def stages(self) -> dict[str, Path]:
        """Train, QAT, export and evaluate both sides (each stage skipped when its file exists); the files."""
        self.out.mkdir(parents=True, exist_ok=True)
        files = {}
        if self.config.distill and not self.config.teacher:
            self.train(self.teacher_side())
        for side in SIDES:
            self.train(side)
            self.qat(side)
            files[side] = self.export(side)
            self.evaluate(side, files[side])
        return files

    def run(self) -> dict[str, Any]:
        """All stages for both sides, then the comparison (always recomputed: it is cheap)."""
        return _summarize(self.out, [(self.out, self.stages())], self.config, self.print)


class CrossValidatedJob:
    """The main job under ``cv:K``: one :class:`MainJob` per fold in ``out/fold<i>/``, then one pooled comparison.

    Every record or speaker is tested once, by the fold model that never saw it; the two sides share
    folds and seed, so their differences are paired over all of them (``crossval.paired``).
    """

    def __init__(self, out: str | Path, config: RunConfig, load_fold: Callable[[int], tuple[dict[str, Any], Any]],
                 folds: int, print_fn: Callable[[str], None] = print) -> None:
        self.out = Path(out)
        self.config = config
        self.load_fold = load_fold
        self.folds = folds
        self.print = print_fn

    def fold_job(self, fold: int) -> MainJob:
        return MainJob(self.out / f"fold{fold}", self.config, lambda: self.load_fold(fold), self.print)

    def run(self) -> dict[str, Any]:
        done = []
        for fold in range(self.folds):
            self.print(f"--- fold {fold + 1} of {self.folds}")
            job = self.fold_job(fold)
            done.append((job.out, job.stages()))
        return _summarize(self.out, done, self.config, self.print)


def run_main(out: str | Path, config: RunConfig, load_fold: Callable[[int | None], tuple[dict[str, Any], Any]],
             protocol: str, print_fn: Callable[[str], None] = print) -> dict[str, Any]:
    """The main job for ``protocol``: one split (``load_fold(None)``), or K folds pooled under ``cv:K``."""
    from hyper_tinypw_tf.data import splits

    k = splits.parse_cv(protocol)
    if k is None:
        return MainJob(out, config, lambda: load_fold(None), print_fn).run()
    return CrossValidatedJob(out, config, load_fold, k, print_fn).run()


def _summarize(out: Path, folds: list[tuple[Path, dict[str, Path]]], config: RunConfig,
               print_fn: Callable[[str], None]) -> dict[str, Any]:
    summary = compare(folds, config)
    stages.write_json(out / "summary.json", summary)
    print_fn(comparison_table(summary))
    return summary


def _fold_scores(npz: Any, fold: int) -> Any:
    from hyper_tinypw_tf import crossval

    return crossval.FoldScores.from_logits(fold, npz["test_logits"], npz["test_labels"], npz["test_groups"],
                                           npz["val_logits"], npz["val_labels"])


def _side_summary(npz: Any, model_files: list[Path], report: Any) -> dict[str, Any]:
    """One side's numbers: bytes of its files (the largest fold's), its bill from ``npz`` (any fold's: the
    same backbone), and ``report``, the evaluation of its pooled test predictions."""
    if "op_arena_used_bytes" in npz.files:  # measured through the HyperTinyPW op: its arena holds the kernels
        sram, source = int(npz["op_arena_used_bytes"]), "arena through the HyperTinyPW op"
    elif bool(npz["expanded"]):  # the expanded file's arena holds no generated kernels; the op caches them
        sram, source = int(npz["arena_bytes"]) + int(npz["kernel_cache_bytes"]), "expanded arena + kernel cache"
    else:
        sram, source = int(npz["arena_bytes"]), "arena"
    sizes = [f.stat().st_size for f in model_files]
    return {
        "file": str(model_files[0]) if len(model_files) == 1 else [str(f) for f in model_files],
        "file_bytes": max(sizes),
        "file_bytes_per_fold": sizes,
        "sram_bytes": sram,
        "sram_source": source,
        "tflm_arena_bytes": int(npz["arena_bytes"]),
        "kernel_cache_bytes": int(npz["kernel_cache_bytes"]),
        "macs": int(npz["macs"]),
        "synthesis_macs": int(npz["synthesis_macs"]),
        "evaluation": report.to_json_dict(),
    }


def compare(folds: list[tuple[Path, dict[str, Path]]], config: RunConfig) -> dict[str, Any]:
    """The summary of both sides and their paired differences (hyper − stored), from the stage files.

    ``folds`` holds one (folder, files) pair per fold (one pair without cross-validation); the test
    predictions of all folds are pooled (``crossval.pool``) before anything is scored.
    """
    from hyper_tinypw_tf import crossval, evaluation, models

    npz = [{side: np.load(out / side / "tflm.npz") for side in SIDES} for out, _ in folds]
    pooled = {side: crossval.pool([_fold_scores(n[side], i) for i, n in enumerate(npz)]) for side in SIDES}
    try:
        diffs = crossval.paired(pooled["hyper"], pooled["stored"], config.n_boot, config.seed)
    except ValueError:
        raise ValueError(f"{folds[0][0]}: the stored and hyper evaluations cover different test examples; "
                         "delete their tflm.npz files and run again") from None
    first = npz[0]["stored"]
    classes = [str(c) for c in first["class_names"]]
    sides = {side: _side_summary(npz[0][side], [files[side] for _, files in folds],
                                 pooled[side].evaluate(classes, config.n_boot, config.seed)) for side in SIDES}
    return {
        "task": str(first["task"]),
        "protocol": str(first["protocol"]),
        "folds": len(folds),
        "preset": config.preset,
        "mode": config.mode,
        "budget_bytes": models.get_preset(config.preset).budget,
        "seed": config.seed,
        "n_boot": config.n_boot,
        "n_test_examples": int(len(pooled["stored"].labels)),
        "n_test_groups": int(len(np.unique(pooled["stored"].groups))),
        "stored": sides["stored"],
        "hyper": sides["hyper"],
        "difference": {k: evaluation.json_safe(d.to_dict()) for k, d in diffs.items()},
    }


def _fmt_metric(value: float | None, ci: list[float | None] | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    lo, hi = ci if ci else (None, None)
    spec = "+.3f" if signed else ".3f"
    bounds = "n/a" if lo is None or hi is None else f"{lo:{spec}}, {hi:{spec}}"
    return f"{value:{spec}} [{bounds}]"


def comparison_table(summary: dict[str, Any]) -> str:
    """The side-by-side table of a :func:`compare` summary: bytes, SRAM, MACs, metrics with CIs."""
    s, h, d = summary["stored"], summary["hyper"], summary["difference"]
    budget = summary["budget_bytes"]
    folds = summary.get("folds", 1)
    head = (f"{summary['task']}, preset {summary['preset']}"
            + (f" (budget {budget:,} bytes)" if budget else "")
            + (f", {summary['protocol']}" if summary["protocol"] else "")
            + (f" (test predictions of the {folds} folds pooled)" if folds > 1 else "")
            + f": test {summary['n_test_examples']:,} examples from {summary['n_test_groups']} groups; "
            f"95% CIs from {summary['n_boot']} clustered resamples, the difference's paired")
    width = (28, 22, 22, 24)
    lines = [head, f"{'':<{width[0]}}{'stored CNN':>{width[1]}}{'hyper':>{width[2]}}{'hyper - stored':>{width[3]}}"]

    def count(label: str, key: str) -> None:
        lines.append(f"{label:<{width[0]}}{s[key]:>{width[1]},}{h[key]:>{width[2]},}{h[key] - s[key]:>+{width[3]},}")

    count("file bytes", "file_bytes")
    count("SRAM bill, bytes", "sram_bytes")
    count("MACs per inference", "macs")
    count("synthesis MACs (at load)", "synthesis_macs")
    names = {"macro_f1": "macro-F1", "balanced_accuracy": "balanced accuracy", "roc_auc": "ROC-AUC"}
    for key in HEADLINE:
        se, he = s["evaluation"], h["evaluation"]
        lines.append(
            f"{names[key]:<{width[0]}}{_fmt_metric(se['metrics'][key], se['ci'][key]):>{width[1]}}"
            f"{_fmt_metric(he['metrics'][key], he['ci'][key]):>{width[2]}}"
            f"{_fmt_metric(d[key]['difference'], d[key]['ci'], signed=True):>{width[3]}}"
        )
    for name in s["evaluation"]["class_names"]:
        cells = [f"{e['per_class'][name]['recall']:.3f} / {e['per_class'][name]['precision']:.3f}"
                 for e in (s["evaluation"], h["evaluation"])]
        lines.append(f"{'  ' + name + ' sens / PPV':<{width[0]}}{cells[0]:>{width[1]}}{cells[1]:>{width[2]}}")
    lines.append(f"SRAM bill: the TFLM arena (stored: {s['sram_source']}; hyper: {h['sram_source']}, with the "
                 f"{h['kernel_cache_bytes']:,} bytes of generated kernels cached in {summary['mode']} mode)")
    if summary["n_test_groups"] < MIN_TRUSTED_GROUPS:
        lines.append(f"CAUTION: {summary['n_test_groups']} test groups are too few for a clustered bootstrap: its "
                     f"intervals cannot be trusted (they need >= {MIN_TRUSTED_GROUPS}; --protocol=cv:5 tests every "
                     "record or speaker once)")
    return "\n".join(lines)
