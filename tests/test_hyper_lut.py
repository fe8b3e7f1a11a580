"""Hyper + LUT in one file: a hyper file's stored 1×1 filters clustered and LUT-compressed (export.peers).

The generated filters are ``HyperTinyPW`` outputs made at setup and stay so; the stored ones (PW1,
the 1×1 classifier) become DECODE inputs. The file must be smaller by exactly what the byte report
says, run in TFLM with the plain hyper file's outputs, expand to a folded file with the same
outputs, and still be refused when a byte flips.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from hyper_tinypw_tf import accounting, clustering, models
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import api, expand, peers
from hyper_tinypw_tf.export import format as fmt
from hyper_tinypw_tf.export.report import file_report
from hyper_tinypw_tf.layers import HyperPWConv2D
from tflm_harness import run as tflm_run

# PW1 (16 → 64) and the classifier (64 → 3) are stored; PW2, PW3 (64 → 64) are generated.
BACKBONE = models.Backbone(
    input_shape=(64, 1, 1), stem_channels=16, stem_kernel=(5, 1), stem_strides=(2, 2),
    channels=(64, 64, 64), strides=((2, 2), (2, 2), (1, 1)), dw_kernel=(5, 1),
)
GENERATOR = {"strategy": "tiled", "config": {"tile_size": 8, "code_dim": 4, "hidden_dim": 16}}
CLUSTERS = 4
BITS = peers.bits_for_clusters(CLUSTERS)  # 2: both stored 1×1 filters pay (16 input channels suffice)
STORED_1X1 = {"pw1/kernel": (64, 16), "classifier/kernel": (3, 64)}


def _data(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, *BACKBONE.input_shape)).astype(np.float32)


def _generators(model: keras.Model) -> list[object]:
    return [layer.generator for layer in model.layers if isinstance(layer, HyperPWConv2D)]


@functools.cache
def _models() -> tuple[keras.Model, keras.Model, keras.Model]:
    """(hyper model, its clustered wrapper after one training step, the stripped clustered model)."""
    keras.utils.set_random_seed(0)
    hyper = models.build_backbone(BACKBONE, 3, pw="hyper", generator=GENERATOR)
    wrapped = clustering.cluster_pointwise(hyper, CLUSTERS)
    wrapped.compile(optimizer=keras.optimizers.Adam(1e-2),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    wrapped.fit(_data(16, 3), np.arange(16) % 3, batch_size=16, epochs=1, verbose=0)
    return hyper, wrapped, clustering.strip(wrapped)


@functools.cache
def _files() -> tuple[bytes, bytes]:
    """(plain hyper file, the same with its stored 1×1 filters LUT-compressed)."""
    _, _, clustered = _models()
    hyper = api.export_model(clustered, fmt=api.HYPER, representative_data=_data(8, 1))
    return hyper, peers.lut_compress(hyper, BITS)


def _inputs() -> np.ndarray:
    return np.random.default_rng(2).integers(-128, 128, size=(6, *BACKBONE.input_shape)).astype(np.int8)


def _run(tmp_path, name: str, data: bytes) -> np.ndarray:
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(data)
    return tflm_run.run_host(path, _inputs()).outputs


def _ops(data: bytes) -> list[str]:
    model_t = fb.read(data)
    return [fb.op_name(model_t, op) for op in model_t.subgraphs[0].operators]


def test_clustering_a_hyper_model_wraps_only_stored_pointwise_and_keeps_one_generator():
    hyper, wrapped, clustered = _models()
    wrappers = [layer.name for layer in wrapped.layers if type(layer).__name__ == "ClusterWeights"]
    assert wrappers == ["cluster_pw1", "cluster_classifier"]
    for model in (wrapped, clustered):
        gens = _generators(model)
        assert len(gens) == 2 and gens[0] is gens[1], model.name
    assert _generators(clustered)[0] is not _generators(hyper)[0]
    trained = _generators(wrapped)[0].get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(trained, _generators(hyper)[0].get_weights(), strict=True))
    for got, want in zip(_generators(clustered)[0].get_weights(), trained, strict=True):
        assert np.array_equal(got, want), "strip keeps the trained generator"
    for name in ("pw1", "classifier"):
        assert len(np.unique(clustered.get_layer(name).kernel.numpy())) == CLUSTERS
        assert len(np.unique(hyper.get_layer(name).kernel.numpy())) > CLUSTERS, "the input model is untouched"


def test_hyper_lut_file_is_smaller_by_the_reported_lut_savings():
    _, _, clustered = _models()
    hyper, lut = _files()
    plain_report = file_report(accounting.packed_bytes(clustered), hyper)
    lut_report = file_report(peers.lut_report(accounting.packed_bytes(clustered), BITS), lut)
    assert lut_report.total == len(lut) and plain_report.total == len(hyper)
    saved = 0
    for name, (c_out, c_in) in STORED_1X1.items():
        indices, tables = peers.lut_tensors(name, c_out, c_in, BITS, "")
        assert peers.lut_pays(c_out, c_in, BITS)
        saved += c_out * c_in - indices.nbytes - tables.nbytes
    assert plain_report.report.total - lut_report.report.total == saved > 0
    # The graph grows by two DECODE ops and their tensors: less than the tables and indices save.
    assert len(lut) < len(hyper)
    assert _ops(lut).count("TFLM_DECODE") == len(STORED_1X1)
    assert _ops(lut).count(fmt.CUSTOM_OP_NAME) == _ops(hyper).count(fmt.CUSTOM_OP_NAME) == 2


def test_hyper_lut_keeps_every_other_tensor_and_the_ops_inputs_byte_for_byte():
    hyper, lut = _files()
    before, after = fb.read(hyper), fb.read(lut)
    old, new = before.subgraphs[0].tensors, after.subgraphs[0].tensors
    for a, b in zip(old, new, strict=False):
        if fb.tensor_name(a) not in STORED_1X1:
            assert fb.buffer_bytes(before, a) == fb.buffer_bytes(after, b), fb.tensor_name(a)
    buffers = [int(t.buffer) for t in new if fb.buffer_bytes(after, t)]
    assert len(buffers) == len(set(buffers)), "the compressor's merged buffers are split again"
    for op in after.subgraphs[0].operators:
        if fb.op_name(after, op) == fmt.CUSTOM_OP_NAME:
            assert all(fb.op_name(after, o) != "TFLM_DECODE" for o in after.subgraphs[0].operators
                       if set(o.outputs) & set(op.inputs)), "HyperTinyPW inputs stay plain constants"
            assert all(fb.buffer_bytes(after, new[i]) for i in op.inputs)


def test_hyper_lut_runs_in_tflm_like_the_hyper_file_and_expands_keeping_decode(tmp_path):
    hyper, lut = _files()
    expected = _run(tmp_path, "hyper", hyper)
    assert np.array_equal(_run(tmp_path, "lut", lut), expected)
    # expand synthesizes the generated filters and leaves DECODE and its tables as they are: the
    # result is the LUT peer's kind of file (folded, stored 1×1 filters LUT-compressed).
    folded = expand.expand(lut)
    assert fmt.CUSTOM_OP_NAME not in _ops(folded) and _ops(folded).count("TFLM_DECODE") == len(STORED_1X1)
    assert np.array_equal(_run(tmp_path, "expanded", folded), expected)
    # Tensor for tensor: the generated filters as expand makes them from the plain file, the stored
    # 1×1 filters still the LUT file's indices.
    plain = expand.expand(hyper)
    got, want_plain, want_lut = fb.read(folded), fb.read(plain), fb.read(lut)
    for name in ("pw1/kernel", "classifier/kernel", "pw2/kernel", "pw3/kernel"):
        source = want_lut if name in STORED_1X1 else want_plain
        want = fb.buffer_bytes(source, source.subgraphs[0].tensors[fb.find_tensor(source.subgraphs[0], name)])
        assert fb.buffer_bytes(got, got.subgraphs[0].tensors[fb.find_tensor(got.subgraphs[0], name)]) == want, name
    expand.check_file_crc(folded)


def test_hyper_lut_with_a_flipped_byte_is_refused(tmp_path):
    _, lut = _files()
    model_t = fb.read(lut)
    index = fb.find_tensor(model_t.subgraphs[0], "pw1/kernel")
    payload = fb.buffer_bytes(model_t, model_t.subgraphs[0].tensors[index])
    offset = lut.index(payload)  # the packed indices of PW1 in the file
    mutant = bytearray(lut)
    mutant[offset] ^= 0x01
    with pytest.raises(ValueError, match=r"file CRC-32 mismatch"):
        expand.expand(bytes(mutant))
    path = tmp_path / "mutant.tflite"
    path.write_bytes(bytes(mutant))
    with pytest.raises(tflm_run.ModelError, match=r"HTPW_ERR_FILE_CRC"):
        tflm_run.run_host(path, _inputs())


def test_lut_report_leaves_a_report_without_paying_filters_unchanged():
    _, _, clustered = _models()
    report = accounting.packed_bytes(clustered)
    # At 7 bits a table of 128 values per channel outweighs 16 or 64 int8 inputs: nothing is compressed.
    assert not any(peers.lut_pays(c_out, c_in, 7) for c_out, c_in in STORED_1X1.values())
    assert peers.lut_report(report, 7).tensors == report.tensors


def test_frontier_resolves_hyperlut_points_after_their_hyper_base():
    from bench import frontier

    names = [p.name for p in frontier.resolve_points("mitdb_aami", ["hyperlut16_hyper_64k", "hyperlut4_hyper_28k"])]
    assert names == ["hyper_64k", "hyperlut16_hyper_64k", "hyper_28k", "hyperlut4_hyper_28k"]
    made = frontier.resolve_points("mitdb_aami", ["hyperlut4_hyper_28k"])[-1]
    assert (made.kind, made.base, made.clusters, made.report_kind) == ("hyperlut", "hyper_28k", 4, "hyper")
    with pytest.raises(ValueError, match=r"unknown point 'hyperlut16_stored_64k'"):
        frontier.resolve_points("mitdb_aami", ["hyperlut16_stored_64k"])


def test_frontier_builds_a_hyperlut_file_from_a_trained_hyper_point(tmp_path):
    """The point builder on a tiny saved hyper model and random data: one clustering epoch, export, LUT."""
    import types

    import tensorflow as tf

    from bench import frontier
    from hyper_tinypw_tf import quantization

    hyper, _, _ = _models()
    base = frontier.Point("hyper_tiny", "hyper")
    point = frontier.Point("hyperlut4_hyper_tiny", frontier.HYPERLUT, base=base.name, clusters=CLUSTERS)
    rows = tf.data.Dataset.from_tensor_slices((_data(32, 5), np.arange(32) % 3)).batch(16)
    info = types.SimpleNamespace(num_classes=3, class_names=("a", "b", "c"))
    ctx = frontier.Context("mitdb_aami", {"train": rows, "val": rows}, info, tmp_path, epochs=1, qat_epochs=0,
                           n_boot=0, metrics=(), log=lambda _: None)
    saved = frontier.folder(base.name, 0, ctx) / "model.keras"
    saved.parent.mkdir(parents=True)
    quantization.save_model(hyper, saved)  # the trained base point, as _train_float leaves it
    output, _ = frontier._model_file(point, 0, ctx, {base.name: base, point.name: point})
    data = output.read_bytes()
    assert _ops(data).count(fmt.CUSTOM_OP_NAME) == 2 and _ops(data).count("TFLM_DECODE") == len(STORED_1X1)
    expand.check_file_crc(data)
    tflm_run.run_host(output, _inputs())  # the setup (synthesis, then DECODE) and one inference run


def test_hyper_lut_runs_on_the_cortex_m4_like_the_hyper_file(tmp_path):
    """Under QEMU (the first run builds TFLM for the Cortex-M4, minutes; then cached)."""
    hyper, lut = _files()
    outputs = {}
    for name, data in (("hyper", hyper), ("lut", lut)):
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(data)
        outputs[name] = tflm_run.run(path, _inputs(), target="cortex-m4").outputs
    assert np.array_equal(outputs["lut"], outputs["hyper"])
    assert np.array_equal(outputs["hyper"], _run(tmp_path, "host", hyper))
