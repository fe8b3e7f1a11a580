"""Keyword spotting on the shared Speech Commands copy: a short run, in Keras, after QAT and in TFLM.

Run from the repository root:  python -m bench.bench_kws_learns [--epochs 10] [--split speakers:15,15]
Writes the "kws_learns" section of BENCHMARKS.md. Not a test: it trains ds_cnn_s twice (stored
and hyper PW), about a minute each on 2 cores.

The copy holds official test-set speakers only, so it is split by a seeded speaker shuffle
(``--kws_split=speakers:15,15`` on the command line). Chance is 1/12 = 8.3%.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from bench._report import machine_line, write_section
from hyper_tinypw_tf import data, models, quantization, training

SC = data.default_data_dir("speech_commands")
COMMAND = "python -m bench.bench_kws_learns"


def _arrays(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in dataset), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def run(pw: str, split: str, epochs: int, seed: int) -> dict[str, Any]:
    """Train, QAT one epoch, export folded; accuracy per split in each runtime."""
    from hyper_tinypw_tf.export import convert, interpreters

    training.set_seed(seed)
    datasets, info = data.load("speech_commands", SC, batch_size=64, seed=seed, shuffle_train=True, split=split)
    model = models.for_task("ds_cnn_s", info.task, info.input_shape, info.num_classes, pw=pw)
    models.fit_input_normalization(model, (x for x, _ in datasets["train"]))
    config = training.TrainConfig(epochs=epochs, learning_rate=2e-3, patience=epochs, seed=seed, verbose=0)
    start = time.perf_counter()
    training.fit(model, datasets["train"], datasets["val"], config)
    out: dict[str, Any] = {"pw": pw, "seconds": round(time.perf_counter() - start, 1),
                           "clips": {s: int(sum(c.values())) for s, c in info.counts.items()}}
    arrays = {s: _arrays(datasets[s]) for s in ("train", "val", "test")}
    for s, (x, y) in arrays.items():
        out[f"keras_{s}"] = float(np.mean(model.predict(x, verbose=0).argmax(1) == y))
    qat = quantization.quantize_model(model)
    training.fit(qat, datasets["train"], datasets["val"],
                 training.TrainConfig(epochs=1, learning_rate=2e-4, seed=seed, verbose=0))
    blob = convert.convert_model(qat)
    out["tflite_bytes"] = len(blob)
    for s in ("val", "test"):
        x, y = arrays[s]
        out[f"qat_{s}"] = float(np.mean(qat.predict(x, verbose=0).argmax(1) == y))
        out[f"tflm_{s}"] = float(np.mean(interpreters.predict(blob, x, "tflm").argmax(1) == y))
    return out


def main() -> None:
    """Stored and hyper ds_cnn_s, one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--split", default="speakers:15,15")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    for pw in ("stored", "hyper"):
        rows.append(run(pw, args.split, args.epochs, args.seed))
        print(json.dumps(rows[-1]), flush=True)
    clips = rows[0]["clips"]
    body = "\n".join([
        "## Keyword spotting learns: ds_cnn_s on the shared Speech Commands copy",
        "",
        f"Command: `{COMMAND} --epochs {args.epochs} --split {args.split} --seed {args.seed}`  ",
        f"Machine: {machine_line()}  ",
        f"Split `--kws_split={args.split}` (seed {args.seed}): {clips['train']} / {clips['val']} / {clips['test']} "
        "clips (train / val / test, 12 classes, chance 8.3%). MFCCs normalized inside the model with train-split "
        f"statistics; Adam 2e-3, batch 64, {args.epochs} epochs, then 1 QAT epoch at 2e-4 and folded int8 export.",
        "",
        "| PW | train s | Keras train | Keras val | Keras test | QAT val | QAT test | TFLM val | TFLM test | bytes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['pw']} | {r['seconds']} | {r['keras_train']:.3f} | {r['keras_val']:.3f} | {r['keras_test']:.3f} | "
            f"{r['qat_val']:.3f} | {r['qat_test']:.3f} | {r['tflm_val']:.3f} | {r['tflm_test']:.3f} | "
            f"{r['tflite_bytes']:,} |"
            for r in rows
        ),
    ])
    write_section("kws_learns", body)


if __name__ == "__main__":
    main()
