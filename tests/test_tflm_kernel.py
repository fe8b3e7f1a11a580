"""The HyperTinyPW op in TFLM's MicroInterpreter (tflm_harness/kernel) against the folded file.

For every strategy, int8 and int4, and every mode (boot, lazy, stream, and the exporter's budget
mix), the hyper file run through the op gives int8 outputs identical to the folded file run in the
same host runner and in the tflite_micro wheel, and the kernels the op materializes are the bytes
``expand`` writes. Malformed hyper files are refused in Prepare with the core's status name, under
AddressSanitizer and UBSan too. The TFLM library build is cached (tests/test_tflm_build.py).
"""

from __future__ import annotations

import functools
import itertools
import json
import subprocess

import numpy as np
import pytest
from flatbuffers import flexbuffers

from hyper_tinypw_tf import accounting, models
from hyper_tinypw_tf.app.cli import main as cli_main
from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import api, convert, hyper, interpreters
from hyper_tinypw_tf.export import format as fmt
from tests.conftest_export import GENERATORS, TINY, calibration, tiny_exports, tiny_float_model
from tflm_harness import build, run

# (generator key of conftest_export, or a paper config made int4 here) per strategy and bit width.
CASES = {
    ("tiled", 8): "tiled",
    ("tiled", 4): "tiled_int4",
    ("paper_dense", 8): "paper_dense",
    ("paper_dense", 4): "paper_dense_int4",
    ("paper_factorized", 8): "paper_factorized",
    ("paper_factorized", 4): "paper_factorized_int4",
    ("low_rank", 8): "low_rank",
    ("low_rank", 4): "low_rank_int4",
}
MODES = (*fmt.MODES, hyper.BUDGET)


@functools.cache
def _model(key: str):  # noqa: ANN202 - a Keras model
    if key in GENERATORS:
        return tiny_float_model(key)
    base = GENERATORS[key.removesuffix("_int4")]
    generator = {"strategy": base["strategy"], "config": {**base["config"], "code_bits": 4, "weight_bits": 4}}
    return models.build_backbone(TINY, 2, pw="hyper", generator=generator)


@functools.cache
def _folded(key: str) -> bytes:
    if key in GENERATORS:
        return tiny_exports(key)[0]  # shared with the export tests
    return convert.convert_model(_model(key), representative_data=calibration())


def _budget(key: str) -> int:
    """Room for the largest generated kernel only: the tiny models' two layers then split boot/stream."""
    return max(int(g.kernel.size) for g in convert.generated_layers(_model(key)))


@functools.cache
def _hyper(key: str, mode: str) -> bytes:
    """The exporter's hyper file (api.export_model's path, on the folded bytes converted once)."""
    model = _model(key)
    layers = convert.generated_layers(model)
    if mode == hyper.BUDGET:
        return hyper.to_hyper(_folded(key), layers, mode=mode, sram_budget=_budget(key),
                              synthesis_macs=accounting.synthesis_macs_by_layer(model))
    return hyper.to_hyper(_folded(key), layers, mode=mode)


def _examples(n: int = 6) -> np.ndarray:
    return np.random.default_rng(7).integers(-128, 128, size=(n, *TINY.input_shape), dtype=np.int8)


