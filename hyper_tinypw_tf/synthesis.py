"""Numpy integer reference of docs/synthesis.md.

Everything here is the contract the C code in ``tflm_harness/core`` follows bit for bit, with
the same function names and step order. Device-side steps take and return integer arrays only;
host-side helpers (``quantize_*``, ``quantize_multiplier``) are marked as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
MAX_DENSE_TERMS = 65535
MAX_FACTOR_RANK = 1024
MAX_TILE_SIZE = 255  # docs/synthesis.md §5; HTPW_MAX_TILE_SIZE in the C core, format.md's tile_size bound


def tile_size_problem(value: object) -> str | None:
    """What ``value`` must be to serve as a tiled generator's tile size, or None when it can.

    The one Python check of §5's limit: a generator at construction and a file's options both ask it.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        return "a positive integer"
    if value > MAX_TILE_SIZE:
        return f"at most {MAX_TILE_SIZE} (the device's limit, docs/synthesis.md §5)"
    return None


def q_max(bits: int) -> int:
    """Largest magnitude of a narrow-range symmetric integer of ``bits`` bits."""
    if bits not in (4, 8):
        raise ValueError(f"bits must be 4 or 8, received bits={bits}")
    return 2 ** (bits - 1) - 1


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Round half away from zero, the rounding every quantizer of this project uses."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


# ---------------------------------------------------------------------------------------------
# Host-side quantization of stored tensors (§1).


def symmetric_scale(values: np.ndarray, bits: int) -> float:
    """Per-tensor scale ``max|r| / q_max`` (1.0 for an all-zero tensor)."""
    peak = float(np.max(np.abs(values))) if np.size(values) else 0.0
    return peak / q_max(bits) if peak > 0 else 1.0


def quantize_tensor(values: np.ndarray, bits: int, scale: float | None = None) -> tuple[np.ndarray, float]:
    """Quantize a float tensor symmetrically; returns (int8 array, scale)."""
    scale = symmetric_scale(values, bits) if scale is None else float(scale)
    limit = q_max(bits)
    q = np.clip(round_half_away(np.asarray(values, np.float64) / scale), -limit, limit)
    return q.astype(np.int8), scale


def quantize_bias(values: np.ndarray, scale: float) -> np.ndarray:
    """int32 bias at ``scale`` (input scale × weight scale), saturated."""
    q = round_half_away(np.asarray(values, np.float64) / scale)
    return np.clip(q, INT32_MIN, INT32_MAX).astype(np.int32)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Host: ``real = M · 2^(n-31)`` with ``M`` in [2^30, 2^31), as TFLite's QuantizeMultiplier."""
    if not real > 0 or not np.isfinite(real):
        raise ValueError(f"multiplier must be a positive finite number, received {real!r}")
    frac, shift = np.frexp(real)
    mult = int(round_half_away(frac * 2**31))
    if mult == 2**31:
        mult //= 2
        shift += 1
    if not -31 <= shift <= 30:
        raise ValueError(f"multiplier {real!r} needs shift {shift}, outside [-31, 30]")
    return mult, int(shift)


def pack_int4(values: np.ndarray) -> np.ndarray:
    """Pack int4 values (in [-8, 7]) two per byte, low nibble first."""
    flat = np.asarray(values, np.int64).ravel()
    if flat.size and (flat.min() < -8 or flat.max() > 7):
        raise ValueError("pack_int4: values outside [-8, 7]")
    nibbles = (flat & 0xF).astype(np.uint8)
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8)


def unpack_int4(packed: np.ndarray, count: int) -> np.ndarray:
    """Inverse of :func:`pack_int4` for ``count`` elements."""
    packed = np.asarray(packed, np.uint8).ravel()
    if count > 2 * packed.size:
        raise ValueError(f"unpack_int4: {packed.size} bytes hold fewer than {count} values")
    nibbles = np.empty(2 * packed.size, np.int16)
    nibbles[0::2] = packed & 0xF
    nibbles[1::2] = packed >> 4
    nibbles = np.where(nibbles > 7, nibbles - 16, nibbles)
    return nibbles[:count].astype(np.int8)


def pack_signs(negative: np.ndarray) -> np.ndarray:
    """Pack per-channel sign flags (True = negate) LSB-first into bytes."""
    return np.packbits(np.asarray(negative, bool).ravel(), bitorder="little")


def unpack_signs(packed: np.ndarray, count: int) -> np.ndarray:
    """Inverse of :func:`pack_signs`."""
    return np.unpackbits(np.asarray(packed, np.uint8), count=count, bitorder="little").astype(bool)


# ---------------------------------------------------------------------------------------------
# Device-side primitives (§2).


def _saturate_int32(x: np.ndarray) -> np.ndarray:
    return np.clip(x, INT32_MIN, INT32_MAX)


