"""Whole-file fuzzing of the runners' load path (tflm_harness/fuzz/htpw_load_fuzz.cc) for a bounded time.

Seeded-random mutations (byte flips and sets, 32-bit edge values, truncations) of real hyper files
(tiled int8 boot, paper_factorized int4 stream), a folded file and a LUT-compressed one, each run
through ``htpw::Runner`` (file CRC-32, flatbuffers' Verifier, index checks, interpreter, one invoke)
with our code under ASan + UBSan: any memory error, undefined behaviour or abort fails the test.
A mutant that lost a folded file's (optional) CRC entry is vouched for by nothing; it goes through
the file checks only ("UNPROTECTED"), since TFLM's own kernels abort on inconsistent models.
The run lasts ``HTPW_LOAD_FUZZ_SECONDS`` (default 20) of wall time.
"""

from __future__ import annotations

import json
import os
import subprocess

from hyper_tinypw_tf.export import format as fmt
from tests.conftest_export import tiny_exports
from tests.test_tflm_integrity import _lut_file
from tflm_harness import build, fit

SECONDS = float(os.environ.get("HTPW_LOAD_FUZZ_SECONDS", "20"))


def test_mutated_files_never_crash_the_runner(tmp_path):
    folded, boot = tiny_exports("tiled", fmt.MODE_BOOT)
    _, int4 = tiny_exports("paper_factorized_int4", fmt.MODE_BOOT)
    seeds = {"hyper_boot": boot, "hyper_int4_stream": fit.with_mode(int4, fmt.MODE_STREAM), "folded": folded,
             "lut": _lut_file()[0]}
    paths = []
    for name, data in seeds.items():
        paths.append(tmp_path / f"{name}.tflite")
        paths[-1].write_bytes(data)
    proc = subprocess.run([str(build.build_load_fuzzer()), "--seed=18", f"--seconds={SECONDS}", *map(str, paths)],
                          capture_output=True, text=True, check=False, timeout=SECONDS + 120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    outcomes = result["outcomes"]
    assert outcomes.pop("seed_OK") == len(seeds), outcomes  # every unmutated file runs
    assert result["iterations"] >= 500 and sum(outcomes.values()) == result["iterations"]
    assert outcomes["HTPW_ERR_FILE_CRC"] > result["iterations"] // 2, outcomes  # the CRC refuses most
    assert set(outcomes) <= {"OK", "UNPROTECTED", "HTPW_ERR_FILE_CRC", "HTPW_ERR_FILE_FORMAT", "HTPW_ERR_FILE_NO_CRC",
                             "MODEL_FORMAT", "MODEL_VERSION", "ALLOCATE_TENSORS", "HYPER_TINYPW", "INVOKE",
                             "INPUT_SHAPE", "OUTPUT_SHAPE"} | {n for n in outcomes if n.startswith("HTPW_ERR_")}
