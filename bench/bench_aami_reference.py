"""A reference the AAMI CNNs must beat: gradient-boosted trees on ten beat features, the frontier's cv:5 folds.

Run from the repository root:  python -m bench.bench_aami_reference [--folds 5] [--compare DIR ...]
Writes the "aami_reference" section of BENCHMARKS.md. Needs scikit-learn (the ``bench`` extra). Seconds on 2 cores.

Issue 16 asks for AAMI baselines worth beating. The classic inter-patient recipe (de Chazal et al., IEEE
TBME 2004) classifies each beat from RR intervals and a few morphology measurements; this script applies
that idea with scikit-learn's ``HistGradientBoostingClassifier`` to the same inputs the CNNs get (the
``mitdb_aami`` loader with its RR and beat-minus-record-template channels), on the same cv:5 folds over
the DS1 records: trained on each fold's training records only, tested on its test records, pooled out of
fold and bootstrapped over records by the project's own ``crossval`` and ``evaluation``. ``--compare``
takes frontier point folders (``OUT/POINT/seedS`` with ``fold*/scores.npz``) and prints the paired
difference tree − point on the same beats.

The ten features of a beat (window centred on the R peak, 256 samples at 360 Hz): pre-RR, post-RR and
local RR over the record's mean RR, pre-RR / local RR, post-RR / pre-RR; and over the central 128 samples
(±178 ms) the mean |beat − template| and the sd of (beat − template), the beat's max and min, and its
largest sample-to-sample slope.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench._report import BENCHMARKS_PATH, machine_line, write_section
from hyper_tinypw_tf import crossval, data, evaluation, tasks, training

TASK = "mitdb_aami"
COMMAND = "python -m bench.bench_aami_reference"
FEATURES = ("pre_rr", "post_rr", "local_rr", "pre_over_local", "post_over_pre",
            "mean_abs_template_diff", "sd_template_diff", "beat_max", "beat_min", "max_slope")
CENTRE = slice(64, 192)  # ±64 samples around the R peak of a 256-sample window


def beat_features(x: np.ndarray) -> np.ndarray:
    """(N, 256, 1, 5) loader inputs (beat, beat − template, pre/post/local RR) -> (N, 10) ``FEATURES``."""
    if x.ndim != 4 or x.shape[-1] != 5:
        raise ValueError(f"beat_features: expected (N, window, 1, 5) inputs with the RR and template channels, "
                         f"got {x.shape}")
    beat, diff = x[:, CENTRE, 0, 0], x[:, CENTRE, 0, 1]
    pre, post, local = (x[:, 0, 0, c] for c in (2, 3, 4))
    return np.stack([pre, post, local, pre / local, post / pre,
                     np.abs(diff).mean(axis=1), diff.std(axis=1), beat.max(axis=1), beat.min(axis=1),
                     np.abs(np.diff(beat, axis=1)).max(axis=1)], axis=1).astype(np.float32)


def fold_scores(fold: int, folds: int, data_dir: Path, seed: int, weight_power: float) -> crossval.FoldScores:
    """Train the trees on one fold's training records and score its test (and validation) records."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    arrays, info = data.load_arrays(TASK, data_dir, data.LoadOptions(quiet=True), protocol=f"cv:{folds}",
                                    fold=fold, rr_features=True, beat_template=True)
    train = arrays["train"]
    weights = training.balanced_class_weight(train.y, info.num_classes, weight_power)
    per_example = np.array([weights[c] for c in range(info.num_classes)])[train.y]
    trees = HistGradientBoostingClassifier(max_iter=200, random_state=seed)
    trees.fit(beat_features(train.x), train.y, sample_weight=per_example)

    def log_probabilities(split: str) -> np.ndarray:
        out = np.full((len(arrays[split].y), info.num_classes), -30.0)  # classes absent from training: ~0
        out[:, trees.classes_] = np.log(np.maximum(trees.predict_proba(beat_features(arrays[split].x)), 1e-13))
        return out

    test, val = arrays["test"], arrays["val"]
    return crossval.FoldScores.from_logits(fold, log_probabilities("test"), test.y, test.groups,
                                           log_probabilities("val"), val.y)


