"""Fair files: stored (folded) files carry the same slim metadata as hyper files (export/slim.py)."""

from __future__ import annotations

import numpy as np

from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import api, interpreters
from tests.conftest_export import calibration, tiny_exports, tiny_float_model


def _per_channel(model_t: fb.schema.ModelT) -> list[fb.schema.TensorT]:
    return [t for t in model_t.subgraphs[0].tensors
            if t.quantization is not None and t.quantization.scale is not None and len(t.quantization.scale) > 1]


def test_only_stored_tensor_and_graph_io_names_remain() -> None:
    folded, data = tiny_exports("tiled")
    for blob in (folded, data):
        subgraph = fb.read(blob).subgraphs[0]
        io = {int(i) for i in [*subgraph.inputs, *subgraph.outputs]}
        names = [fb.tensor_name(t) for i, t in enumerate(subgraph.tensors) if i not in io and fb.tensor_name(t)]
        # Stored-tensor names are "<layer>/<part>"; no activation name, none carrying the Keras model's name.
        assert names and all(n.count("/") == 1 and "separable_cnn" not in n for n in names), names
    folded_names = {fb.tensor_name(t) for t in fb.read(folded).subgraphs[0].tensors}
    assert {"stem/kernel", "stem/bias", "pw2/kernel", "classifier/bias"} <= folded_names


def test_unnamed_tensors_run_alike_in_litert_and_tflm() -> None:
    folded, _ = tiny_exports("tiled")
    (scale, zero), _ = interpreters.io_quantization(folded)
    x = interpreters.quantize(calibration(4, seed=5), scale, zero)
    np.testing.assert_array_equal(interpreters.run_int8(folded, x, "tflm"), interpreters.run_int8(folded, x, "litert"))


def test_folded_file_slimmed_like_hyper_files_runs_identically_in_tflm() -> None:
    folded, data = tiny_exports("tiled")
    slim = api.export_model(tiny_float_model("tiled"), fmt="folded", representative_data=calibration(),
                            slim_zero_points=True)
    assert all(len(t.quantization.zeroPoint) == 1 for t in _per_channel(fb.read(slim)))
    assert all(len(t.quantization.zeroPoint) == 1 for t in _per_channel(fb.read(data)))
    fat = _per_channel(fb.read(folded))
    assert fat and all(len(t.quantization.zeroPoint) == len(t.quantization.scale) for t in fat)
    assert len(slim) < len(folded)
    (scale, zero), _ = interpreters.io_quantization(folded)
    x = interpreters.quantize(calibration(6, seed=3), scale, zero)
    np.testing.assert_array_equal(interpreters.run_int8(slim, x, "tflm"), interpreters.run_int8(folded, x, "tflm"))
