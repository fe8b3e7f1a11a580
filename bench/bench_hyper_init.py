"""Seed spread of a hyper model with each generator initialization ("default", "hyperfan_in"), AAMI beats.

Run from the repository root:  python -m bench.bench_hyper_init [--seeds 0,1,2] [--epochs 8] [--preset 64k]
Writes the "hyper_init" section of BENCHMARKS.md. Not a test: each run trains a model (minutes on 2 cores).

One patient-wise split of the MIT-BIH records (``--split_seed``) for every run, so the spread between
seeds is the model's (initialization and batch order), not the split's. Each seed trains the preset's
hyper model once per ``init`` with the main job's schedule (``pipeline.fit_model`` under a default
``pipeline.RunConfig``: cosine schedule, balanced class weights, early stopping on validation macro-F1).
The model is ``pipeline.build_model(preset, info, train, "hyper", generator)`` with the preset's generator
config plus ``init``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import BENCHMARKS_PATH, machine_line, write_section
from hyper_tinypw_tf import data, evaluation, kernels, models, training
from hyper_tinypw_tf.app import pipeline

MITDB = data.default_data_dir("mitdb")
COMMAND = "python -m bench.bench_hyper_init"
TASK = "mitdb_aami"


def build(preset: str, init: str, info: Any, train: Any) -> Any:
    """The preset's hyper model on the dataset's shape, its generator at ``init``, input normalization fitted."""
    spec = models.get_preset(preset).generator
    generator = {**spec, "config": {**spec.get("config", {}), "init": init}}
    return pipeline.build_model(preset, info, (x for x, _ in train), "hyper", generator)


def run(init: str, seed: int, args: argparse.Namespace, datasets: dict[str, Any], info: Any) -> dict[str, Any]:
    """Train one model and score its train, validation and test splits (Keras, float)."""
    config = replace(pipeline.RunConfig(), preset=args.preset, epochs=args.epochs, seed=seed)
    training.set_seed(seed)
    model = build(args.preset, init, info, datasets["train"])
    start = time.perf_counter()
    curve = pipeline.fit_model(model, datasets, info, config, args.epochs, config.learning_rate, None)
    out: dict[str, Any] = {"init": init, "seed": seed, "epochs_run": curve["epochs_run"],
                           "best_epoch": curve["best_epoch"], "seconds": round(time.perf_counter() - start, 1)}
    for split in ("train", "val", "test"):
        x, y = pipeline.inputs_and_labels(datasets[split])
        predicted = model.predict(x, verbose=0, batch_size=256).argmax(axis=1)
        out[f"{split}_macro_f1"] = evaluation.macro_f1(y, predicted, info.num_classes)
        out[f"{split}_accuracy"] = float(np.mean(predicted == y))
    return out


def summary(rows: list[dict[str, Any]], init: str, key: str) -> tuple[float, float]:
    """Mean and sample sd over seeds of ``key`` for one init (sd 0 with one seed)."""
    values = [r[key] for r in rows if r["init"] == init]
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    """Both inits per seed on one split, then a table and each init's mean ± sd."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--preset", default="64k")
    parser.add_argument("--split_seed", type=int, default=0)
    parser.add_argument("--records", default="", help="comma-separated records for a quick run (default: all)")
    parser.add_argument("--out", type=Path, default=BENCHMARKS_PATH, help="the file whose section is written")
    args = parser.parse_args()
    records = [r for r in args.records.split(",") if r] or None
    options = data.LoadOptions(quiet=True)
    datasets, info = data.load(TASK, MITDB, options, batch_size=128, seed=args.split_seed, records=records)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for init in kernels.INITS:
            rows.append(run(init, seed, args, datasets, info))
            print(json.dumps(rows[-1]), flush=True)
    table = [
        "| init | seed | epochs run | best epoch | seconds | train acc. | val macro-F1 | test macro-F1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    table += [
        f"| {r['init']} | {r['seed']} | {r['epochs_run']} | {r['best_epoch']} | {r['seconds']} | "
        f"{r['train_accuracy']:.3f} | {r['val_macro_f1']:.3f} | {r['test_macro_f1']:.3f} |"
        for r in rows
    ]
    lines = []
    for init in kernels.INITS:
        (val, val_sd), (test, test_sd) = summary(rows, init, "val_macro_f1"), summary(rows, init, "test_macro_f1")
        lines.append(f"- {init}: val macro-F1 **{val:.3f} ± {val_sd:.3f}** (sd over seeds), "
                     f"test macro-F1 {test:.3f} ± {test_sd:.3f}")
    command = (f"{COMMAND} --seeds {args.seeds} --epochs {args.epochs} --preset {args.preset} "
               f"--split_seed {args.split_seed}" + (f" --records {args.records}" if records else ""))
    body = "\n".join([
        "## Generator initialization: seed spread of a hyper model (issue 17 item 2)",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine_line()}  ",
        f"Model: preset {args.preset}, hyper PW (the preset's generator, `init` as listed), float Keras; the main "
        f"job's schedule (pipeline.RunConfig defaults, at most {args.epochs} epochs, early stopping on validation "
        f"macro-F1). One patient-wise split (seed {args.split_seed}) of {TASK} for every run; the seed sets the "
        "initial values and the batch order. `hyperfan_in` starts each generated kernel at He's variance 2/C_in "
        "of its layer (hyper_tinypw_tf/kernels.py).",
        "",
        *table,
        "",
        *lines,
    ])
    write_section("hyper_init", body, args.out)


if __name__ == "__main__":
    main()
