"""The core under AddressSanitizer and UBSan: valid ops give expand's bytes, each malformed one its status.

The driver (tflm_harness/fuzz/htpw_case_main.c) copies every input into its own heap block of
exactly its length, so a read one byte past any tensor is an ASan report, and
``-fno-sanitize-recover=all`` turns any undefined behaviour (signed overflow, bad shift,
misaligned load) into a failed run.
"""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from hyper_tinypw_tf.export.status import Status
from tests import core_lib

SANITIZE = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g", "-O1")
ENV = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=86",
       "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=87"}


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    out = tmp_path_factory.mktemp("asan") / "htpw_case_asan"
    sources = (*core_lib.CORE_SOURCES, *core_lib.CASE_SOURCES, core_lib.FUZZ / "htpw_case_main.c")
    return core_lib.build(out, sources, (*core_lib.STRICT, *SANITIZE), cc="clang")


lib = core_lib.library  # the session's build of the core


def run_cases(driver, folder, cases: list[tuple[str, bytes]]) -> dict[str, tuple[str, str]]:
    """Write the cases, run them in one sanitized process, return label -> (status name, kernel hex)."""
    paths = {}
    for number, (label, data) in enumerate(cases):
        path = folder / f"case{number:04d}.bin"
        path.write_bytes(data)
        paths[str(path)] = label
    result = subprocess.run([str(driver), *paths], capture_output=True, text=True, env=ENV, timeout=600)
    assert result.returncode == 0 and result.stderr == "", result.stderr[-4000:]
    out = {}
    for line in result.stdout.splitlines():
        path, name, kernel = line.split(" ")
        out[paths[path]] = (name, kernel)
    assert len(out) == len(cases)
    return out


@pytest.mark.parametrize(("strategy", "bits"), core_lib.CONFIGS)
def test_file_ops_under_sanitizers(driver, lib, tmp_path, strategy, bits):
    ops = core_lib.file_ops(strategy, bits)
    cases = [(op.label, core_lib.encode_case(core_lib.options_struct(lib, op.options), op.inputs)) for op in ops]
    malformed = core_lib.malformed_cases(lib, ops[0])
    cases += [(case.label, core_lib.encode_case(case.options, case.inputs)) for case in malformed]
    results = run_cases(driver, tmp_path, cases)
    for op in ops:
        assert results[op.label] == ("HTPW_OK", op.kernel.tobytes().hex()), op.label
    for case in malformed:
        assert results[case.label] == (case.expected, "-"), case.label


def test_edge_ops_under_sanitizers(driver, lib, tmp_path):
    """The largest sums the limits allow stay exact with signed-overflow checking on."""
    ops = core_lib.edge_ops()
    cases = [(op.label, core_lib.encode_case(core_lib.options_struct(lib, op.options), op.inputs)) for op in ops]
    results = run_cases(driver, tmp_path, cases)
    for op in ops:
        assert results[op.label] == ("HTPW_OK", op.kernel.tobytes().hex()), op.label


def test_random_corruptions_never_crash(driver, lib, tmp_path):
    """Bytes flipped anywhere in a case (header, shapes, data) give a status, never a sanitizer report."""
    rng = np.random.default_rng(11)
    cases = []
    for strategy, bits in core_lib.CONFIGS:
        op = core_lib.file_ops(strategy, bits)[1]
        valid = bytearray(core_lib.encode_case(core_lib.options_struct(lib, op.options), op.inputs))
        for number in range(40):
            data = bytearray(valid)
            for position in rng.integers(0, len(data), 1 + number % 4):
                data[position] ^= int(rng.integers(1, 256))
            cases.append((f"{op.label} corruption {number}", bytes(data[: len(data) - int(rng.integers(0, 3))])))
    results = run_cases(driver, tmp_path, cases)
    names = {name for name, _ in results.values()}
    assert names <= {"NOT_A_CASE", *(f"HTPW_{s.name}" for s in Status)}
    assert len(names) > 3
