"""The Cortex-M4 runner under QEMU: its instruction counter, and hyper files against folded ones.

For every strategy, int8 and int4, and every mode, the hyper file run through the HyperTinyPW op
on the Cortex-M4 (CMSIS-NN kernels, our core's Cortex-M paths) must give the folded file's
outputs, which must be TFLM's (Python wheel, reference kernels); and every kernel the op makes
on the device must be byte-identical to ``expand``'s.

Cost: the first run builds TFLM + CMSIS-NN for the Cortex-M4 (about 4 minutes on 2 cores; then
cached under ~/.cache/hyper_tinypw_tf); after that each QEMU run of a tiny model takes about
0.3 s and the whole file about 25 s, the six tiny exports included (shared with the other
export tests of the same pytest process).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import numpy as np
import pytest

from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import api, interpreters, slim
from hyper_tinypw_tf.export import format as fmt
from tests.conftest_export import calibration, tiny_exports
from tflm_harness import fit, qemu
from tflm_harness import run as tflm_run

GENERATORS = ("tiled", "tiled_int4", "paper_dense", "paper_dense_int4", "paper_factorized", "paper_factorized_int4")


def test_instruction_counter_matches_a_loop_of_known_length():
    runs = qemu.calibrate()
    assert [c.length for c in runs] == [1000, 100000, 10000000]
    for c in runs:
        # Resolution is one tick; the timer reads around the loop add a call and a few loads.
        assert abs(c.measured - c.instructions) <= qemu.INSTRUCTIONS_PER_TICK + 16, c


@functools.cache
def _inputs(generator: str) -> np.ndarray:
    """Eight calibration windows quantized with the folded model's input quantization."""
    folded, _ = tiny_exports(generator, fmt.MODE_BOOT)
    (scale, zero), _ = interpreters.io_quantization(folded)
    return interpreters.quantize(calibration(), scale, zero)


@functools.cache
def _folded_outputs(generator: str) -> np.ndarray:
    folded, _ = tiny_exports(generator, fmt.MODE_BOOT)
    return qemu.run(folded, _inputs(generator)).outputs


@pytest.mark.parametrize("generator", GENERATORS)
def test_folded_file_on_cortex_m4_gives_tflm_outputs(generator):
    folded, _ = tiny_exports(generator, fmt.MODE_BOOT)
    expected = interpreters.run_int8(folded, _inputs(generator), "tflm")
    np.testing.assert_array_equal(_folded_outputs(generator), expected.reshape(len(expected), -1))


def _expanded_kernels(hyper: bytes) -> dict[str, bytes]:
    """expand's kernel bytes by tensor name."""
    model_t = fb.read(api.expand(hyper))
    return {fb.tensor_name(t): fb.buffer_bytes(model_t, t) for t in model_t.subgraphs[0].tensors}


@pytest.mark.parametrize("mode", fmt.MODES)
@pytest.mark.parametrize("generator", GENERATORS)
def test_hyper_file_on_cortex_m4_matches_folded(generator, mode):
    _, boot = tiny_exports(generator, fmt.MODE_BOOT)
    hyper = fit.with_mode(boot, mode)  # test_fit holds with_mode to the exporter's own bytes
    got = qemu.run(hyper, _inputs(generator), dump_kernels=True)
    np.testing.assert_array_equal(got.outputs, _folded_outputs(generator))
    n_ops = len(fit.hyper_ops(hyper))
    assert got.stats["ops"] == {m: (n_ops if m == mode else 0) for m in fmt.MODES}
    assert got.stats["setup_syntheses"] == (n_ops if mode == fmt.MODE_BOOT else 0)
    tensors = fb.read(hyper).subgraphs[0].tensors
    expanded = _expanded_kernels(hyper)
    assert len(got.kernels) == n_ops
    for index, kernel in got.kernels.items():
        name = fb.tensor_name(tensors[index])
        assert kernel == expanded[name], f"kernel {name!r} made on the Cortex-M4 differs from expand's"


def _corrupt_codes(hyper: bytes) -> bytes:
    """``hyper`` with one byte of the first codes tensor flipped (the op's crc32 no longer matches)."""
    model_t = fb.read(hyper)
    tensor = next(t for t in model_t.subgraphs[0].tensors if fb.tensor_name(t).endswith(fmt.ROLE_CODES))
    raw = bytearray(fb.buffer_bytes(model_t, tensor))
    raw[0] ^= 0x01
    fb.set_buffer(model_t, tensor, bytes(raw))
    return slim.seal(fb.write(model_t))  # a valid file CRC: the op's own CRC is what refuses it


def test_corrupt_hyper_file_is_refused_with_its_status():
    _, hyper = tiny_exports("tiled", fmt.MODE_BOOT)
    with pytest.raises(tflm_run.ModelError, match=r"failed in setup .*: HTPW_ERR_CRC") as raised:
        qemu.run(_corrupt_codes(hyper), name="corrupt.tflite")
    assert raised.value.status == "HTPW_ERR_CRC"


def test_truncated_file_is_refused_before_setup():
    _, hyper = tiny_exports("tiled", fmt.MODE_BOOT)
    message = r"truncated.tflite: the TFLM runner failed in verify: HTPW_ERR_FILE_FORMAT"
    with pytest.raises(tflm_run.ModelError, match=message):
        qemu.run(hyper[: len(hyper) // 2], name="truncated.tflite")


def test_tflm_command_runs_on_cortex_m4(tmp_path):
    folded, hyper = tiny_exports("tiled", fmt.MODE_BOOT)
    model, x_path, y_path = tmp_path / "hyper.tflite", tmp_path / "x.npy", tmp_path / "y.npy"
    model.write_bytes(hyper)
    np.save(x_path, _inputs("tiled"))
    result = subprocess.run(
        [sys.executable, "-m", "hyper_tinypw_tf.app.cli", "tflm", f"--model={model}", "--target=cortex-m4",
         f"--input={x_path}", f"--output={y_path}"], capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads(result.stdout[result.stdout.index("{"):])
    assert stats["target"] == "cortex-m4" and stats["examples"] == len(_inputs("tiled"))
    assert stats["setup_instructions"] > 0 and stats["inference_instructions"] > 0
    assert stats["cached_kernel_bytes"] == sum(o.c_out * o.c_in for o in fit.hyper_ops(hyper))
    outputs = np.load(y_path)
    np.testing.assert_array_equal(outputs.reshape(len(outputs), -1), _folded_outputs("tiled"))


def test_arduino_sketch_runs_under_qemu_as_the_runner_does(tmp_path):
    from tflm_harness.arduino import prepare

    _, hyper = tiny_exports("tiled", fmt.MODE_BOOT)
    model = tmp_path / "hyper.tflite"
    model.write_bytes(hyper)
    folder = prepare.prepare(model, tmp_path)
    sketch = qemu.run_sketch(folder)  # the .ino unchanged, Arduino's Serial/micros() from m4/arduino_shim
    runner = qemu.run(hyper)  # one all-zero example, as the sketch runs
    assert sketch["status"] == "OK"
    assert sketch["outputs_sha256"] == runner.stats["outputs_sha256"]
    assert sketch["arena_used_bytes"] == runner.arena_used_bytes
    assert sketch["cached_kernel_bytes"] == runner.cached_kernel_bytes
    assert sketch["setup_us"] > 0 and sketch["inference_us"] > 0
    with pytest.raises(ValueError, match=r"prepare: .*hyper_tinypw_nano33 exists already"):
        prepare.prepare(model, tmp_path)
