"""Bad input gets an error naming the op, tensor or option; no command leaves a partial file."""

from __future__ import annotations

import numpy as np
import pytest
from flatbuffers import flexbuffers

from hyper_tinypw_tf import atomic, models
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import api, c_array, convert, hyper
from hyper_tinypw_tf.export import format as fmt
from tests.conftest_export import TINY, calibration, tiny_exports, tiny_float_model


def _mutate(data: bytes, change, reseal: bool = True) -> bytes:
    """Apply ``change(model_t, subgraph, first_custom_op)`` to a hyper file.

    ``reseal`` rewrites the file CRC, as a careless tool would, so the checks behind it are reached.
    """
    model_t = fb.read(data)
    subgraph = model_t.subgraphs[0]
    op = next(o for o in subgraph.operators if fb.op_name(model_t, o) == fmt.CUSTOM_OP_NAME)
    change(model_t, subgraph, op)
    out = fb.write(model_t)
    return hyper.seal(out) if reseal else out


def _hyper() -> bytes:
    return tiny_exports("tiled")[1]


# ---- convert -------------------------------------------------------------------------------


def test_unsupported_layer_is_named() -> None:
    inputs = keras.Input((16, 4))
    x = keras.layers.LSTM(4, name="memory")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    with pytest.raises(ValueError, match="layer 'memory' of type LSTM is not supported"):
        convert.convert_model(model, representative_data=np.zeros((2, 16, 4), np.float32))


def test_float_model_without_calibration_is_refused() -> None:
    model = models.build_backbone(TINY, 2, pw="hyper")
    with pytest.raises(ValueError, match="is a float model, and full-integer conversion needs calibration"):
        convert.convert_model(model)


def test_calibration_of_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match=r"representative_data must have shape \(N, 256, 1, 1\)"):
        convert.convert_model(tiny_float_model(), representative_data=np.zeros((4, 128, 1, 1), np.float32))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"fmt": "onnx"}, "fmt must be one of"),
    ({"fmt": "hyper", "mode": "eager"}, "mode must be one of"),
])
def test_bad_export_options(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        api.export_model(tiny_float_model(), representative_data=calibration(), **kwargs)


def test_hyper_export_of_model_without_generated_layers() -> None:
    model = models.build_backbone(TINY, 2, pw="stored")
    with pytest.raises(ValueError, match="has no HyperPWConv2D layer"):
        api.export_model(model, fmt="hyper", representative_data=calibration(2))


# ---- expand: malformed hyper files -----------------------------------------------------------


def test_not_a_tflite_file() -> None:
    with pytest.raises(ValueError, match="not a .tflite flatbuffer"):
        api.expand(b"hello, world")


def test_folded_file_is_not_a_hyper_file() -> None:
    with pytest.raises(ValueError, match="has no HyperTinyPW op"):
        api.expand(tiny_exports("tiled")[0])


def test_missing_custom_options() -> None:
    def drop(model_t, subgraph, op):
        op.customOptions = None

    message = r"HyperTinyPW op #0 \(output 'pw2/kernel'\): HyperTinyPW: custom options are missing"
    with pytest.raises(ValueError, match=message):
        api.expand(_mutate(_hyper(), drop))


def test_corrupt_custom_options() -> None:
    def corrupt(model_t, subgraph, op):
        op.customOptions = np.asarray(op.customOptions, np.uint8)[:-5]

    with pytest.raises(ValueError, match=r"op #0 \(output 'pw2/kernel'\).*not a valid flexbuffer map"):
        api.expand(_mutate(_hyper(), corrupt))


def test_unknown_format_version() -> None:
    def bump(model_t, subgraph, op):
        options = fmt.decode_options(np.asarray(op.customOptions, np.uint8).tobytes())
        values = dict(flexbuffers.Loads(fmt.encode_options(options)), version=7)
        op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(values)), np.uint8)

    with pytest.raises(ValueError, match="option 'version': expected format version 2, received version=7"):
        api.expand(_mutate(_hyper(), bump))


