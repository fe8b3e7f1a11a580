"""Hyper export: filters become HyperTinyPW outputs, shared tensors once, accounting equals the file."""

from __future__ import annotations

import numpy as np
import pytest

from hyper_tinypw_tf import accounting
from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import api, convert, hyper, interpreters, slim
from hyper_tinypw_tf.export import format as fmt
from tests.conftest_export import GENERATORS, calibration, large_exports, tiny_exports, tiny_float_model


def _customs(data: bytes):
    model_t = fb.read(data)
    subgraph = model_t.subgraphs[0]
    ops = [op for op in subgraph.operators if fb.op_name(model_t, op) == fmt.CUSTOM_OP_NAME]
    return model_t, subgraph, ops


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_each_generated_filter_is_a_custom_op_output(generator: str) -> None:
    _, data = tiny_exports(generator)
    model_t, subgraph, ops = _customs(data)
    gens = convert.generated_layers(tiny_float_model(generator))
    declared = {record.name: record.role for gen in gens for record in (*gen.shared_tensors, *gen.layer_tensors)}
    assert [fb.tensor_name(subgraph.tensors[op.outputs[0]]) for op in ops] == ["pw2/kernel", "pw3/kernel"]
    for op in ops:
        options = fmt.decode_options(np.asarray(op.customOptions, np.uint8).tobytes())
        roles = [declared[fb.tensor_name(subgraph.tensors[i])] for i in op.inputs]
        assert roles == list(fmt.INPUT_ROLES[options.strategy])
        out = subgraph.tensors[op.outputs[0]]
        assert fb.buffer_bytes(model_t, out) == b""
        assert len(out.quantization.scale) == options.c_out
        consumer = next(o for o in subgraph.operators if op.outputs[0] in list(o.inputs))
        assert fb.op_name(model_t, consumer) == "CONV_2D"
        assert subgraph.operators.index(op) < subgraph.operators.index(consumer)


def test_shared_generator_tensors_are_stored_once() -> None:
    _, data = tiny_exports("tiled")
    _, subgraph, ops = _customs(data)
    first, second = ([int(i) for i in op.inputs] for op in ops)
    assert first[1:4] == second[1:4]  # w1, b1, w2: one tensor each
    assert first[0] != second[0] and first[4:] != second[4:]  # codes, requant, signs: per layer
    names = [fb.tensor_name(t) for t in subgraph.tensors]
    assert sum(n.endswith("/w1") for n in names) == 1


def test_int4_tensors_are_packed() -> None:
    _, data = tiny_exports("tiled_int4")
    model_t, subgraph, ops = _customs(data)
    codes = subgraph.tensors[ops[0].inputs[0]]
    assert codes.type == fb.schema.TensorType.INT4
    count = int(np.prod(codes.shape))
    assert len(fb.buffer_bytes(model_t, codes)) == (count + 1) // 2


@pytest.mark.parametrize("mode", fmt.MODES)
def test_mode_is_written_into_every_op(mode: str) -> None:
    _, data = tiny_exports("tiled", mode)
    _, _, ops = _customs(data)
    assert {fmt.decode_options(np.asarray(op.customOptions, np.uint8).tobytes()).mode for op in ops} == {mode}


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_accounting_total_equals_file_size(generator: str) -> None:
    _, data = tiny_exports(generator)
    report = api.byte_report(tiny_float_model(generator), data, fmt="hyper")
    assert report.total == len(data)
    assert report.report.total + report.overhead == len(data)
    assert report.rows()[-2][0] == "flatbuffer overhead"
    assert report.rows()[-1] == ("total", "", len(data))


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_every_counted_tensor_matches_its_buffer(generator: str) -> None:
    _, data = tiny_exports(generator)
    model_t = fb.read(data)
    subgraph = model_t.subgraphs[0]
    report = accounting.packed_bytes(tiny_float_model(generator))
    checked = 0
    for record in report.tensors:
        layer, _, part = record.name.rpartition("/")
        if part == "scale":
            tensor = subgraph.tensors[fb.find_tensor(subgraph, f"{layer}/kernel")]
            assert record.nbytes == 4 * len(tensor.quantization.scale), record.name
        else:
            tensor = subgraph.tensors[fb.find_tensor(subgraph, record.name)]
            # bits × count, rounded up to whole bytes: the formula spelled out once more
            assert len(fb.buffer_bytes(model_t, tensor)) == -(-int(np.prod(record.shape)) * record.bits // 8)
        checked += 1
    assert checked == len(report.tensors)


def test_folded_file_rejected_when_kernel_differs() -> None:
    folded, _ = tiny_exports("tiled")
    layers = convert.generated_layers(tiny_float_model("paper_dense"))
    with pytest.raises(ValueError, match="not the synthesized kernel of layer 'pw2'"):
        hyper.to_hyper(folded, layers)


def test_large_preset_hyper_is_at_least_6_31x_smaller() -> None:
    model, folded, data = large_exports()
    assert len(folded) / len(data) >= 6.31
    assert api.byte_report(model, data, fmt="hyper").total == len(data)
    assert api.byte_report(model, folded, fmt="folded").total == len(folded)


def test_hyper_file_keeps_one_zero_point_per_channel_tensor() -> None:
    _, data = tiny_exports("tiled")
    per_channel = [t for t in fb.read(data).subgraphs[0].tensors
                   if t.quantization is not None and t.quantization.scale is not None and len(t.quantization.scale) > 1]
    assert per_channel and all(len(t.quantization.zeroPoint) == 1 for t in per_channel)


def test_tflm_runs_slimmed_zero_points_identically() -> None:
    # The slimming TFLM must accept in hyper files, applied to a folded file TFLM can run.
    folded, _ = tiny_exports("tiled")
    model_t = fb.read(folded)
    hyper.slim_zero_points(model_t)
    slimmed = slim.sealed(model_t)  # a rewritten file gets its file CRC again, or the interpreters refuse it
    assert len(slimmed) < len(folded)
    (scale, zero), _ = interpreters.io_quantization(folded)
    x = interpreters.quantize(calibration(6, seed=3), scale, zero)
    np.testing.assert_array_equal(interpreters.run_int8(slimmed, x, "tflm"), interpreters.run_int8(folded, x, "tflm"))


def test_restore_zero_points_undoes_slimming() -> None:
    folded, _ = tiny_exports("tiled")
    model_t = fb.read(folded)
    hyper.slim_zero_points(model_t)
    hyper.restore_zero_points(model_t)
    assert fb.write(model_t) == fb.write(fb.read(folded))
