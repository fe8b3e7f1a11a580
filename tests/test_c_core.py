"""The C synthesis core (tflm_harness/core) against the numpy reference, byte for byte."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from hyper_tinypw_tf import synthesis
from tests import core_lib


class Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("bytes", ctypes.c_int32), ("bits", ctypes.c_int32)]


class Mlp(ctypes.Structure):
    _fields_ = [("w1", Tensor), ("b1", ctypes.c_void_p), ("b1_bytes", ctypes.c_int32), ("code_dim", ctypes.c_int32),
                ("hidden_dim", ctypes.c_int32)]


class Signs(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("bytes", ctypes.c_int32)]


class Requant(ctypes.Structure):
    _fields_ = [("multiplier", ctypes.c_int32), ("shift", ctypes.c_int32)]


lib = core_lib.library  # the session's build of the core


class Stored:
    """A tensor as the device stores it (int8, or int4 packed), kept alive for ctypes."""

    def __init__(self, values: np.ndarray, bits: int):
        flat = np.asarray(values).ravel()
        self.buffer = synthesis.pack_int4(flat) if bits == 4 else flat.astype(np.int8)
        self.struct = Tensor(self.buffer.ctypes.data, self.buffer.nbytes, bits)


def _signs(packed: np.ndarray) -> Signs:
    return Signs(packed.ctypes.data, packed.nbytes)


def _rng_values(rng, shape, bits):
    limit = synthesis.q_max(bits)
    return rng.integers(-limit, limit + 1, shape)


def _mlp(rng, d_z, d_h, bits):
    w1 = _rng_values(rng, (d_z, d_h), bits)
    b1 = rng.integers(-3000, 3000, d_h).astype(np.int32)
    stored = Stored(w1, bits)
    return w1, b1, stored, Mlp(stored.struct, b1.ctypes.data, b1.nbytes, d_z, d_h)


def _requant(rng):
    return synthesis.Requant(*synthesis.quantize_multiplier(float(rng.uniform(0.001, 0.05))))


def test_requantize_matches_reference_on_edges_and_random(lib):
    rng = np.random.default_rng(0)
    values = np.concatenate([
        rng.integers(-(2**31), 2**31 - 1, 3000), [0, 1, -1, 2**31 - 1, -(2**31), 3, -3, 5, -5]
    ]).astype(np.int64)
    for real in (0.5, 0.75, 0.25, 3.0, 1e-6, 0.999999, 123.0):
        m, n = synthesis.quantize_multiplier(real)
        expected = synthesis.requantize(values, m, n)
        got = np.array([lib.htpw_requantize(int(v), m, n) for v in values])
        np.testing.assert_array_equal(got, expected, err_msg=f"multiplier {real}")


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize(("c_out", "c_in", "tile", "real_multiplier"),
                         [(16, 24, 8, None), (13, 7, 4, None), (5, 9, 3, None), (9, 10, 2, 0.7)])
def test_tiled_synthesis_is_byte_identical(lib, bits, c_out, c_in, tile, real_multiplier):
    """Random multipliers in [0.001, 0.05), and one above 0.25 (the hidden step's 64-bit path)."""
    rng = np.random.default_rng(c_out * 100 + c_in + bits)
    d_z, d_h = 3, 6
    w1, b1, _w1_keep, mlp = _mlp(rng, d_z, d_h, bits)
    w2 = _rng_values(rng, (d_h, tile * tile), bits)
    rows, cols = synthesis.tile_grid(c_out, c_in, tile)
    codes = _rng_values(rng, (rows * cols, d_z), bits)
    signs = synthesis.pack_signs(rng.random(c_out) < 0.3)
    requant = _requant(rng) if real_multiplier is None else synthesis.Requant(
        *synthesis.quantize_multiplier(real_multiplier))
    expected, _ = synthesis.finish_kernel(
        synthesis.tiled_accumulators(codes, w1, b1, w2, requant, c_out, c_in, tile), signs
    )
    w2_s, codes_s = Stored(w2, bits), Stored(codes, bits)
    scratch_bytes = lib.htpw_tiled_scratch_bytes(ctypes.byref(mlp), tile, c_in)
    scratch = ctypes.create_string_buffer(scratch_bytes)
    kernel = np.zeros((c_out, c_in), np.int8)
    status = lib.htpw_tiled_synthesize(
        ctypes.byref(mlp), ctypes.byref(w2_s.struct), tile, ctypes.byref(codes_s.struct),
        ctypes.byref(Requant(requant.multiplier, requant.shift)), ctypes.byref(_signs(signs)), c_out, c_in,
        scratch, scratch_bytes, kernel.ctypes.data,
    )
    assert status == 0
    np.testing.assert_array_equal(kernel, expected)


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("head", ["dense", "factorized"])
def test_paper_synthesis_is_byte_identical(lib, bits, head):
    rng = np.random.default_rng(7 + bits)
    d_z, d_h, c_out, c_in, b_cols = 4, 5, 6, 9, 12
    w1, b1, _keep, mlp = _mlp(rng, d_z, d_h, bits)
    code = _rng_values(rng, (1, d_z), bits)
    signs = synthesis.pack_signs(rng.random(c_out) < 0.5)
    requant = _requant(rng)
    if head == "dense":
        head_values = _rng_values(rng, (d_h, c_out * c_in), bits)
        b_shared = np.zeros((1, 1), np.int8)
        acc = synthesis.paper_dense_accumulators(code, w1, b1, head_values, requant, c_out, c_in)
    else:
        head_values = _rng_values(rng, (c_out, d_h), bits)
        b_shared = _rng_values(rng, (d_h, b_cols), bits)
        acc = synthesis.paper_factorized_accumulators(code, w1, b1, head_values, b_shared, requant, c_out, c_in)
    expected, _ = synthesis.finish_kernel(acc, signs)
    head_s, b_s, code_s = Stored(head_values, bits), Stored(b_shared, bits), Stored(code, bits)
    scratch_bytes = lib.htpw_paper_scratch_bytes(ctypes.byref(mlp), 0 if head == "dense" else 1, c_in)
    scratch = ctypes.create_string_buffer(scratch_bytes)
    kernel = np.zeros((c_out, c_in), np.int8)
    status = lib.htpw_paper_synthesize(
        ctypes.byref(mlp), 0 if head == "dense" else 1, ctypes.byref(head_s.struct), ctypes.byref(b_s.struct),
        b_cols, ctypes.byref(code_s.struct), ctypes.byref(Requant(requant.multiplier, requant.shift)),
        ctypes.byref(_signs(signs)), c_out, c_in, scratch, scratch_bytes, kernel.ctypes.data,
    )
    assert status == 0
    np.testing.assert_array_equal(kernel, expected)


def test_errors_are_distinct_status_codes(lib):
    rng = np.random.default_rng(1)
    _w1, _b1, _keep, mlp = _mlp(rng, 2, 3, 8)
    w2, codes = Stored(_rng_values(rng, (3, 4), 8), 8), Stored(_rng_values(rng, (1, 2), 8), 8)
    signs = np.zeros(1, np.uint8)
    kernel = np.zeros((2, 2), np.int8)
    scratch = (ctypes.c_int32 * 64)()

    valid = Requant(1 << 30, -3)

    def call(requant=valid, tile=2, scratch_bytes=256, w2_tensor=w2.struct, codes_tensor=codes.struct,
             sign_bytes=1, mlp_struct=mlp, scratch_at=0):
        return lib.htpw_tiled_synthesize(
            ctypes.byref(mlp_struct), ctypes.byref(w2_tensor), tile, ctypes.byref(codes_tensor), ctypes.byref(requant),
            ctypes.byref(Signs(signs.ctypes.data, sign_bytes)), 2, 2, ctypes.addressof(scratch) + scratch_at,
            scratch_bytes, kernel.ctypes.data,
        )

    assert call() == 0
    assert call(requant=Requant(1 << 30, 31)) == 4  # HTPW_ERR_SHIFT
    assert call(requant=Requant(5, 0)) == 5  # HTPW_ERR_MULTIPLIER
    assert call(scratch_bytes=8) == 6  # HTPW_ERR_SCRATCH
    assert call(tile=0) == 2  # HTPW_ERR_DIMENSION
    assert call(tile=256) == 2
    assert call(w2_tensor=Tensor(w2.buffer.ctypes.data, 12, 5)) == 3  # HTPW_ERR_BITS
    assert call(w2_tensor=Tensor(None, 12, 8)) == 1  # HTPW_ERR_NULL
    assert call(scratch_at=2) == 30  # HTPW_ERR_ALIGN
    # Every buffer is checked against what the synthesis reads (HTPW_ERR_INPUT_BYTES).
    assert call(w2_tensor=Tensor(w2.buffer.ctypes.data, 11, 8)) == 12
    assert call(codes_tensor=Tensor(codes.buffer.ctypes.data, 1, 8)) == 12
    assert call(sign_bytes=0) == 12
    short_w1 = Mlp(Tensor(mlp.w1.data, 5, 8), mlp.b1, mlp.b1_bytes, 2, 3)
    assert call(mlp_struct=short_w1) == 12
    short_b1 = Mlp(mlp.w1, mlp.b1, 11, 2, 3)
    assert call(mlp_struct=short_b1) == 12


@pytest.mark.parametrize("negate", [0, 1])
def test_channel_quantize_row_matches_reference_on_every_peak_range(lib, negate):
    """The 32-bit division path (peak <= (2^32 - 1) / 767) and the 64-bit one give the reference's bytes."""
    rng = np.random.default_rng(5)
    for peak in (1, 2, 3, 127, 255, 2**32 // 767 - 1, 2**32 // 767, 2**23, 2**23 + 1, 2**24, 2**31 - 1, 2**31):
        acc = rng.integers(-peak, peak + 1, 257).astype(np.int64)
        acc[rng.integers(0, acc.size)] = -peak if peak == 2**31 else peak
        acc = np.clip(acc, -(2**31), 2**31 - 1).astype(np.int32)
        acc[:3] = [0, acc[3] // 2, -(acc[3] // 2)]
        expected, _ = synthesis.finish_kernel(acc[None, :], synthesis.pack_signs(np.array([bool(negate)])))
        out = np.zeros(acc.size, np.int8)
        lib.htpw_channel_quantize_row(acc.ctypes.data, acc.size, negate, out.ctypes.data)
        np.testing.assert_array_equal(out, expected[0], err_msg=f"peak {peak}")


def test_mat_mult_is_exact_at_the_largest_dense_step(lib):
    """65535 terms of int8 x int8 stay exact in int32 (docs/synthesis.md section 5)."""
    k = synthesis.MAX_DENSE_TERMS
    lhs = np.full((2, k), -128, np.int8)
    lhs[1, ::2] = 127
    rhs = np.stack([np.full(k, -128, np.int8), np.full(k, 127, np.int8), np.arange(k).astype(np.int8)])
    out = np.zeros((2, 3), np.int32)
    lib.htpw_mat_mult_s32(lhs.ctypes.data, rhs.ctypes.data, 2, k, 3, out.ctypes.data)
    np.testing.assert_array_equal(out, lhs.astype(np.int64) @ rhs.astype(np.int64).T)
