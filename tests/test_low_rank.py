"""hyper_tinypw_tf/low_rank.py (with tflm_harness/core/htpw_low_rank.c): a strategy added in one file.

``K = U·V`` per layer, no generator MLP and nothing shared. Covers: training as the generator of a
HyperPWConv2D, its limits, QAT through ``quantization.quantize_model`` then export of the QAT model
(hyper file holding only U, V and the sign bits; ``expand`` gives the folded file back; the byte
report equals the file). The other checks run in the shared parametrizations: ``tests/test_encode.py``
(QAT kernel = integer synthesis), ``test_expand.py`` / ``test_export_hyper.py`` (conftest_export's
``low_rank`` models), ``test_tflm_kernel.py`` (TFLM op = folded file), ``test_c_*.py`` (core_lib). Also its
config round trip and a ``.keras`` save/load.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
import tensorflow as tf

from hyper_tinypw_tf import HyperPWConv2D, accounting, custom_objects, generators, models, quantization, synthesis
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import api
from hyper_tinypw_tf.export import format as fmt
from hyper_tinypw_tf.low_rank import LowRankGenerator, low_rank_accumulators
from tests import core_lib
from tests.conftest_export import TINY, calibration
from tests.model_checks import assert_same_model, perturb


def test_trains_as_the_generator_of_a_layer() -> None:
    keras.utils.set_random_seed(0)
    generator = generators.get({"strategy": LowRankGenerator.strategy, "config": {"rank": 4}})
    layer = HyperPWConv2D(12, generator=generator, use_bias=False)
    layer.build((None, 3, 1, 8))
    assert generator.weights == []  # nothing shared: every number is the layer's own
    assert sorted(w.name.split("/")[-1].split(":")[0] for w in layer.trainable_weights) == ["u", "v"]
    rng = np.random.default_rng(1)
    target = (rng.normal(size=(12, 4)) @ rng.normal(size=(4, 8)) / 4).astype(np.float32)  # reachable: rank 4
    optimizer = keras.optimizers.Adam(0.05)
    losses = []
    for _ in range(300):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((layer.generated_kernel() - target) ** 2)
        optimizer.apply_gradients(zip(tape.gradient(loss, layer.trainable_weights), layer.trainable_weights,
                                      strict=True))
        losses.append(float(loss))
    assert losses[-1] < 0.01 * losses[0]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"rank": 0}, r"rank must be a positive integer, received rank=0"),
    ({"rank": True}, r"rank must be a positive integer, received rank=True"),
    ({"rank": synthesis.MAX_DENSE_TERMS + 1}, r"rank must be at most 65535, received rank=65536"),
    ({"rank": 2, "code_bits": 2}, r"code_bits must be 4 or 8, received code_bits=2"),
])
def test_limits_are_checked_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LowRankGenerator(**kwargs)


def test_declared_tensors_and_macs() -> None:
    generator = LowRankGenerator(rank=3, code_bits=4)
    records = generator.layer_tensors("pw", 10, 6)
    assert [(r.name, r.shape, r.bits, r.role) for r in records] == [
        ("pw/u", (6, 3), 4, "u"), ("pw/v", (3, 10), 8, "v"), ("pw/signs", (6,), 1, "signs"),
    ]
    assert [r.nbytes for r in records] == [9, 30, 1]
    assert generator.shared_tensors() == []
    assert generator.synthesis_macs(10, 6) == 6 * 3 * 10
    assert generator.format_name == fmt.LOW_RANK
    assert generator.input_roles() == fmt.INPUT_ROLES[fmt.LOW_RANK]


def test_qat_model_exports_expands_and_reports_only_its_factors() -> None:
    keras.utils.set_random_seed(0)
    spec = {"strategy": LowRankGenerator.strategy, "config": {"rank": 3, "code_bits": 4}}
    model = models.build_backbone(TINY, 2, pw="hyper", generator=spec)
    qat = quantization.quantize_model(model)
    hyper_layers = [layer.layer for layer in qat.layers if isinstance(getattr(layer, "layer", None), HyperPWConv2D)]
    assert hyper_layers and all(layer.quantize_synthesis for layer in hyper_layers)
    x = calibration(16)
    y = np.arange(16) % 2
    qat.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    before = [w.numpy().copy() for w in hyper_layers[0].trainable_weights]
    qat.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, hyper_layers[0].trainable_weights,
                                                                 strict=True))

    folded = api.export_model(qat, fmt="folded", representative_data=x)
    data = api.export_model(qat, fmt="hyper", representative_data=x)
    assert api.expand(data) == folded
    model_t = fb.read(data)
    subgraph = model_t.subgraphs[0]
    ops = [op for op in subgraph.operators if fb.op_name(model_t, op) == fmt.CUSTOM_OP_NAME]
    names = [[fb.tensor_name(subgraph.tensors[i]) for i in op.inputs] for op in ops]
    layers = [layer.name for layer in hyper_layers]
    assert names == [[f"{name}/u", f"{name}/v", f"{name}/signs"] for name in layers]

    report = api.byte_report(qat, data, fmt="hyper")
    assert report.total == len(data)
    packed = accounting.packed_bytes(qat)
    assert "generator" not in packed.by_component
    c = {layer.name: (layer.in_channels, layer.filters) for layer in hyper_layers}
    assert packed.by_component["codes"] == sum(-(-c_out * 3 * 4 // 8) for _, c_out in c.values())  # U, int4
    assert packed.by_component["heads"] == sum(3 * c_in for c_in, _ in c.values())  # V, int8
    assert packed.by_component["synthesis params"] == sum(-(-c_out // 8) for _, c_out in c.values())  # signs only


def test_config_round_trip_and_keras_save_load(tmp_path) -> None:
    generator = LowRankGenerator(rank=5, weight_bits=4)
    again = generators.deserialize(generators.serialize(generator))
    assert type(again) is LowRankGenerator and again.get_config() == generator.get_config()
    keras.utils.set_random_seed(0)
    model = models.build_backbone(TINY, 2, pw="hyper", generator=generators.serialize(generator))
    perturb(model)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path, custom_objects=custom_objects())
    assert_same_model(model, loaded, calibration(4))
    assert {type(layer.generator) for layer in loaded.layers if isinstance(layer, HyperPWConv2D)} == {LowRankGenerator}


class _Tensor(ctypes.Structure):  # htpw_tensor
    _fields_ = [("data", ctypes.c_void_p), ("bytes", ctypes.c_int32), ("bits", ctypes.c_int32)]


class _Signs(ctypes.Structure):  # htpw_signs
    _fields_ = [("data", ctypes.c_void_p), ("bytes", ctypes.c_int32)]


def test_c_function_matches_numpy_and_checks_its_arguments(tmp_path) -> None:
    """htpw_low_rank_synthesize on its own: the reference's bytes, and one status per bad argument."""
    lib = core_lib.load(core_lib.build(tmp_path / "libhtpw.so", core_lib.CORE_SOURCES,
                                       (*core_lib.STRICT, "-O1", "-shared", "-fPIC")))
    ptr, i32 = ctypes.c_void_p, ctypes.c_int32
    lib.htpw_low_rank_scratch_bytes.argtypes = [i32, i32]
    lib.htpw_low_rank_synthesize.argtypes = [ptr, ptr, i32, ptr, i32, i32, ptr, i32, ptr]
    rng = np.random.default_rng(3)
    c_out, c_in, rank = 11, 13, 5
    u, v = rng.integers(-8, 8, (c_out, rank)), rng.integers(-128, 128, (rank, c_in))
    signs = synthesis.pack_signs(rng.random(c_out) < 0.5)
    expected, _ = synthesis.finish_kernel(low_rank_accumulators(u, v), signs)
    u_raw = ctypes.create_string_buffer(synthesis.pack_int4(u).tobytes())
    v_raw = ctypes.create_string_buffer(v.astype(np.int8).tobytes())
    s_raw = ctypes.create_string_buffer(signs.tobytes())
    u_t, v_t = _Tensor(ctypes.addressof(u_raw), len(u_raw) - 1, 4), _Tensor(ctypes.addressof(v_raw), len(v_raw) - 1, 8)
    s_t = _Signs(ctypes.addressof(s_raw), len(s_raw) - 1)
    needed = lib.htpw_low_rank_scratch_bytes(rank, c_in)
    assert needed == 68 + 8 + 4 * c_in  # V transposed (65 bytes), U's row (5), each padded to 4; one int32 row
    scratch = (ctypes.c_int32 * (needed // 4 + 1))()
    kernel = np.zeros((c_out, c_in), np.int8)

    def run(u_arg=u_t, v_arg=v_t, rank_arg=rank, s_arg=s_t, c_out_arg=c_out, scratch_arg=None,
            scratch_bytes=needed) -> str:
        kernel[:] = 0
        return core_lib.status_name(lib, lib.htpw_low_rank_synthesize(
            ctypes.byref(u_arg), ctypes.byref(v_arg), rank_arg, ctypes.byref(s_arg), c_out_arg, c_in,
            ctypes.addressof(scratch) if scratch_arg is None else scratch_arg, scratch_bytes, kernel.ctypes.data))

    assert run() == "HTPW_OK"
    np.testing.assert_array_equal(kernel, expected)
    assert run(scratch_bytes=needed - 1) == "HTPW_ERR_SCRATCH"
    assert run(scratch_arg=ctypes.addressof(scratch) + 1) == "HTPW_ERR_ALIGN"
    assert run(u_arg=_Tensor(u_t.data, u_t.bytes - 1, 4)) == "HTPW_ERR_INPUT_BYTES"
    assert run(v_arg=_Tensor(v_t.data, v_t.bytes - 1, 8)) == "HTPW_ERR_INPUT_BYTES"
    assert run(s_arg=_Signs(s_t.data, 1)) == "HTPW_ERR_INPUT_BYTES"  # 11 channels need 2 sign bytes
    assert run(u_arg=_Tensor(u_t.data, u_t.bytes, 2)) == "HTPW_ERR_BITS"
    assert run(rank_arg=0) == "HTPW_ERR_DIMENSION"
    assert run(c_out_arg=0) == "HTPW_ERR_DIMENSION"
    assert run(u_arg=_Tensor(None, u_t.bytes, 4)) == "HTPW_ERR_NULL"
