"""libFuzzer on the core (tflm_harness/fuzz/htpw_fuzz.c) for a bounded time: no crash, leak or undefined behaviour.

Built with Debian's clang (``-fsanitize=fuzzer,address,undefined``; libFuzzer comes with
libclang-rt-14-dev). The seed corpus is this test's valid ops from real hyper files, small edge
ops and malformed ones, so mutations start from inputs that reach the synthesis. The run lasts
``HTPW_FUZZ_SECONDS`` (default 30) seconds; CI runs the default.
"""

from __future__ import annotations

import os
import resource
import subprocess

import pytest

from tests import core_lib

SECONDS = int(os.environ.get("HTPW_FUZZ_SECONDS", "30"))
MAX_LEN = 8192


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory):
    out = tmp_path_factory.mktemp("fuzz") / "htpw_fuzz"
    sources = (*core_lib.CORE_SOURCES, *core_lib.CASE_SOURCES, core_lib.FUZZ / "htpw_fuzz.c")
    flags = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-g", "-O1", "-fsanitize=fuzzer,address,undefined",
             "-fno-sanitize-recover=all")
    return core_lib.build(out, sources, flags, cc="clang")


lib = core_lib.library  # the session's build of the core


def seed_corpus(lib, folder) -> int:
    """Write the seeds: every file op, the edge ops that fit MAX_LEN, and a few malformed cases per config."""
    seeds = []
    for strategy, bits in core_lib.CONFIGS:
        ops = core_lib.file_ops(strategy, bits)
        seeds += [core_lib.encode_case(core_lib.options_struct(lib, op.options), op.inputs) for op in ops]
        malformed = core_lib.malformed_cases(lib, ops[0])[::9]
        seeds += [core_lib.encode_case(case.options, case.inputs) for case in malformed]
    seeds += [core_lib.encode_case(core_lib.options_struct(lib, op.options), op.inputs) for op in core_lib.edge_ops()]
    seeds = [seed for seed in seeds if len(seed) <= MAX_LEN]
    for number, seed in enumerate(seeds):
        (folder / f"seed{number:04d}").write_bytes(seed)
    return len(seeds)


def test_fuzz_for_a_bounded_time(fuzzer, lib, tmp_path):
    corpus, artifacts = tmp_path / "corpus", tmp_path / "artifacts"
    corpus.mkdir()
    artifacts.mkdir()
    assert seed_corpus(lib, corpus) > 50
    # libFuzzer's RSS is the peak RSS (getrusage), which Linux carries across exec: the fuzzer starts at this
    # (TensorFlow-sized) test process's peak. The limit is 2 GB above it; no single malloc may exceed 2 GB.
    inherited_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    result = subprocess.run(
        [str(fuzzer), str(corpus), f"-max_total_time={SECONDS}", f"-max_len={MAX_LEN}", "-seed=1",
         f"-rss_limit_mb={inherited_mb + 2048}", "-malloc_limit_mb=2048", "-timeout=20",
         f"-artifact_prefix={artifacts}/", "-print_final_stats=1"],
        capture_output=True, text=True, timeout=SECONDS + 300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Done" in result.stderr and "ERROR" not in result.stderr
    assert list(artifacts.iterdir()) == []
