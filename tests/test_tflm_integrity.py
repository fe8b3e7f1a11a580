"""The runners refuse a corrupted model (issue 18) and run LUT-compressed files through DECODE (issue 16).

Byte flips: 100 seeded random single-byte flips of the trained hyper file of
``conftest_export.trained_qat`` and 100 of its folded file (which carries the same file CRC-32),
each through the host runner (``tflm_harness.run``, the ``hyper-tinypw tflm --target=host`` path)
AND through the Cortex-M4 runner, all 200 of them in one QEMU boot (``qemu.run_flips``: the
firmware flips, runs and restores each byte in turn). Every flip must be refused with a status or
give the unflipped file's outputs: zero aborts, zero silent differences.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from hyper_tinypw_tf.app import cli
from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import format as fmt
from hyper_tinypw_tf.export import interpreters, peers, slim
from tests.conftest_export import trained_qat
from tests.test_peers import _stored_and_clustered
from tflm_harness import fit, qemu
from tflm_harness import run as tflm_run

FLIPS = 100
SEED = 18


@functools.cache
def _trained() -> tuple[bytes, bytes, np.ndarray]:
    """(folded, hyper, 8 int8 validation windows) of the briefly trained tiny model."""
    trained = trained_qat()
    (scale, zero), _ = interpreters.io_quantization(trained.folded)
    return trained.folded, trained.hyper, interpreters.quantize(trained.val_x[:8], scale, zero)


def _flips(data: bytes, seed: int) -> list[tuple[int, int]]:
    """``FLIPS`` distinct (offset, xor) pairs: uniform offsets, a random non-zero change each."""
    rng = np.random.default_rng(seed)
    offsets = rng.choice(len(data), FLIPS, replace=False)
    return [(int(o), int(rng.integers(1, 256))) for o in offsets]


def _flipped(data: bytes, offset: int, mask: int) -> bytes:
    mutant = bytearray(data)
    mutant[offset] ^= mask
    return bytes(mutant)


@pytest.mark.parametrize("kind", ["hyper", "folded"])
def test_byte_flips_through_the_host_runner_are_refused_or_harmless(tmp_path, kind):
    folded, hyper, x = _trained()
    data = hyper if kind == "hyper" else folded
    assert fb.metadata_span(data, fmt.METADATA_CRC32) is not None
    path = tmp_path / "model.tflite"
    path.write_bytes(data)
    expected = tflm_run.run(path, x).outputs
    refused, identical = {}, 0
    for offset, mask in _flips(data, SEED):
        path.write_bytes(_flipped(data, offset, mask))
        try:
            got = tflm_run.run(path, x).outputs  # an abort would raise RuntimeError here and fail the test
        except tflm_run.ModelError as error:
            refused[error.status] = refused.get(error.status, 0) + 1
            continue
        assert np.array_equal(got, expected), f"byte {offset} ^ {mask:#04x}: different outputs, exit 0"
        identical += 1
    assert sum(refused.values()) + identical == FLIPS
    assert refused.get("HTPW_ERR_FILE_CRC", 0) >= FLIPS * 9 // 10, refused  # the CRC catches nearly all


def test_byte_flips_on_the_cortex_m4_in_one_boot_are_refused_or_harmless():
    folded, hyper, x = _trained()
    for data, seed in ((hyper, SEED), (folded, SEED)):
        expected = qemu.run(data, x).stats["outputs_sha256"]
        results = qemu.run_flips(data, x, _flips(data, seed), timeout=300)
        assert [r.offset for r in results] == [o for o, _ in _flips(data, seed)]
        for r in results:
            assert r.status != "OK" or r.outputs_sha256 == expected, f"byte {r.offset}: different outputs"
        refused = [r for r in results if r.status != "OK"]
        assert all(r.status.startswith(("HTPW_ERR_", "MODEL_")) for r in refused), {r.status for r in refused}
        assert len(refused) >= FLIPS * 9 // 10


def test_a_corrupted_file_is_one_cli_line_with_exit_2(tmp_path, capsys):
    _, hyper, _ = _trained()
    offset = len(hyper) // 3
    for target in ("host", "cortex-m4"):
        path = tmp_path / f"bad_{target}.tflite"
        path.write_bytes(_flipped(hyper, offset, 0x40))
        assert cli.main(["tflm", f"--model={path}", f"--target={target}"]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("hyper-tinypw tflm: error: ") and lines[0].endswith(
            "the TFLM runner failed in verify: HTPW_ERR_FILE_CRC"), lines[0]


@functools.cache
def _lut_file() -> tuple[bytes, np.ndarray]:
    """A small LUT-compressed file (tfmot clustering to 16 values + TFLM compression) and 6 int8 inputs."""
    _, _, folded = _stored_and_clustered(16)
    compressed = peers.lut_compress(folded, peers.bits_for_clusters(16))
    x = np.random.default_rng(3).integers(-128, 128, size=(6, 64, 1, 1)).astype(np.int8)
    return compressed, x


def test_lut_file_runs_through_decode_in_both_runners_as_in_the_tflm_wheel(tmp_path):
    compressed, x = _lut_file()
    model_t = fb.read(compressed)
    assert "TFLM_DECODE" in {fb.op_name(model_t, op) for op in model_t.subgraphs[0].operators}
    expected = interpreters.run_int8(compressed, x, "tflm")
    path = tmp_path / "lut.tflite"
    path.write_bytes(compressed)
    for target in tflm_run.TARGETS:
        got = tflm_run.run(path, x, target).outputs
        assert got.dtype == np.int8 and got.tobytes() == expected.tobytes(), target


def test_fit_measures_a_lut_file_on_the_cortex_m4():
    compressed, _ = _lut_file()
    report = fit.fit(compressed, name="lut.tflite")
    (row,) = report.rows
    assert row.mode == fit.FOLDED and row.file_bytes == len(compressed)
    assert row.sram_bytes > 0 and row.inference_instructions > 0 and row.setup_instructions > 0


def test_stock_runtimes_ignore_the_folded_files_crc_entry():
    """The tflite_micro wheel and LiteRT run a sealed folded file exactly as the same file without the entry."""
    folded, _, x = _trained()
    model_t = fb.read(folded)
    slim.strip_file_crc(model_t)
    bare = fb.write(model_t)
    assert fb.metadata_span(bare, fmt.METADATA_CRC32) is None and len(bare) < len(folded)
    for runtime in interpreters.RUNTIMES:
        assert np.array_equal(interpreters.run_int8(folded, x, runtime), interpreters.run_int8(bare, x, runtime))


def test_a_corrupted_folded_file_is_refused_by_the_python_runtimes_too():
    folded, _, x = _trained()
    mutant = _flipped(folded, len(folded) // 2, 0x01)
    with pytest.raises(ValueError, match=r"model: file CRC-32 mismatch: metadata 'hyper_tinypw_crc32' says 0x"):
        interpreters.run_int8(mutant, x, "tflm")
