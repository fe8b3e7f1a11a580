"""Peers (hyper_tinypw_tf.clustering, export.peers): tfmot clustering + TFLM LUT compression, run in TFLM."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging

import numpy as np
import pytest

from hyper_tinypw_tf import clustering, models
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import convert, interpreters, peers

# Wide enough that 4-bit indices plus per-channel tables are smaller than int8 filters.
WIDE = models.Backbone(
    input_shape=(64, 1, 1), stem_channels=16, stem_kernel=(5, 1), stem_strides=(2, 2),
    channels=(64, 128), strides=((2, 2), (2, 2)), dw_kernel=(5, 1),
)


def _calibration(n: int = 8) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(n, 64, 1, 1)).astype(np.float32)


@functools.cache
def _stored_and_clustered(n_clusters: int) -> tuple[keras.Model, keras.Model, bytes]:
    keras.utils.set_random_seed(0)
    stored = models.build_backbone(WIDE, 3, pw="stored")
    clustered = clustering.strip(clustering.cluster_pointwise(stored, n_clusters))
    folded = convert.convert_model(clustered, representative_data=_calibration())
    return stored, clustered, folded


@pytest.mark.parametrize("n_clusters", [16, 8])
def test_clustered_pointwise_kernels_hold_n_values(n_clusters):
    stored, clustered, _ = _stored_and_clustered(n_clusters)
    pointwise = [layer for layer in clustered.layers if clustering.is_pointwise(layer)]
    assert [layer.name for layer in pointwise] == ["pw1", "pw2", "classifier"]
    for layer in pointwise:
        assert len(np.unique(layer.kernel.numpy())) == n_clusters
    original = {layer.name: layer.kernel.numpy() for layer in stored.layers if clustering.is_pointwise(layer)}
    assert all(len(np.unique(kernel)) > n_clusters for kernel in original.values()), "the input model is untouched"


@pytest.mark.parametrize("n_clusters", [16, 8])
def test_lut_file_runs_in_tflm_with_identical_outputs_and_fewer_bytes(n_clusters):
    _, _, folded = _stored_and_clustered(n_clusters)
    bits = peers.bits_for_clusters(n_clusters)
    compressed = peers.lut_compress(folded, bits)
    x = np.random.default_rng(2).integers(-128, 128, size=(6, 64, 1, 1)).astype(np.int8)
    assert np.array_equal(interpreters.run_int8(compressed, x), interpreters.run_int8(folded, x))
    assert len(compressed) < len(folded)
    model_t = fb.read(compressed)
    subgraph = model_t.subgraphs[0]
    shapes = {"pw1/kernel": (64, 16), "pw2/kernel": (128, 64), "classifier/kernel": (3, 128)}
    compressed_names = {name for name, (c_out, c_in) in shapes.items() if peers.lut_pays(c_out, c_in, bits)}
    assert ("pw1/kernel" in compressed_names) == (bits == 3)  # at 4 bits its 64 tables of 16 outweigh the saving
    assert [fb.op_name(model_t, op) for op in subgraph.operators].count("TFLM_DECODE") == len(compressed_names)
    index_bytes = {fb.tensor_name(t): len(fb.buffer_bytes(model_t, t)) for t in subgraph.tensors}
    for name, (c_out, c_in) in shapes.items():
        # A compressed filter holds ``bits``-bit indices, (C_out * C_in * bits) / 8 bytes; the others int8.
        expected = -(-c_out * c_in * bits // 8) if name in compressed_names else c_out * c_in
        assert index_bytes[name] == expected, name


def test_lut_pays_only_past_the_table_cost():
    assert peers.lut_pays(256, 256, 4)  # 32768 index + 4096 table bytes < 65536
    assert not peers.lut_pays(64, 16, 4)  # 512 + 1024 >= 1024
    assert peers.lut_pays(64, 16, 1) and not peers.lut_pays(64, 2, 1)


def test_lut_refuses_unclustered_filters_by_name():
    keras.utils.set_random_seed(0)
    stored = models.build_backbone(WIDE, 3, pw="stored")
    folded = convert.convert_model(stored, representative_data=_calibration())
    with pytest.raises(ValueError, match=r"tensor 'pw2/kernel' has \d+ distinct values .* more than 2\*\*4"):
        peers.lut_compress(folded, 4)


@pytest.mark.parametrize("bits", [0, 8, "4"])
def test_lut_refuses_bad_bits(bits):
    _, _, folded = _stored_and_clustered(16)
    with pytest.raises(ValueError, match=r"bits must be one of"):
        peers.lut_compress(folded, bits)


@pytest.mark.parametrize("n_clusters", [1, 257, 4.0])
def test_cluster_refuses_bad_counts(n_clusters):
    keras.utils.set_random_seed(0)
    with pytest.raises(ValueError, match=r"n_clusters must be an integer in \[2, 256\]"):
        clustering.cluster_pointwise(models.build_backbone(WIDE, 3, pw="stored"), n_clusters)


def test_bits_for_clusters():
    assert [peers.bits_for_clusters(n) for n in (2, 8, 9, 16, 256)] == [1, 3, 4, 4, 8]


@pytest.mark.parametrize("method", ["HuffmanCompression", "PruningCompression"])
def test_huffman_and_pruning_are_stubs_in_the_pinned_wheel(method):
    """The frontier's peers are LUT only because the wheel's Huffman and pruning refuse every tensor.

    If an upgraded tflite-micro implements either, this fails: add it as a peer in export/peers.py.
    """
    from tflite_micro.tensorflow.lite.micro import compression
    from tflite_micro.tensorflow.lite.micro.compression import compressor, spec

    _, _, folded = _stored_and_clustered(16)
    index = peers.pointwise_filters(folded)[-1]
    request = [spec.Tensor(subgraph=0, tensor=index, compression=[getattr(spec, method)()])]
    with pytest.raises(compressor.CompressionError, match="not yet implemented"):
        compression.compress(folded, request)


def _qat_trained(clustered: keras.Model, preserve_clusters: bool) -> keras.Model:
    """A QAT copy of ``clustered`` after a few steps at a rate large enough to move every value."""
    from hyper_tinypw_tf import quantization

    keras.utils.set_random_seed(0)
    qat = quantization.quantize_model(clustered, preserve_clusters=preserve_clusters)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    qat.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
    x, y = _calibration(64), np.random.default_rng(0).integers(0, 3, 64)
    with quantization.cqat_training_log(qat) if preserve_clusters else contextlib.nullcontext():
        qat.fit(x, y, batch_size=16, epochs=2, verbose=0)
    return qat


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_cqat_log_drops_only_the_clustered_kernels_no_gradient_warning():
    """CQAT's kernels get no gradient by design (the centroids train); any other such variable is still reported."""
    from hyper_tinypw_tf import quantization

    _, clustered, _ = _stored_and_clustered(8)
    records, tf_logger = _Records(), logging.getLogger("tensorflow")
    tf_logger.addHandler(records)
    try:
        _qat_trained(clustered, preserve_clusters=True)
        assert not [m for m in records.messages if "Gradients do not exist" in m]
        with quantization.cqat_training_log(quantization.quantize_model(clustered, preserve_clusters=True)):
            for names in (["pw2/kernel:0"], ["pw2/kernel:0", "dw1/depthwise_kernel:0"]):
                tf_logger.warning("Gradients do not exist for variables %s when minimizing the loss.", names)
    finally:
        tf_logger.removeHandler(records)
    assert [m for m in records.messages if "Gradients do not exist" in m] == [
        "Gradients do not exist for variables ['pw2/kernel:0', 'dw1/depthwise_kernel:0'] when minimizing the loss."]


