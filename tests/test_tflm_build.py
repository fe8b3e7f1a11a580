"""tflm_harness.build: TFLM compiled once into the cache, only the kernels our models need, tree untouched.

The first test of a fresh machine pays the cold build of the host library (a few minutes on 2
cores); every later call, test and CI step finds it in ``~/.cache/hyper_tinypw_tf``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tflm_harness import build


def test_library_is_built_once_into_the_cache_outside_the_tree() -> None:
    first = build.build_tflm("host")
    again = build.build_tflm("host")
    assert again.cached and again.path == first.path
    assert again.path.is_file() and again.path.stat().st_size > 0
    assert build.cache_dir() in again.path.parents
    tree = build.tflm_dir()
    assert tree not in again.path.parents
    assert not (tree / "gen").exists()  # TFLM's default BASE_GENDIR was never used


def test_only_the_kernels_our_models_use_are_compiled() -> None:
    sources = build.toolchain("host").sources
    kernels = {Path(s).stem for s in sources if s.startswith("tensorflow/lite/micro/kernels/")}
    assert kernels == {*build.KERNELS, "kernel_util", "micro_tensor_utils", "conv_common", "depthwise_conv_common",
                       "reduce_common", "reshape_common", "strided_slice_common"}
    assert "tensorflow/lite/micro/micro_interpreter.cc" in sources
    assert not any(s.startswith("signal/") for s in sources)


def test_the_runner_resolves_every_builtin_op_our_exports_use() -> None:
    """Every builtin htpw_runner.cc adds is compiled from a kernel in build.KERNELS, and back."""
    runner = (build.HARNESS / "runner" / "htpw_runner.cc").read_text()
    added = {line.split("resolver.Add")[1].split("(")[0] for line in runner.splitlines() if "resolver.Add" in line}
    # The TFLM kernel source (tensorflow/lite/micro/kernels/<stem>.cc) that registers each builtin.
    kernel_of = {"Conv2D": "conv", "Decode": "decode", "DepthwiseConv2D": "depthwise_conv", "Mean": "reduce",
                 "Pack": "pack", "Reshape": "reshape", "Shape": "shape", "StridedSlice": "strided_slice"}
    assert added == set(kernel_of), f"runner adds {sorted(added)}; update kernel_of and build.KERNELS together"
    registering = {k for k in build.KERNELS if not k.startswith("decode_state")}
    assert {kernel_of[op] for op in added} == registering
    assert "tflite::AddHyperTinyPW(resolver)" in runner


def test_cortex_m4_toolchain_comes_from_the_makefile_with_cmsis_nn() -> None:
    tc = build.toolchain("cortex-m4")
    assert tc.cxx[-1].endswith("arm-none-eabi-g++")
    assert "-mcpu=cortex-m4" in tc.cxxflags and "-DCMSIS_NN" in tc.cxxflags
    assert "tensorflow/lite/micro/kernels/cmsis_nn/conv.cc" in tc.sources
    assert any(s.endswith("arm_convolve_1x1_s8_fast.c") for s in tc.sources)


def test_tflm_dir_must_be_a_tflite_micro_tree(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TFLM_DIR", str(tmp_path))
    with pytest.raises(build.BuildError, match=f"TFLM_DIR={tmp_path} is not a tflite-micro tree"):
        build.toolchain("host")


def test_unknown_target_is_refused() -> None:
    with pytest.raises(build.BuildError, match="unknown target 'riscv'"):
        build.toolchain("riscv")


def test_cache_dir_follows_xdg_cache_home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert build.cache_dir() == tmp_path / "hyper_tinypw_tf"
