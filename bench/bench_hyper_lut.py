"""Bytes of a hyper file with and without TFLM's LUT compression of its remaining stored 1×1 filters.

Run from the repository root:  python -m bench.bench_hyper_lut
Writes the "hyper_lut" section of BENCHMARKS.md. Untrained ECG hyper presets (seeded random weights, the
stored 1×1 layers clustered with tfmot, no fine-tuning) and random calibration data: the byte counts do
not depend on training, only on the backbone, the generator and the cluster count.

What can be LUT-compressed in a hyper file is what it still stores as a 1×1 filter: PW1 and the
classifier (``export.peers.lut_pays`` decides per filter). The generator and the codes are the
``HyperTinyPW`` op's inputs, read at setup before DECODE runs, so they stay plain constants.
"""

from __future__ import annotations

import numpy as np

from bench._report import machine_line, write_section
from hyper_tinypw_tf import accounting, clustering, models
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.export import api, peers
from hyper_tinypw_tf.export.report import file_report

COMMAND = "python -m bench.bench_hyper_lut"
PRESETS = ("28k", "32k", "64k")
CLUSTERS = (16, 8)
CLASSES = 5  # MIT-BIH AAMI


def measure(preset: str, clusters: int) -> dict[str, int]:
    """Plain hyper vs hyper + LUT file bytes of one untrained preset, with the byte records of each."""
    keras.utils.set_random_seed(0)
    spec = models.get_preset(preset)
    backbone = spec.backbone_for("hyper")
    model = models.build_backbone(backbone, CLASSES, pw="hyper", generator=spec.generator)
    clustered = clustering.strip(clustering.cluster_pointwise(model, clusters))
    calibration = np.random.default_rng(1).normal(size=(16, *backbone.input_shape)).astype(np.float32)
    hyper = api.export_model(clustered, fmt=api.HYPER, representative_data=calibration)
    bits = peers.bits_for_clusters(clusters)
    lut = peers.lut_compress(hyper, bits)
    # file_report checks every byte record against the file's own tensors (ValueError naming the first that differs).
    plain = file_report(accounting.packed_bytes(clustered), hyper)
    packed = file_report(peers.lut_report(accounting.packed_bytes(clustered), bits), lut)
    return {"hyper": len(hyper), "lut": len(lut), "records": plain.report.total,
            "lut_records": packed.report.total, "overhead": plain.overhead, "lut_overhead": packed.overhead}


def main() -> None:
    rows = ["| preset | clusters (index bits) | hyper file | hyper + LUT file | saved | byte records | "
            "flatbuffer overhead |", "|---|---|---:|---:|---:|---|---|"]
    for preset in PRESETS:
        for clusters in CLUSTERS:
            m = measure(preset, clusters)
            saved = 1 - m["lut"] / m["hyper"]
            rows.append(f"| {preset} | {clusters} ({peers.bits_for_clusters(clusters)}) | {m['hyper']:,} | "
                        f"{m['lut']:,} | {saved:.1%} | {m['records']:,} → {m['lut_records']:,} | "
                        f"{m['overhead']:,} → {m['lut_overhead']:,} |")
            print(rows[-1], flush=True)
    body = "\n".join([
        "## Hyper + LUT in one file: bytes",
        "",
        f"Command: `{COMMAND}` ({machine_line()}). Untrained ECG hyper presets, 5 classes, stored 1×1 layers "
        "clustered (tfmot, no fine-tuning), post-training quantization on random calibration data, then "
        "`export.peers.lut_compress` of the hyper file. Each file's byte records are checked against "
        "its tensors (`export.report.file_report`); the rest of the file is flatbuffer overhead. Only PW1 "
        "and the classifier are still stored 1×1 filters in a hyper file, so the saving is small; "
        "the generator and codes are the op's inputs and stay plain constants.",
        "",
        *rows,
    ])
    write_section("hyper_lut", body)


if __name__ == "__main__":
    main()
