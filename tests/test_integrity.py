"""Mutated hyper files: ``hyper-tinypw expand`` reproduces the original folded file exactly or refuses.

A seeded loop makes mutants of small hyper files (random byte flips, truncations, index corruptions,
and corruptions behind a re-computed file CRC, which the per-op CRC and the index checks must catch)
and runs ``expand`` on each through the CLI's in-process entry point, plus a few through the real
console script. Every outcome must be the original folded bytes, or exit status 2 with one
``hyper-tinypw expand: error:`` line and no output file: never a traceback, never another model.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hyper_tinypw_tf.app import cli
from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import format as fmt
from hyper_tinypw_tf.export import hyper
from tests.conftest_export import tiny_exports
from tests.test_cli_errors import _TF_NATIVE_LOG

GENERATORS = ("tiled", "paper_factorized")
SEED = 7


def _expand(data: bytes, tmp: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], bytes | None]:
    """(exit status, stderr lines, output bytes or None) of ``hyper-tinypw expand`` in this process."""
    source, output = tmp / "mutant.tflite", tmp / "out.tflite"
    source.write_bytes(data)
    output.unlink(missing_ok=True)
    status = cli.main(["expand", f"--input={source}", f"--output={output}"])
    lines = capsys.readouterr().err.splitlines()
    return status, lines, output.read_bytes() if output.exists() else None


def _check(result: tuple[int, list[str], bytes | None], folded: bytes, what: str, must_refuse: bool) -> bool:
    """Assert the property; returns True if the mutant was refused."""
    status, lines, out = result
    if status == 0:
        assert not must_refuse, f"{what}: accepted"
        assert out == folded, f"{what}: expand gave a different model"
        assert lines == []
        return False
    assert status == 2, f"{what}: exit status {status}"
    assert len(lines) == 1 and lines[0].startswith("hyper-tinypw expand: error: "), f"{what}: {lines}"
    assert out is None, f"{what}: a refused expand wrote a file"
    return True


def _resealed(data: bytes, change: Callable[[fb.schema.ModelT], None], reseal: bool = True) -> bytes:
    model_t = fb.read(data)
    change(model_t)
    out = fb.write(model_t)
    return hyper.seal(out) if reseal else out


def _customs(model_t: fb.schema.ModelT) -> list[fb.schema.OperatorT]:
    return [op for op in model_t.subgraphs[0].operators if fb.op_name(model_t, op) == fmt.CUSTOM_OP_NAME]


def _index_corruption(rng: np.random.Generator, out_of_range: bool) -> Callable[[fb.schema.ModelT], None]:
    """An opcode, buffer or tensor index set to another value (in range or past the end)."""
    kind = rng.choice(["opcode", "buffer", "input", "output"])
    pick = int(rng.integers(0, 1 << 20))

    def change(model_t: fb.schema.ModelT) -> None:
        subgraph = model_t.subgraphs[0]
        ops, tensors = subgraph.operators, subgraph.tensors
        sizes = {"opcode": len(model_t.operatorCodes), "buffer": len(model_t.buffers),
                 "input": len(tensors), "output": len(tensors)}
        value = sizes[kind] + pick % 1000 if out_of_range else pick % sizes[kind]
        if kind == "opcode":
            ops[pick % len(ops)].opcodeIndex = value
        elif kind == "buffer":
            custom_inputs = [int(i) for op in _customs(model_t) for i in op.inputs]
            tensors[custom_inputs[pick % len(custom_inputs)]].buffer = value
        else:
            op = _customs(model_t)[pick % len(_customs(model_t))]
            indices = np.array(op.inputs if kind == "input" else op.outputs, np.int32)
            indices[pick % len(indices)] = value
            if kind == "input":
                op.inputs = indices
            else:
                op.outputs = indices

    return change


def _input_byte_flip(rng: np.random.Generator) -> Callable[[fb.schema.ModelT], None]:
    pick, mask = int(rng.integers(0, 1 << 30)), int(rng.integers(1, 256))

    def change(model_t: fb.schema.ModelT) -> None:
        inputs = sorted({int(i) for op in _customs(model_t) for i in op.inputs})
        buffer = model_t.buffers[model_t.subgraphs[0].tensors[inputs[pick % len(inputs)]].buffer]
        data = np.asarray(buffer.data, np.uint8).copy()
        data[pick % len(data)] ^= mask
        buffer.data = data

    return change


def _option_byte_flip(rng: np.random.Generator) -> Callable[[fb.schema.ModelT], None]:
    pick, mask = int(rng.integers(0, 1 << 30)), int(rng.integers(1, 256))

    def change(model_t: fb.schema.ModelT) -> None:
        op = _customs(model_t)[pick % len(_customs(model_t))]
        options = np.asarray(op.customOptions, np.uint8).copy()
        options[pick % len(options)] ^= mask
        op.customOptions = options

    return change


@pytest.mark.parametrize("generator", GENERATORS)
def test_mutants_are_refused_or_reproduce_the_folded_file(generator: str, tmp_path: Path, capsys) -> None:
    folded, data = tiny_exports(generator)
    rng = np.random.default_rng([SEED, GENERATORS.index(generator)])
    assert _check(_expand(data, tmp_path, capsys), folded, "the unmutated file", must_refuse=False) is False

    # Any change to the bytes of the file, at any offset, is refused by the file CRC.
    for _ in range(120):
        flipped = bytearray(data)
        position, mask = int(rng.integers(0, len(data))), int(rng.integers(1, 256))
        flipped[position] ^= mask
        _check(_expand(bytes(flipped), tmp_path, capsys), folded, f"byte {position} ^ {mask:#x}", must_refuse=True)
    for _ in range(30):
        length = int(rng.integers(0, len(data)))
        _check(_expand(data[:length], tmp_path, capsys), folded, f"truncated to {length}", must_refuse=True)
    for number in range(30):
        mutant = _resealed(data, _index_corruption(rng, out_of_range=bool(number % 2)), reseal=False)
        if mutant != data:
            _check(_expand(mutant, tmp_path, capsys), folded, f"index corruption #{number}", must_refuse=True)

    # Behind a valid file CRC (a tool that re-seals what it breaks): index checks and the per-op CRC.
    for number in range(30):
        mutant = _resealed(data, _index_corruption(rng, out_of_range=True))
        _check(_expand(mutant, tmp_path, capsys), folded, f"resealed index corruption #{number}", must_refuse=True)
    for number in range(30):
        mutant = _resealed(data, _input_byte_flip(rng))
        result = _expand(mutant, tmp_path, capsys)
        _check(result, folded, f"resealed input flip #{number}", must_refuse=True)
        assert "CRC-32 mismatch: option 'crc32' says" in result[1][0] or "must hold a multiplier" in result[1][0]
    refused = 0
    for number in range(40):
        mutant = _resealed(data, _option_byte_flip(rng))
        refused += _check(_expand(mutant, tmp_path, capsys), folded, f"resealed option flip #{number}",
                          must_refuse=False)
    assert refused >= 30, "most option flips change a value and must be refused"


def test_file_crc_is_the_documented_one() -> None:
    _, data = tiny_exports("tiled")
    offset, length = fb.metadata_span(data, fmt.METADATA_CRC32)
    assert length == 4
    (stored,) = struct.unpack_from("<I", data, offset)
    assert stored == zlib.crc32(data[:offset] + bytes(4) + data[offset + 4:])


def test_op_crc_is_the_documented_one() -> None:
    _, data = tiny_exports("paper_factorized")
    model_t = fb.read(data)
    tensors = model_t.subgraphs[0].tensors
    for op in _customs(model_t):
        options = fmt.decode_options(np.asarray(op.customOptions, np.uint8).tobytes())
        raw = b"".join(fb.buffer_bytes(model_t, tensors[int(i)]) for i in op.inputs)
        assert options.crc32 == zlib.crc32(raw)


def test_a_few_mutants_through_the_console_script(tmp_path: Path) -> None:
    folded, data = tiny_exports("tiled")
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0x01
    mutants = {
        "flip": bytes(flipped),
        "truncated": data[: len(data) - 7],
        "bad opcode": _resealed(data, lambda m: setattr(m.subgraphs[0].operators[0], "opcodeIndex", 200)),
        "input crc": _resealed(data, _input_byte_flip(np.random.default_rng(SEED))),
    }
    for what, mutant in mutants.items():
        source, output = tmp_path / f"{what}.tflite", tmp_path / f"{what}.out.tflite"
        source.write_bytes(mutant)
        done = subprocess.run([sys.executable, "-m", "hyper_tinypw_tf.app.cli", "expand", f"--input={source}",
                               f"--output={output}"], capture_output=True, text=True, timeout=300)
        lines = [line for line in done.stderr.splitlines() if not _TF_NATIVE_LOG.match(line)]
        assert done.returncode == 2, (what, done.stderr[-2000:])
        assert len(lines) == 1 and lines[0].startswith("hyper-tinypw expand: error: "), (what, lines)
        assert not output.exists()
