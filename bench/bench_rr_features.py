"""AAMI beat classification with and without RR features, patient-wise split of DS1, a few seeds.

Run from the repository root:  python -m bench.bench_rr_features [--seeds 0,1,2] [--epochs 8]
Writes the "rr_features" section of BENCHMARKS.md. Not a test: each run trains a model
(about 1-3 minutes per run on 2 cores).

Each seed draws its own patient-wise split of the DS1 records in ../shared/data/mitdb, and
both variants (waveform only; waveform + pre-RR, post-RR, local-mean RR as channels) train
on that split with the same seed, schedule and class weights as ``hyper-tinypw train``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np

from bench._report import machine_line, write_section
from hyper_tinypw_tf import data, evaluation, models, training

MITDB = data.default_data_dir("mitdb")
COMMAND = "python -m bench.bench_rr_features"


def run(rr: bool, seed: int, preset: str, epochs: int) -> dict[str, Any]:
    """Train one model and score its validation and test records (Keras, float)."""
    training.set_seed(seed)
    datasets, info = data.load(
        "mitdb_aami", MITDB, batch_size=128, seed=seed, shuffle_train=True, rr_features=rr
    )
    model = models.for_task(preset, info.task, info.input_shape, info.num_classes, pw="hyper")
    labels = {s: np.concatenate([y.numpy() for _, y in datasets[s]]) for s in ("train", "val", "test")}
    weights = training.balanced_class_weight(labels["train"], info.num_classes)
    config = training.TrainConfig(epochs=epochs, learning_rate=2e-3, patience=3, seed=seed, verbose=0)
    start = time.perf_counter()
    history = training.fit(model, datasets["train"], datasets["val"], config, class_weight=weights)
    out: dict[str, Any] = {
        "rr": rr, "seed": seed, "epochs_run": len(history.history["loss"]),
        "seconds": round(time.perf_counter() - start, 1), "test_records": info.notes["records"]["test"],
    }
    for split in ("val", "test"):
        predicted = model.predict(datasets[split], verbose=0).argmax(axis=1)
        out[f"{split}_macro_f1"] = evaluation.macro_f1(labels[split], predicted, info.num_classes)
        out[f"{split}_balanced_accuracy"] = evaluation.balanced_accuracy(labels[split], predicted, info.num_classes)
    return out


def main() -> None:
    """Both variants per seed, then one table and the mean difference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--preset", default="32k")
    args = parser.parse_args()
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for rr in (False, True):
            rows.append(run(rr, seed, args.preset, args.epochs))
            print(json.dumps(rows[-1]), flush=True)
    table = [
        "| seed | test records | RR | epochs run | seconds | val macro-F1 | test macro-F1 | test balanced acc. |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    table += [
        f"| {r['seed']} | {' '.join(r['test_records'])} | {'yes' if r['rr'] else 'no'} | {r['epochs_run']} | "
        f"{r['seconds']} | {r['val_macro_f1']:.3f} | {r['test_macro_f1']:.3f} | {r['test_balanced_accuracy']:.3f} |"
        for r in rows
    ]
    mean = {rr: statistics.mean(r["test_macro_f1"] for r in rows if r["rr"] == rr) for rr in (False, True)}
    body = "\n".join([
        "## RR features: AAMI beats, patient-wise DS1 split",
        "",
        f"Command: `{COMMAND} --seeds {args.seeds} --epochs {args.epochs} --preset {args.preset}`  ",
        f"Machine: {machine_line()}  ",
        f"Model: preset {args.preset}, hyper PW, float Keras; Adam 2e-3, batch 128, balanced class weights, "
        f"early stopping on validation loss (patience 3) from at most {args.epochs} epochs. Each seed draws its "
        "own 70/15/15 patient-wise split of the 22 DS1 records (../shared/data/mitdb); macro-F1 over the AAMI "
        "classes present in a split's labels or predictions.",
        "",
        *table,
        "",
        f"Mean test macro-F1: **{mean[False]:.3f} without RR, {mean[True]:.3f} with RR** "
        f"({len(rows) // 2} seeds). Three test records per seed: the spread between seeds is large.",
    ])
    write_section("rr_features", body)


if __name__ == "__main__":
    main()
