"""Time the export of the "large" preset (folded and hyper) and record sizes in BENCHMARKS.md.

Reproduce: ``python -m bench.bench_export`` from the repository root. Untrained weights and
random calibration data: the timing and byte counts do not depend on training.
"""

from __future__ import annotations

import time

import numpy as np

from bench._report import machine_line, write_section
from hyper_tinypw_tf import models
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.export import api

COMMAND = "python -m bench.bench_export"


def main() -> None:
    keras.utils.set_random_seed(0)
    model = models.separable_cnn_1d("large", pw="hyper")
    data = np.random.default_rng(0).normal(size=(4, 256, 1, 1)).astype(np.float32)
    start = time.perf_counter()
    folded = api.export_model(model, fmt="folded", representative_data=data)
    folded_s = time.perf_counter() - start
    start = time.perf_counter()
    hyper = api.export_model(model, fmt="hyper", representative_data=data)
    hyper_s = time.perf_counter() - start
    start = time.perf_counter()
    expanded = api.expand(hyper)
    expand_s = time.perf_counter() - start
    assert expanded == folded, "expand(hyper) must reproduce folded"
    table = api.byte_report(model, hyper, fmt="hyper").table()
    body = "\n".join([
        "## Export of the \"large\" preset",
        "",
        f"Command: `{COMMAND}` ({machine_line()}).",
        "",
        "| step | seconds | bytes |",
        "|---|---|---|",
        f"| export folded (convert) | {folded_s:.1f} | {len(folded):,} |",
        f"| export hyper (convert + rewrite) | {hyper_s:.1f} | {len(hyper):,} |",
        f"| expand hyper → folded | {expand_s:.2f} | {len(expanded):,} |",
        "",
        f"folded / hyper = {len(folded) / len(hyper):.2f}x",
        "",
        "```",
        table,
        "```",
    ])
    write_section("export", body)
    print(body)


if __name__ == "__main__":
    main()