def test_wrong_input_type() -> None:
    def retype(model_t, subgraph, op):
        subgraph.tensors[op.inputs[0]].type = fb.schema.TensorType.INT32

    with pytest.raises(ValueError, match="input 'codes' \\(tensor 'pw2/codes'\\): expected type INT8, received INT32"):
        api.expand(_mutate(_hyper(), retype))


def test_wrong_input_shape() -> None:
    def reshape(model_t, subgraph, op):
        subgraph.tensors[op.inputs[1]].shape = np.array([2, 32], np.int32)

    message = r"input 'w1' \(tensor '.*/w1'\): expected shape \[4, 16\], received \[2, 32\]"
    with pytest.raises(ValueError, match=message):
        api.expand(_mutate(_hyper(), reshape))


def test_truncated_input_buffer() -> None:
    def truncate(model_t, subgraph, op):
        buffer = model_t.buffers[subgraph.tensors[op.inputs[3]].buffer]
        buffer.data = np.asarray(buffer.data)[:-3]

    with pytest.raises(ValueError, match="input 'w2' .*holds 1021 bytes, expected 1024"):
        api.expand(_mutate(_hyper(), truncate))


def test_wrong_input_count() -> None:
    def drop_input(model_t, subgraph, op):
        op.inputs = np.asarray(op.inputs)[:-1]

    with pytest.raises(ValueError, match="expected 6 inputs"):
        api.expand(_mutate(_hyper(), drop_input))


def test_bad_requant() -> None:
    def zero(model_t, subgraph, op):
        model_t.buffers[subgraph.tensors[op.inputs[4]].buffer].data = np.zeros(8, np.uint8)

    with pytest.raises(ValueError, match="input 'requant' must hold a multiplier in"):
        api.expand(_mutate(_hyper(), zero))


def test_wrong_output_shape() -> None:
    def reshape(model_t, subgraph, op):
        subgraph.tensors[op.outputs[0]].shape = np.array([32, 1, 1, 8], np.int32)

    with pytest.raises(ValueError, match=r"output must be INT8 \[32, 1, 1, 16\]"):
        api.expand(_mutate(_hyper(), reshape))


def test_changed_file_without_new_crc_is_refused() -> None:
    def retype(model_t, subgraph, op):
        subgraph.tensors[op.inputs[0]].type = fb.schema.TensorType.INT32

    with pytest.raises(ValueError, match=r"hyper model: file CRC-32 mismatch: metadata 'hyper_tinypw_crc32' says 0x"):
        api.expand(_mutate(_hyper(), retype, reseal=False))


def test_missing_file_crc_is_refused() -> None:
    def drop(model_t, subgraph, op):
        model_t.metadata = [m for m in model_t.metadata if fb.metadata_name(m) != fmt.METADATA_CRC32]

    with pytest.raises(ValueError, match="hyper model: no 'hyper_tinypw_crc32' metadata"):
        api.expand(_mutate(_hyper(), drop, reseal=False))


def test_flipped_input_byte_fails_the_op_crc() -> None:
    def flip(model_t, subgraph, op):
        buffer = model_t.buffers[subgraph.tensors[op.inputs[3]].buffer]
        buffer.data = np.asarray(buffer.data).copy()
        buffer.data[17] ^= 0x10

    message = r"HyperTinyPW op #0 \(output 'pw2/kernel'\): CRC-32 mismatch: option 'crc32' says 0x[0-9a-f]{8}"
    with pytest.raises(ValueError, match=message):
        api.expand(_mutate(_hyper(), flip))


def test_seal_is_idempotent_and_expand_accepts_it() -> None:
    folded, data = tiny_exports("tiled")
    assert hyper.seal(data) == data
    assert api.expand(hyper.seal(data)) == folded