def _write(tmp_path, name: str, data: bytes):  # noqa: ANN202 - a Path
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _op_modes(data: bytes) -> dict[int, str]:
    """Output tensor index → mode option of every HyperTinyPW op in the file."""
    model_t = fb.read(data)
    return {
        int(op.outputs[0]): fmt.decode_options(bytes(op.customOptions)).mode
        for op in model_t.subgraphs[0].operators if fb.op_name(model_t, op) == fmt.CUSTOM_OP_NAME
    }


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("strategy", "bits"), list(CASES))
def test_hyper_file_through_the_op_equals_the_folded_file(tmp_path, strategy: str, bits: int, mode: str) -> None:
    key = _case = CASES[(strategy, bits)]
    folded, data = _folded(key), _hyper(key, mode)
    x = _examples()
    through_op = run.run(_write(tmp_path, "hyper.tflite", data), x, kernels=True)
    folded_run = run.run(_write(tmp_path, "folded.tflite", folded), x)
    wheel = interpreters.run_int8(folded, x, "tflm")
    np.testing.assert_array_equal(through_op.outputs, folded_run.outputs)
    np.testing.assert_array_equal(through_op.outputs, wheel)
    assert through_op.stats["outputs_sha256"] == folded_run.stats["outputs_sha256"], _case

    # The kernels the op materialized are expand's bytes, tensor for tensor.
    expanded = fb.read(api.expand(data))
    tensors = expanded.subgraphs[0].tensors
    modes = _op_modes(data)
    assert sorted(through_op.kernels) == sorted(modes)
    for index, kernel in through_op.kernels.items():
        assert kernel == fb.buffer_bytes(expanded, tensors[index]), fb.tensor_name(tensors[index])

    # What the op kept in the arena, per mode, is what the options asked for.
    sizes = {i: len(k) for i, k in through_op.kernels.items()}
    stats = through_op.stats
    assert stats["ops"] == {m: sum(1 for v in modes.values() if v == m) for m in fmt.MODES}
    cached = sum(sizes[i] for i, m in modes.items() if m != fmt.MODE_STREAM)
    assert stats["cached_kernel_bytes"] == cached
    assert stats["stream_kernel_bytes"] == sum(sizes[i] for i, m in modes.items() if m == fmt.MODE_STREAM)
    n_stream = stats["ops"][fmt.MODE_STREAM]
    assert stats["setup_syntheses"] == stats["ops"][fmt.MODE_BOOT]
    assert stats["syntheses"] == stats["ops"][fmt.MODE_BOOT] + stats["ops"][fmt.MODE_LAZY] + n_stream * len(x)
    assert stats["kernel_changes"] == 0  # every stream re-synthesis wrote the same bytes
    if mode == hyper.BUDGET:
        assert stats["ops"] == {fmt.MODE_BOOT: 1, fmt.MODE_LAZY: 0, fmt.MODE_STREAM: 1}
        assert cached <= _budget(key)


def test_cached_kernel_bytes_are_the_generated_kernels(tmp_path) -> None:
    """boot keeps every generated kernel (16→32 and 32→32 in the tiny model); stream keeps none."""
    x = _examples(1)
    boot = run.run(_write(tmp_path, "b.tflite", _hyper("tiled", fmt.MODE_BOOT)), x).stats
    stream = run.run(_write(tmp_path, "s.tflite", _hyper("tiled", fmt.MODE_STREAM)), x).stats
    assert boot["cached_kernel_bytes"] == 32 * 16 + 32 * 32
    assert stream["cached_kernel_bytes"] == 0
    assert stream["stream_kernel_bytes"] == 32 * 16 + 32 * 32


# --- budget choice (export/hyper.py) ------------------------------------------------------------


def _brute_force(costs: dict[str, tuple[int, int]], budget: int) -> int:
    best = 0
    names = list(costs)
    for r in range(len(names) + 1):
        for chosen in itertools.combinations(names, r):
            if sum(costs[n][0] for n in chosen) <= budget:
                best = max(best, sum(costs[n][1] for n in chosen))
    return best


@pytest.mark.parametrize("seed", range(20))
def test_budget_modes_cache_the_most_synthesis_macs_that_fit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    costs = {f"pw{i}": (int(rng.integers(1, 500)), int(rng.integers(0, 10_000))) for i in range(n)}
    budget = int(rng.integers(0, sum(c[0] for c in costs.values()) + 1))
    modes = hyper.budget_modes(costs, budget)
    cached = [n for n, m in modes.items() if m == fmt.MODE_BOOT]
    assert set(modes.values()) <= {fmt.MODE_BOOT, fmt.MODE_STREAM}
    assert sum(costs[n][0] for n in cached) <= budget
    assert sum(costs[n][1] for n in cached) == _brute_force(costs, budget)