def requantize(acc: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """Single-rounding fixed-point multiply: ``round_half_up(acc · M / 2^(31-n))``, saturated to int32.

    One rounding (as CMSIS-NN's single-rounding requantize), so a float simulation of
    ``acc · real_multiplier`` rounds exactly where the device does.
    """
    total_shift = 31 - shift
    product = np.asarray(acc, np.int64) * np.int64(multiplier)
    return _saturate_int32((product + (np.int64(1) << (total_shift - 1))) >> total_shift)


def dense(x: np.ndarray, weights: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """``acc[..., j] = b[j] + Σ_i x[..., i] · W[i, j]``, summed in 64 bits, saturated to int32."""
    acc = np.asarray(x, np.int64) @ np.asarray(weights, np.int64)
    if bias is not None:
        acc = acc + np.asarray(bias, np.int64)
    return _saturate_int32(acc)


def relu_int8(acc: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """Requantize to the int8 hidden activation (zero point 0) and apply ReLU."""
    return np.clip(requantize(acc, multiplier, shift), 0, 127)


def channel_quantize(acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per output row: int8 kernel reaching ±127 at the row's peak; returns (kernel, peaks)."""
    acc = np.asarray(acc, np.int64)
    peaks = np.max(np.abs(acc), axis=1)
    safe = np.where(peaks == 0, 1, peaks)[:, None]
    magnitude = (2 * 127 * np.abs(acc) + safe) // (2 * safe)
    kernel = np.sign(acc) * np.where(peaks[:, None] == 0, 0, magnitude)
    return kernel.astype(np.int8), peaks


def apply_signs(kernel: np.ndarray, packed_signs: np.ndarray) -> np.ndarray:
    """Negate the rows whose sign bit is set."""
    negative = unpack_signs(packed_signs, kernel.shape[0])
    return np.where(negative[:, None], -kernel.astype(np.int16), kernel).astype(np.int8)


# ---------------------------------------------------------------------------------------------
# Strategies (§3). Inputs are the integer tensors as stored (int4 already unpacked).


@dataclass(frozen=True)
class Requant:
    """Fixed-point multiplier of one layer's hidden activation."""

    multiplier: int
    shift: int


def tile_grid(c_out: int, c_in: int, tile: int) -> tuple[int, int]:
    """Number of tile rows and columns covering a ``c_out × c_in`` kernel."""
    return -(-c_out // tile), -(-c_in // tile)


def hidden(codes: np.ndarray, w1: np.ndarray, b1: np.ndarray, requant: Requant) -> np.ndarray:
    """Step 1 of both strategies: the shared micro-MLP's int8 hidden activation."""
    return relu_int8(dense(codes, w1, b1), requant.multiplier, requant.shift)


def tiled_accumulators(
    codes: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, requant: Requant,
    c_out: int, c_in: int, tile: int,
) -> np.ndarray:
    """Tiled steps 1-3: the int32 kernel accumulators ``acc[o, i]``."""
    rows, cols = tile_grid(c_out, c_in, tile)
    if codes.shape[0] != rows * cols:
        raise ValueError(f"tiled synthesis expects {rows * cols} tile codes, received {codes.shape[0]}")
    values = dense(hidden(codes, w1, b1, requant), w2)  # (tiles, tile*tile)
    grid = values.reshape(rows, cols, tile, tile).transpose(0, 2, 1, 3)
    return grid.reshape(rows * tile, cols * tile)[:c_out, :c_in]


def paper_dense_accumulators(
    code: np.ndarray, w1: np.ndarray, b1: np.ndarray, head: np.ndarray, requant: Requant,
    c_out: int, c_in: int,
) -> np.ndarray:
    """Paper steps 1-2 with a dense head ``H_l`` of shape (d_h, C_out·C_in)."""
    h = hidden(code.reshape(1, -1), w1, b1, requant)
    return dense(h, head).reshape(c_out, c_in)


def paper_factorized_accumulators(
    code: np.ndarray, w1: np.ndarray, b1: np.ndarray, a_head: np.ndarray, b_shared: np.ndarray,
    requant: Requant, c_out: int, c_in: int,
) -> np.ndarray:
    """Paper steps 1-2 with ``acc = (A_l · diag(h)) · B[:, :C_in]``."""
    h = hidden(code.reshape(1, -1), w1, b1, requant)[0]
    scaled = np.asarray(a_head, np.int64) * h[None, :]  # (C_out, d_h)
    return dense(scaled, np.asarray(b_shared)[:, :c_in])


def finish_kernel(acc: np.ndarray, packed_signs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Last step of every strategy: per-channel int8 kernel with signs; returns (kernel, peaks)."""
    kernel, peaks = channel_quantize(acc)
    return apply_signs(kernel, packed_signs), peaks