def test_bad_opcode_index_is_named() -> None:
    def bad(model_t, subgraph, op):
        subgraph.operators[0].opcodeIndex = 99

    with pytest.raises(ValueError, match=r"hyper model: operator 0: opcode index 99 is out of range \(the file has"):
        api.expand(_mutate(_hyper(), bad))


@pytest.mark.parametrize("index", [400, 2**32 - 1])
def test_bad_buffer_index_is_named(index: int) -> None:
    def bad(model_t, subgraph, op):
        subgraph.tensors[op.inputs[0]].buffer = index

    with pytest.raises(ValueError, match=rf"tensor \d+ \('pw2/codes'\): buffer index {index} is out of range"):
        api.expand(_mutate(_hyper(), bad))


def test_bad_op_input_index_is_named() -> None:
    def bad(model_t, subgraph, op):
        op.inputs = np.array([500, *op.inputs[1:]], np.int32)

    with pytest.raises(ValueError, match=r"operator \d+: input tensor index 500 is out of range"):
        api.expand(_mutate(_hyper(), bad))


# ---- files -------------------------------------------------------------------------------------


def test_failed_export_leaves_no_file(tmp_path) -> None:
    out = tmp_path / "model.tflite"
    with pytest.raises(ValueError, match="needs calibration"):
        api.export_files(models.build_backbone(TINY, 2, pw="hyper"), out, fmt="hyper", c_array_name="model_data")
    assert list(tmp_path.iterdir()) == []


def test_bad_c_array_name_writes_nothing(tmp_path) -> None:
    with pytest.raises(ValueError, match="name must be a C identifier, received name='1bad'"):
        api.export_files(tiny_float_model(), tmp_path / "m.tflite", fmt="folded",
                         representative_data=calibration(), c_array_name="1bad")
    assert list(tmp_path.iterdir()) == []


def test_failed_expand_leaves_no_file(tmp_path) -> None:
    (tmp_path / "bad.tflite").write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"not a \.tflite flatbuffer \(file identifier b'a mo', expected b'TFL3'\)"):
        api.expand_file(tmp_path / "bad.tflite", tmp_path / "out.tflite")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tflite"]


def test_write_atomic_keeps_old_file_when_writing_fails(tmp_path) -> None:
    target = tmp_path / "m.tflite"
    target.write_bytes(b"old")

    with pytest.raises(TypeError, match="a bytes-like object is required"):
        atomic.write_all({target: b"new", tmp_path / "second.h": object()})  # type: ignore[dict-item]
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite"]


def test_export_files_writes_model_c_array_and_prints_table(tmp_path) -> None:
    lines: list[str] = []
    report = api.export_files(tiny_float_model(), tmp_path / "m.tflite", fmt="hyper",
                              representative_data=calibration(), c_array_name="model_data", print_fn=lines.append)
    data = (tmp_path / "m.tflite").read_bytes()
    assert data == tiny_exports("tiled")[1]
    assert report.total == len(data)
    assert "flatbuffer overhead" in lines[0]
    source = (tmp_path / "model_data.cc").read_text()
    assert "alignas(16) const unsigned char model_data[]" in source
    assert f"const unsigned int model_data_len = {len(data)};" in source
    assert c_array.parse_c_array(source) == data
    assert "extern const unsigned char model_data[];" in (tmp_path / "model_data.h").read_text()


def test_branching_model_is_refused_naming_the_layer() -> None:
    from hyper_tinypw_tf import HyperPWConv2D

    inputs = keras.Input((16, 1, 8))
    a = keras.layers.Conv2D(8, (3, 1), padding="same", name="left")(inputs)
    b = HyperPWConv2D(8, name="right")(inputs)
    x = keras.layers.Add(name="join")([a, b])
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    with pytest.raises(ValueError, match="branches"):
        api.export_model(model, fmt="folded", representative_data=np.zeros((2, 16, 1, 8), np.float32))