def frontier_scores(point_dir: Path, folds: int) -> crossval.FoldScores:
    """A frontier point's pooled test predictions from its cached ``fold*/scores.npz``."""
    parts = []
    for fold in range(folds):
        path = point_dir / f"fold{fold}" / "scores.npz"
        if not path.exists():
            raise FileNotFoundError(f"--compare {point_dir}: {path} is missing (run that fold of the frontier first)")
        parts.append(crossval.FoldScores.from_npz(fold, path))
    return crossval.pool(parts)


def per_class_rows(report: evaluation.EvaluationReport) -> list[str]:
    """One table row per class: support, sensitivity, PPV, F1."""
    return [f"| {name} | {int(c['support']):,} | {c['recall']:.3f} | {c['precision']:.3f} | {c['f1']:.3f} |"
            for name, c in report.per_class.items()]


def main() -> None:
    """Score the trees on every fold, pool, report, and pair with each ``--compare`` point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--class_weight_power", type=float, default=0.5,
                        help="class weights (1/frequency)^power, as the frontier's CNNs (default 0.5)")
    parser.add_argument("--n_boot", type=int, default=1000)
    parser.add_argument("--compare", type=Path, nargs="*", default=[],
                        help="frontier point folders OUT/POINT/seedS to pair with")
    parser.add_argument("--out", type=Path, default=BENCHMARKS_PATH, help="the file whose section is written")
    args = parser.parse_args()
    data_dir = data.default_data_dir("mitdb")
    start = time.perf_counter()
    pooled = crossval.pool([fold_scores(f, args.folds, data_dir, args.seed, args.class_weight_power)
                            for f in range(args.folds)])
    seconds = time.perf_counter() - start
    names = list(tasks.get(TASK).class_names)
    report = pooled.evaluate(names, args.n_boot, args.seed, TASK)
    f1 = report.metrics["macro_f1"]
    lo, hi = report.ci["macro_f1"]
    def nsvf(r: evaluation.EvaluationReport) -> float:
        """Mean F1 over N, S, V, F: de Chazal's tables leave Q (8 beats in DS1) out."""
        return float(np.mean([r.per_class[c]["f1"] for c in ("N", "S", "V", "F")]))

    lines = [f"- trees: macro-F1 **{f1:.3f}** [{lo:.3f}, {hi:.3f}] over {report.n_groups} records "
             f"({report.n_examples:,} beats); mean F1 over N, S, V, F (Q left out, as in de Chazal's tables): "
             f"{nsvf(report):.3f}"]
    for point_dir in args.compare:
        other = frontier_scores(point_dir, args.folds)
        diff = crossval.paired(pooled, other, args.n_boot, args.seed)["macro_f1"]
        theirs = other.evaluate(names, args.n_boot, args.seed, TASK)
        lines.append(f"- trees − `{point_dir.parent.name}` ({point_dir.name}, macro-F1 {diff.b:.3f}, N/S/V/F mean F1 "
                     f"{nsvf(theirs):.3f}, S sensitivity {theirs.per_class['S']['recall']:.3f} and PPV "
                     f"{theirs.per_class['S']['precision']:.3f}): "
                     f"paired {diff.difference:+.3f} [{diff.ci[0]:+.3f}, {diff.ci[1]:+.3f}]")
        print(lines[-1], flush=True)
    compare = (" --compare " + " ".join(str(p) for p in args.compare)) if args.compare else ""
    body = "\n".join([
        "## AAMI reference: gradient-boosted trees on ten beat features (issue 16 item 5)",
        "",
        f"Command: `{COMMAND} --folds {args.folds} --seed {args.seed} "
        f"--class_weight_power {args.class_weight_power}{compare}`  ",
        f"Machine: {machine_line()}; {seconds:.0f} s for all folds (loading, training, scoring)  ",
        f"Setting: {TASK}, protocol cv:{args.folds} over the DS1 records (the frontier's folds: each fold trains "
        "on its training records only and is tested on its test records; pooled out of fold), scikit-learn "
        f"HistGradientBoostingClassifier (200 iterations), class weights (1/frequency)^{args.class_weight_power}; "
        f"features: {', '.join(FEATURES)} (bench/bench_aami_reference.py). 95% CI: clustered bootstrap over records "
        f"({args.n_boot} resamples); paired differences resample both on the same records.",
        "",
        "| class | beats | sensitivity | PPV | F1 |",
        "|---|---:|---:|---:|---:|",
        *per_class_rows(report),
        "",
        *lines,
    ])
    print(body)
    write_section("aami_reference", body, args.out)


if __name__ == "__main__":
    main()
