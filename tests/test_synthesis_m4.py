"""The synthesis core's Cortex-M4 paths (SMLAD, Thumb-2 blocks, CMSIS-NN) against the Python reference.

The host tests (test_c_core.py) hold the portable C to ``hyper_tinypw_tf.synthesis``; the
TFLM tests run the M4 build only on the tiny models' even shapes. This one builds the firmware
of ``bench/synthesis_m4.c`` (TFLM's Cortex-M4 flags, CMSIS-NN on) on odd shapes (odd tile, odd
d_h, a padding tile column, cropped rows and columns) and on the 64k preset's tile shape with
odd layers, runs it under QEMU, and compares each kernel's CRC-32 with the reference kernel
rebuilt from the firmware's own pseudo-random inputs.

Cost: two small firmware builds and QEMU runs, about 2 s (the Cortex-M4 toolchain of tflm_harness.build).
"""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest

from bench import bench_synthesis_m4 as bench
from hyper_tinypw_tf import synthesis

FIRMWARE = bench.FIRMWARE.read_text()


def _define(name: str) -> int:
    """An integer constant of the firmware (one source: the C file)."""
    return int(re.search(rf"#define {name} (\d+)", FIRMWARE).group(1))


def _assigned(name: str) -> int:
    return int(re.search(rf"{re.escape(name)} = (-?\d+);", FIRMWARE).group(1))


class _Lcg:
    """next_int8() of the firmware."""

    def __init__(self) -> None:
        self.state = 12345

    def int8(self, count: int) -> np.ndarray:
        out = np.empty(count, np.int64)
        for k in range(count):
            self.state = (self.state * 1664525 + 1013904223) & 0xFFFFFFFF
            out[k] = (self.state >> 24) - 128
        return out


def _expected_crcs(layers: tuple[tuple[int, int], ...], tile: int, d_z: int, d_h: int) -> list[tuple[str, str]]:
    """(strategy, CRC-32) per kernel the firmware makes, from the reference arithmetic."""
    max_c, f_hidden = _define("MAX_C"), _define("F_HIDDEN")
    max_tiles = (-(-max_c // tile)) ** 2
    rng = _Lcg()
    codes = rng.int8(max_tiles * d_z)
    w1 = rng.int8(d_z * d_h).reshape(d_z, d_h)
    w2 = rng.int8(d_h * tile * tile).reshape(d_h, tile * tile)
    b1 = rng.int8(d_h) * 64
    signs = (rng.int8(max_c // 8) & 0xFF).astype(np.uint8)
    f_code = rng.int8(d_z)
    f_w1 = rng.int8(d_z * f_hidden).reshape(d_z, f_hidden)
    f_head = rng.int8(max_c * f_hidden)
    f_b = rng.int8(f_hidden * max_c).reshape(f_hidden, max_c)
    requant = synthesis.Requant(_assigned("requant[0]"), _assigned("requant[1]"))
    out = []
    for c_out, c_in in layers:
        rows, cols = synthesis.tile_grid(c_out, c_in, tile)
        acc = synthesis.tiled_accumulators(codes[: rows * cols * d_z].reshape(-1, d_z), w1, b1, w2, requant,
                                           c_out, c_in, tile)
        kernel, _ = synthesis.finish_kernel(acc, signs[: -(-c_out // 8)])
        out.append(("tiled", f"{zlib.crc32(kernel.astype(np.int8).tobytes()):08x}"))
    for c_out, c_in in layers:
        acc = synthesis.paper_factorized_accumulators(f_code, f_w1, b1[:f_hidden], f_head[: c_out * f_hidden].reshape(
            c_out, f_hidden), f_b, requant, c_out, c_in)
        kernel, _ = synthesis.finish_kernel(acc, signs[: -(-c_out // 8)])
        out.append(("paper_factorized", f"{zlib.crc32(kernel.astype(np.int8).tobytes()):08x}"))
    return out


@pytest.mark.parametrize(("layers", "tile", "d_z", "d_h"), [
    (((13, 7), (5, 11), (4, 9)), 3, 3, 17),  # odd tile and d_h: the general driver, padding tiles
    (((20, 36), (16, 16), (24, 17)), 8, 4, 32),  # the presets' blocks; odd tile columns, cropped kernels
])
def test_cortex_m4_kernels_match_the_reference(layers: tuple[tuple[int, int], ...], tile: int, d_z: int,
                                               d_h: int) -> None:
    rows = bench.measure([], layers=layers, tile=tile, code_dim=d_z, hidden_dim=d_h)
    got = [(strategy, crc) for strategy, *_, crc in rows]
    assert got == _expected_crcs(layers, tile, d_z, d_h)