def test_cluster_preserving_qat_keeps_the_clusters_plain_qat_undoes_them(tmp_path):
    """CQAT trains the centroids: after QAT the file still LUT-compresses. Plain QAT moves each value alone."""
    from hyper_tinypw_tf import quantization
    from hyper_tinypw_tf.export import api

    _, clustered, _ = _stored_and_clustered(8)
    with pytest.raises(ValueError, match=r"distinct values in one output channel, more than 2\*\*3"):
        api.export_model(_qat_trained(clustered, preserve_clusters=False), fmt=api.FOLDED, lut_bits=3)

    cqat = _qat_trained(clustered, preserve_clusters=True)
    kernel = cqat.get_layer("quant_pw2").weights[0].numpy()
    # tfmot's CQAT gives a Conv2D's output channels their own centroids: still 8 values per channel.
    assert kernel.shape == (1, 1, 64, 128) and max(len(np.unique(kernel[..., c])) for c in range(128)) == 8
    assert not np.array_equal(kernel, clustered.get_layer("pw2").kernel.numpy()), "QAT trained the centroids"
    # The default-scheme copy (the one tf_keras saves and loads) is the same model.
    plain = quantization.without_cluster_preservation(cqat, clustered)
    quantization.save_model(plain, tmp_path / "cqat.h5")
    with quantization.quantize_scope():
        reloaded = keras.models.load_model(tmp_path / "cqat.h5")
    files = [api.export_model(model, fmt=api.FOLDED, lut_bits=3) for model in (cqat, plain, reloaded)]
    x = np.random.default_rng(2).integers(-128, 128, size=(6, 64, 1, 1)).astype(np.int8)
    outputs = [interpreters.run_int8(data, x) for data in files]
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])
    assert len(files[0]) < len(api.export_model(plain, fmt=api.FOLDED)), "the LUT pays"


def test_without_cluster_preservation_refuses_another_model():
    from hyper_tinypw_tf import quantization

    _, clustered8, _ = _stored_and_clustered(8)
    keras.utils.set_random_seed(0)
    other = models.build_backbone(dataclasses.replace(WIDE, channels=(64,), strides=((2, 2),)), 3, pw="stored")
    cqat = quantization.quantize_model(clustered8, preserve_clusters=True)
    with pytest.raises(ValueError, match=r"without_cluster_preservation: .*pass the clustered model"):
        quantization.without_cluster_preservation(cqat, other)
