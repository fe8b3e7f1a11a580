"""Folded export: exact generated filters, integer parity LiteRT vs TFLM, accuracy vs the QAT model."""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import api, convert, interpreters, slim
from tests.conftest_export import (
    calibration,
    requires_mitdb,
    tiny_exports,
    tiny_float_model,
    trained_qat,
)

pytestmark = requires_mitdb


def _macro_f1(y: np.ndarray, p: np.ndarray) -> float:
    scores = []
    for c in (0, 1):
        tp = np.sum((p == c) & (y == c))
        denom = np.sum(p == c) + np.sum(y == c)
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


def _up_to_classifier(model: bytes) -> bytes:
    """The model cut after its last MEAN (global pooling): every conv, generated ones included."""
    model_t = fb.read(model)
    subgraph = model_t.subgraphs[0]
    last = max(i for i, op in enumerate(subgraph.operators) if fb.op_name(model_t, op) == "MEAN")
    subgraph.operators = subgraph.operators[: last + 1]
    subgraph.outputs = np.array([subgraph.operators[-1].outputs[0]], np.int32)
    model_t.signatureDefs = []
    return slim.sealed(model_t)  # a rewritten file gets its file CRC again, or the interpreters refuse it


def _run_both(model: bytes, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 outputs of LiteRT (reference kernels) and of the TFLM interpreter for every example."""
    (scale, zero), _ = interpreters.io_quantization(model)
    q = interpreters.quantize(x, scale, zero)
    return interpreters.run_int8(model, q, "litert"), interpreters.run_int8(model, q, "tflm")


@pytest.fixture(scope="module")
def trained():
    return trained_qat()


@pytest.fixture(scope="module")
def outputs(trained):
    return _run_both(trained.folded, trained.val_x)


def test_int8_input_and_output(trained) -> None:
    litert = Interpreter(model_content=trained.folded)
    assert litert.get_input_details()[0]["dtype"] == np.int8
    assert litert.get_output_details()[0]["dtype"] == np.int8


def test_litert_and_tflm_agree_up_to_the_classifier_on_every_validation_example(trained) -> None:
    litert, micro = _run_both(_up_to_classifier(trained.folded), trained.val_x)
    assert litert.dtype == micro.dtype == np.int8
    np.testing.assert_array_equal(litert, micro)


def test_litert_and_tflm_agree_on_every_validation_example(outputs) -> None:
    litert, micro = outputs
    np.testing.assert_array_equal(litert, micro)


def test_accuracy_and_macro_f1_match_qat_model(trained, outputs) -> None:
    y = trained.val_y
    keras_pred = trained.qat.predict(trained.val_x, batch_size=256, verbose=0).argmax(1)
    tflite_pred = outputs[0].argmax(1)
    assert abs(np.mean(keras_pred == y) - np.mean(tflite_pred == y)) <= 0.005
    assert abs(_macro_f1(y, keras_pred) - _macro_f1(y, tflite_pred)) <= 0.005


def test_generated_filters_are_synthesized_bytes(trained) -> None:
    model_t = fb.read(trained.folded)
    subgraph = model_t.subgraphs[0]
    layers = convert.generated_layers(trained.qat)
    assert [g.name for g in layers] == ["pw2", "pw3"]
    for gen in layers:
        filt = subgraph.tensors[fb.find_tensor(subgraph, f"{gen.name}/kernel")]
        assert fb.buffer_bytes(model_t, filt) == gen.kernel.astype(np.int8).tobytes()
        np.testing.assert_array_equal(np.asarray(filt.quantization.scale, np.float32), gen.scales)
        assert list(filt.quantization.zeroPoint) == [0] * gen.layer.c_out


def test_two_exports_are_byte_identical(trained) -> None:
    assert api.export_model(trained.qat, fmt="folded") == trained.folded


def test_float_model_with_calibration_converts_deterministically() -> None:
    folded, _ = tiny_exports()
    again = convert.convert_model(tiny_float_model(), representative_data=calibration())
    assert again == folded


def test_folded_accounting_matches_file(trained) -> None:
    report = api.byte_report(trained.qat, trained.folded, fmt="folded")
    assert report.total == len(trained.folded)
    assert report.rows()[-2][0] == "flatbuffer overhead"
    model_t = fb.read(trained.folded)
    subgraph = model_t.subgraphs[0]
    for entry in report.tensors:
        tensor = subgraph.tensors[fb.find_tensor(subgraph, entry.file_tensor)]
        if entry.record.name.endswith("/scale"):
            assert entry.record.nbytes == 4 * len(tensor.quantization.scale)
        else:
            assert entry.record.nbytes == len(fb.buffer_bytes(model_t, tensor))