def test_budget_mode_arguments_are_checked() -> None:
    layers = convert.generated_layers(_model("tiled"))
    macs = accounting.synthesis_macs_by_layer(_model("tiled"))
    with pytest.raises(ValueError, match="mode='budget' needs sram_budget"):
        hyper.to_hyper(_folded("tiled"), layers, mode=hyper.BUDGET)
    with pytest.raises(ValueError, match="sram_budget applies to mode='budget' only"):
        hyper.to_hyper(_folded("tiled"), layers, mode=fmt.MODE_BOOT, sram_budget=10)
    with pytest.raises(ValueError, match="sram_budget must be a non-negative integer of bytes, received sram_budget=-"):
        hyper.to_hyper(_folded("tiled"), layers, mode=hyper.BUDGET, sram_budget=-1, synthesis_macs=macs)


def test_budget_of_zero_streams_everything_and_ample_budget_caches_everything() -> None:
    layers = convert.generated_layers(_model("tiled"))
    macs = accounting.synthesis_macs_by_layer(_model("tiled"))
    none = hyper.to_hyper(_folded("tiled"), layers, mode=hyper.BUDGET, sram_budget=0, synthesis_macs=macs)
    every = hyper.to_hyper(_folded("tiled"), layers, mode=hyper.BUDGET, sram_budget=1 << 20, synthesis_macs=macs)
    assert set(_op_modes(none).values()) == {fmt.MODE_STREAM}
    assert set(_op_modes(every).values()) == {fmt.MODE_BOOT}
    assert every == _hyper("tiled", fmt.MODE_BOOT)  # the file is the boot file, byte for byte


# --- malformed hyper files: a status from Prepare, never a crash ---------------------------------


def _rewrite(data: bytes, edit) -> bytes:  # noqa: ANN001 - edit(model_t, op, inputs) mutates in place
    model_t = fb.read(data)
    op = next(o for o in model_t.subgraphs[0].operators if fb.op_name(model_t, o) == fmt.CUSTOM_OP_NAME)
    edit(model_t, op, model_t.subgraphs[0].tensors)
    return hyper.seal(fb.write(model_t))  # a valid file CRC, so the op's own checks are what refuses it


def _options(change):  # noqa: ANN001, ANN202 - change(dict) mutates the decoded options
    def edit(model_t, op, tensors) -> None:  # noqa: ANN001
        options = flexbuffers.Loads(bytes(op.customOptions))
        change(options)
        op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(options)), np.uint8).copy()
    return edit


def _raw_options(raw: bytes):  # noqa: ANN202
    def edit(model_t, op, tensors) -> None:  # noqa: ANN001
        op.customOptions = np.frombuffer(raw, np.uint8).copy()
    return edit


def _buffer(role_index: int, change):  # noqa: ANN001, ANN202 - change(bytes) -> bytes of that input's buffer
    def edit(model_t, op, tensors) -> None:  # noqa: ANN001
        tensor = tensors[op.inputs[role_index]]
        fb.set_buffer(model_t, tensor, change(fb.buffer_bytes(model_t, tensor)))
    return edit


def _tensor(role_index: int, change):  # noqa: ANN001, ANN202 - change(TensorT) mutates that input tensor
    def edit(model_t, op, tensors) -> None:  # noqa: ANN001
        change(tensors[op.inputs[role_index]])
    return edit


def _drop_last_input(model_t, op, tensors) -> None:  # noqa: ANN001
    op.inputs = op.inputs[:-1]


def _set_type(tensor) -> None:  # noqa: ANN001
    tensor.type = fb.schema.TensorType.INT16


def _set_shape(tensor) -> None:  # noqa: ANN001
    tensor.shape = np.array([*tensor.shape[:-1], tensor.shape[-1] + 1], np.int32)


def _flip_first(raw: bytes) -> bytes:
    return bytes([raw[0] ^ 1]) + raw[1:]


