"""Training-step time of the hyper model against the stored model of the same backbone.

Run: python -m bench.bench_train_step [--presets large,64k] [--steps 30] [--batch 64]
Writes the "train_step" section of BENCHMARKS.md. Target: hyper ≤ 1.15× stored.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bench._report import machine_line, write_section
from hyper_tinypw_tf import models, training


def step_seconds(model, x: np.ndarray, y: np.ndarray, steps: int) -> float:
    """Median wall time of one ``train_on_batch`` after warm-up."""
    training.compile_model(model, 1e-3)
    for _ in range(3):
        model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presets", default="large,64k")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    rows = []
    for preset in args.presets.split(","):
        training.set_seed(0)
        stored = models.separable_cnn_1d(preset, pw="stored")
        hyper = models.separable_cnn_1d(preset, pw="hyper")
        if models.get_preset(preset).stored_backbone is not None:
            # Same-backbone comparison: the stored twin of the *hyper* backbone.
            stored = models.build_backbone(models.get_preset(preset).backbone, 2, pw="stored")
        rng = np.random.default_rng(0)
        x = rng.normal(size=(args.batch, *stored.input_shape[1:])).astype("float32")
        y = rng.integers(0, 2, args.batch)
        t_stored = step_seconds(stored, x, y, args.steps)
        t_hyper = step_seconds(hyper, x, y, args.steps)
        rows.append((preset, t_stored, t_hyper))
        print(f"{preset}: stored {t_stored * 1e3:.1f} ms, hyper {t_hyper * 1e3:.1f} ms, ratio {t_hyper / t_stored:.3f}")
    body = [
        "## Training step: hyper vs stored, same backbone",
        "",
        f"Command: `python -m bench.bench_train_step --presets {args.presets} --steps {args.steps} "
        f"--batch {args.batch}`  ",
        f"Machine: {machine_line()}. Median of {args.steps} `train_on_batch` calls after 3 warm-up steps, "
        f"batch {args.batch}, float32, CPU. Target: hyper ≤ 1.15× stored.",
        "",
        "| preset | stored step (ms) | hyper step (ms) | hyper / stored |",
        "|---|---:|---:|---:|",
    ]
    body += [f"| {p} | {s * 1e3:.1f} | {h * 1e3:.1f} | {h / s:.3f} |" for p, s, h in rows]
    write_section("train_step", "\n".join(body))


if __name__ == "__main__":
    main()
