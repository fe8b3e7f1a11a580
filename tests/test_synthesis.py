"""The integer primitives of docs/synthesis.md against hand-computed cases."""

import numpy as np
import pytest

from hyper_tinypw_tf import synthesis


def test_quantize_multiplier_splits_mantissa_and_shift():
    assert synthesis.quantize_multiplier(0.75) == (3 << 29, 0)
    assert synthesis.quantize_multiplier(0.5) == (1 << 30, 0)
    assert synthesis.quantize_multiplier(3.0) == (3 << 29, 2)
    assert synthesis.quantize_multiplier(2.0**-10) == (1 << 30, -9)


def test_quantize_multiplier_rejects_non_positive():
    with pytest.raises(ValueError, match="multiplier must be a positive"):
        synthesis.quantize_multiplier(0.0)


def test_requantize_rounds_once_half_up():
    m, n = synthesis.quantize_multiplier(0.5)
    assert synthesis.requantize(np.array([100, 3, -3, 1, -1, 2]), m, n).tolist() == [50, 2, -1, 1, 0, 1]
    m, n = synthesis.quantize_multiplier(0.75)
    assert synthesis.requantize(np.array([4, 10, -10]), m, n).tolist() == [3, 8, -7]  # ±7.5
    m, n = synthesis.quantize_multiplier(0.25)
    assert synthesis.requantize(np.array([6, -6, 5, 4]), m, n).tolist() == [2, -1, 1, 1]  # 1.25 -> 1: one rounding


def test_requantize_with_left_shift_and_saturation():
    m, n = synthesis.quantize_multiplier(3.0)
    assert synthesis.requantize(np.array([5, -7]), m, n).tolist() == [15, -21]
    m, n = synthesis.quantize_multiplier(4.0)
    assert synthesis.requantize(np.array([2**30, -(2**30)]), m, n).tolist() == [2**31 - 1, -(2**31)]


def test_channel_quantize_hand_case():
    kernel, peaks = synthesis.channel_quantize(np.array([[2, -4, 1], [0, 0, 0], [3, 3, -1]]))
    assert peaks.tolist() == [4, 0, 3]
    # 127*2/4 = 63.5 -> 64; 127*1/4 = 31.75 -> 32; 127*1/3 = 42.33 -> 42
    assert kernel.tolist() == [[64, -127, 32], [0, 0, 0], [127, 127, -42]]


def test_signs_negate_marked_rows():
    packed = synthesis.pack_signs(np.array([False, True, False]))
    assert packed.tolist() == [0b010]
    out = synthesis.apply_signs(np.array([[1, -2], [3, -127], [5, 6]], np.int8), packed)
    assert out.tolist() == [[1, -2], [-3, 127], [5, 6]]


def test_int4_packing_round_trips_low_nibble_first():
    values = np.array([1, -1, 7, -8, 3])
    packed = synthesis.pack_int4(values)
    assert packed.tolist() == [0xF1, 0x87, 0x03]
    assert synthesis.unpack_int4(packed, 5).tolist() == values.tolist()


def test_quantize_tensor_is_symmetric_narrow_range():
    q, scale = synthesis.quantize_tensor(np.array([-2.0, 1.0, 0.5, 0.0079]), 8)
    assert scale == pytest.approx(2.0 / 127)
    assert q.tolist() == [-127, 64, 32, 1]  # 63.5 -> 64, 31.75 -> 32, 0.50165 -> 1
    q4, s4 = synthesis.quantize_tensor(np.array([0.7, -0.35]), 4)
    assert q4.tolist() == [7, -4] and s4 == pytest.approx(0.1)  # -3.5 -> -4


def test_tiled_accumulators_place_tiles_row_major_and_crop():
    # Identity-like generator: W1 = I, W2 maps hidden unit k to tile entry k.
    tile, d = 2, 4
    w1 = np.eye(d, dtype=np.int8)
    b1 = np.zeros(d, np.int32)
    w2 = np.eye(d, dtype=np.int8)
    requant = synthesis.Requant(*synthesis.quantize_multiplier(1.0 - 2**-20))
    codes = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]], np.int8)
    acc = synthesis.tiled_accumulators(codes, w1, b1, w2, requant, c_out=3, c_in=3, tile=tile)
    assert acc.tolist() == [[1, 2, 5], [3, 4, 7], [9, 10, 13]]


def test_tiled_accumulators_refuse_wrong_code_count():
    with pytest.raises(ValueError, match="expects 4 tile codes"):
        synthesis.tiled_accumulators(
            np.zeros((3, 2), np.int8), np.zeros((2, 2)), np.zeros(2), np.zeros((2, 4)),
            synthesis.Requant(1 << 30, 0), 4, 4, 2,
        )


def test_factorized_head_is_a_diag_product():
    a = np.array([[1, 2], [3, -1]], np.int8)
    b_shared = np.array([[1, 0, 5], [0, 1, 5]], np.int8)
    requant = synthesis.Requant(*synthesis.quantize_multiplier(1.0 - 2**-20))
    # hidden = relu(code @ I) = [2, 3]
    acc = synthesis.paper_factorized_accumulators(
        np.array([2, 3]), np.eye(2, dtype=np.int8), np.zeros(2), a, b_shared, requant, c_out=2, c_in=2
    )
    assert acc.tolist() == [[2, 6], [6, -3]]