MALFORMED = {
    "bad_crc": (_buffer(0, _flip_first), "HTPW_ERR_CRC"),
    "truncated_codes": (_buffer(0, lambda raw: raw[:-1]), "HTPW_ERR_INPUT_BYTES"),
    "truncated_w1": (_buffer(1, lambda raw: raw[:-3]), "HTPW_ERR_INPUT_BYTES"),
    "w1_int16": (_tensor(1, _set_type), "HTPW_ERR_INPUT_TYPE"),
    "codes_shape": (_tensor(0, _set_shape), "HTPW_ERR_INPUT_SHAPE"),
    "input_count": (_drop_last_input, "HTPW_ERR_INPUT_COUNT"),
    "version": (_options(lambda o: o.update(version=99)), "HTPW_ERR_OPTION_VERSION"),
    "unknown_key": (_options(lambda o: o.update(turbo=1)), "HTPW_ERR_OPTION_UNKNOWN"),
    "missing_key": (_options(lambda o: o.pop(fmt.KEY_C_IN)), "HTPW_ERR_OPTION_MISSING"),
    "mode_type": (_options(lambda o: o.update(mode=1)), "HTPW_ERR_OPTION_TYPE"),
    "mode_value": (_options(lambda o: o.update(mode="turbo")), "HTPW_ERR_OPTION_MODE"),
    "code_bits": (_options(lambda o: o.update(code_bits=3)), "HTPW_ERR_OPTION_CODE_BITS"),
    "not_flexbuffer": (_raw_options(b"\x01\x02\x03garbage"), "HTPW_ERR_OPTIONS_FORMAT"),
    "no_options": (_raw_options(b""), "HTPW_ERR_OPTIONS_FORMAT"),
}


@pytest.mark.parametrize("mode", [fmt.MODE_BOOT, fmt.MODE_STREAM])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_hyper_file_fails_in_prepare_with_its_status(tmp_path, case: str, mode: str) -> None:
    """Under ASan + UBSan (our code instrumented): the runner exits 3 naming the status, no memory error."""
    edit, status = MALFORMED[case]
    path = _write(tmp_path, "bad.tflite", _rewrite(_hyper("tiled", mode), edit))
    with pytest.raises(run.ModelError, match=f"failed in setup \\(HyperTinyPW op writing tensor \\d+\\): {status}$"):
        run.run(path, _examples(1), sanitize=True)


def test_malformed_file_in_the_plain_runner_exits_3_with_the_status_json(tmp_path) -> None:
    edit, status = MALFORMED["bad_crc"]
    path = _write(tmp_path, "bad.tflite", _rewrite(_hyper("paper_factorized", fmt.MODE_LAZY), edit))
    np.save(tmp_path / "x.npy", _examples(1))
    proc = subprocess.run([str(build.build_host_runner()), f"--model={path}", f"--input={tmp_path / 'x.npy'}",
                           f"--output={tmp_path / 'y.npy'}"], capture_output=True, text=True, check=False)
    assert proc.returncode == 3
    assert json.loads(proc.stdout)["status"] == status
    assert f"setup failed: {status}" in proc.stderr
    assert not (tmp_path / "y.npy").exists()


def test_runner_refuses_a_file_that_is_no_flatbuffer(tmp_path) -> None:
    path = _write(tmp_path, "bad.tflite", b"TFL3" * 8)
    with pytest.raises(run.ModelError, match="failed in verify: HTPW_ERR_FILE_FORMAT$"):
        run.run(path, _examples(1))


def test_runner_refuses_non_int8_examples(tmp_path) -> None:
    path = _write(tmp_path, "h.tflite", _hyper("tiled", fmt.MODE_BOOT))
    with pytest.raises(ValueError, match="inputs must be int8 .* received dtype=float32"):
        run.run(path, np.zeros((1, *TINY.input_shape), np.float32))
    np.save(tmp_path / "x.npy", np.zeros((2, 3), np.int8))
    proc = subprocess.run([str(build.build_host_runner()), f"--model={path}", f"--input={tmp_path / 'x.npy'}",
                           f"--output={tmp_path / 'y.npy'}"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "examples of 3 bytes, the model takes 256" in proc.stderr
    with pytest.raises(ValueError, match="x.npy: examples of 3 bytes, the model takes 256$"):
        run.run(path, np.zeros((2, 3), np.int8))


# --- the CLI ------------------------------------------------------------------------------------


def test_cli_tflm_prints_the_runner_json_and_writes_outputs(tmp_path, capsys) -> None:
    model = _write(tmp_path, "h.tflite", _hyper("tiled_int4", fmt.MODE_STREAM))
    x = _examples(3)
    np.save(tmp_path / "x.npy", x)
    status = cli_main(["tflm", f"--model={model}", "--target=host", f"--input={tmp_path / 'x.npy'}",
                       f"--output={tmp_path / 'y.npy'}"])
    assert status == 0
    stats = json.loads(capsys.readouterr().out)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), interpreters.run_int8(_folded("tiled_int4"), x))
    assert stats["examples"] == 3 and stats["ops"] == {"boot": 0, "lazy": 0, "stream": 2}


def test_cli_tflm_names_the_status_of_a_malformed_file(tmp_path, capsys) -> None:
    edit, _ = MALFORMED["bad_crc"]
    model = _write(tmp_path, "bad.tflite", _rewrite(_hyper("tiled", fmt.MODE_BOOT), edit))
    assert cli_main(["tflm", f"--model={model}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"hyper-tinypw tflm: error: {model}: the TFLM runner failed in setup")
    assert err[-1].endswith("HTPW_ERR_CRC")


# --- the main job's check (hyper_tinypw_tf.app.pipeline.check_through_op) ----------------------------


def test_main_job_check_runs_the_hyper_file_through_the_op(tmp_path) -> None:
    from hyper_tinypw_tf.app.pipeline import check_through_op

    x = calibration(5, seed=3)
    stats = check_through_op(_write(tmp_path, "h.tflite", _hyper("paper_dense", fmt.MODE_BOOT)),
                             _folded("paper_dense"), x)
    assert stats["examples"] == 5 and stats["ops"][fmt.MODE_BOOT] == 2
    with pytest.raises(RuntimeError, match="examples give outputs other than the folded file's"):
        check_through_op(_write(tmp_path, "h.tflite", _hyper("paper_dense", fmt.MODE_BOOT)), _folded("tiled"),
                         calibration(16, seed=3))


def test_scoring_a_hyper_file_expands_it_and_checks_the_op_first(tmp_path) -> None:
    """``pipeline.op_predict`` (evaluate, the frontier): the expanded file's logits, raising when the file run
    through the op disagrees with the bytes it expands (here: another model's file at that path)."""
    from hyper_tinypw_tf.app import pipeline

    x = calibration(pipeline.OP_CHECK_EXAMPLES + 6, seed=3)
    data = _hyper("paper_dense", fmt.MODE_BOOT)
    logits = pipeline.op_predict(_write(tmp_path, "h.tflite", data), data, x)
    through_op = interpreters.predict(data, x, run=lambda q: run.run(tmp_path / "h.tflite", q).outputs.reshape(
        len(q), -1))
    assert logits.shape == (len(x), through_op.shape[1]) and np.array_equal(logits, through_op)
    with pytest.raises(RuntimeError, match="examples give outputs other than the folded file's"):
        pipeline.op_predict(_write(tmp_path, "other.tflite", _hyper("tiled", fmt.MODE_BOOT)), data, x)


def test_export_budget_prints_the_choice_per_layer(tmp_path) -> None:
    lines: list[str] = []
    path = tmp_path / "b.tflite"
    api.export_files(_model("tiled"), path, fmt="hyper", mode=hyper.BUDGET, sram_budget=_budget("tiled"),
                     representative_data=calibration(), print_fn=lines.append)
    assert path.read_bytes() == _hyper("tiled", hyper.BUDGET)
    table = lines[-1].splitlines()
    modes = _op_modes(path.read_bytes())
    assert sorted(row.split()[-1] for row in table[1:-1]) == sorted(modes.values()) == ["boot", "stream"]
    assert table[-1].startswith(f"cached kernels 1,024 of {_budget('tiled'):,} budget bytes")


@pytest.mark.parametrize(("args", "message"), [
    (["--mode=budget"], "--mode=budget needs --sram_budget=BYTES (SRAM for cached kernels)"),
    (["--mode=budget", "--format=folded", "--sram_budget=100"],
     "--mode=budget needs --format=hyper, received --format=folded"),
    (["--mode=boot", "--sram_budget=100"], "--sram_budget applies to --mode=budget, received --mode=boot"),
])
def test_cli_export_budget_flags_are_checked(tmp_path, capsys, args: list[str], message: str) -> None:
    model = _write(tmp_path, "m.h5", b"not read: the flags fail first")
    assert cli_main(["export", f"--model={model}", f"--out={tmp_path}", *args]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"hyper-tinypw export: error: {message}"
