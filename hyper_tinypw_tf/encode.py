"""Host side of docs/synthesis.md: a trained generator and layer → the integer tensors a device stores.

``encode_generator`` and ``encode_layer`` quantize float Keras weights by the rules of §1 and §4;
``synthesize`` runs the numpy integer reference (``synthesis.py``) on the result and returns the
int8 kernel with its per-channel float scales. The exporter, ``expand`` and the tests all use
these functions, so there is one path from weights to kernel bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hyper_tinypw_tf import generators, synthesis
from hyper_tinypw_tf.generators import HyperGenerator
from hyper_tinypw_tf.layers import HyperPWConv2D


@dataclass(frozen=True)
class EncodedGenerator:
    """A generator's shared tensors as stored: integer values (int4 unpacked) and their scales."""

    strategy: str  # ``HyperGenerator.strategy``
    w1: np.ndarray
    b1: np.ndarray
    extra: np.ndarray | None  # the strategy's shared matrix beyond W1 (``encode_extra``), or None
    w1_scale: float
    extra_scale: float
    code_scale: float
    code_bits: int
    weight_bits: int
    tile_size: int = 0
    head: str = ""  # the strategy's head kind, from ``HyperGenerator.format_fields``
    format_name: str = ""  # the op variant (``HyperGenerator.format_name``)


@dataclass(frozen=True)
class EncodedLayer:
    """One generated layer as stored, plus the host-only numbers for its output scales."""

    name: str
    c_in: int
    c_out: int
    codes: np.ndarray  # (tiles or 1, d_z)
    head: np.ndarray | None  # paper only
    head_scale: float
    requant: synthesis.Requant
    signs: np.ndarray  # packed sign bits
    hidden_scale: float  # s_h,l
    channel_factor: np.ndarray  # |g_o|: BatchNorm folded in (ones without BN)


def _np(variable) -> np.ndarray:
    return np.asarray(variable.numpy(), np.float64)


def encode_generator(generator: HyperGenerator) -> EncodedGenerator:
    """Quantize a built generator's shared variables (§1)."""
    if not generator.built:
        raise ValueError(f"encode_generator: generator {generator.shared_name!r} is not built")
    wb = generator.weight_bits
    w1, s_w1 = synthesis.quantize_tensor(_np(generator.w1), wb)
    code_scale = generator.code_scale()
    b1 = synthesis.quantize_bias(_np(generator.b1), code_scale * s_w1)
    extra, s_extra = generator.encode_extra()
    return EncodedGenerator(
        generator.strategy, w1, b1, extra, s_w1, s_extra, code_scale, generator.code_bits, wb,
        generator.tile_option, format_name=generator.format_name, **generator.format_fields(generator.format_name),
    )


def _requant_for(acc1: np.ndarray, enc: EncodedGenerator) -> tuple[synthesis.Requant, float]:
    """Per-layer hidden scale s_h,l = max(h)/127 and the multiplier s_z·s_W1/s_h,l (§4)."""
    peak = float(np.max(np.maximum(acc1, 0))) if acc1.size else 0.0
    base = enc.code_scale * enc.w1_scale
    hidden_scale = base * peak / synthesis.q_max(8) if peak > 0 else 1.0
    mult, shift = synthesis.quantize_multiplier(base / hidden_scale)
    return synthesis.Requant(mult, shift), hidden_scale


def encode_layer(
    layer: HyperPWConv2D, enc: EncodedGenerator, channel_factor: np.ndarray | None = None
) -> EncodedLayer:
    """Quantize one layer's codes and head; ``channel_factor`` is BatchNorm's per-channel gain."""
    if not layer.built:
        raise ValueError(f"encode_layer: layer {layer.name!r} is not built")
    c_in, c_out = layer.in_channels, layer.filters
    factor = np.ones(c_out) if channel_factor is None else np.asarray(channel_factor, np.float64)
    if factor.shape != (c_out,):
        raise ValueError(f"encode_layer: channel_factor for {layer.name!r} needs shape ({c_out},), got {factor.shape}")
    codes, head, head_scale = layer.generator.encode_layer_weights(layer.synthesis_weights)
    acc1 = synthesis.dense(codes, enc.w1, enc.b1)
    requant, hidden_scale = _requant_for(acc1, enc)
    return EncodedLayer(
        layer.name, c_in, c_out, codes, head, head_scale, requant,
        synthesis.pack_signs(factor < 0), hidden_scale, np.abs(factor),
    )


def accumulators(enc: EncodedGenerator, layer: EncodedLayer) -> np.ndarray:
    """The int32 accumulators ``acc[o, i]`` of docs/synthesis.md §3 for one layer (the strategy's step)."""
    return generators.for_format(enc.format_name).accumulators(enc, layer)


def accumulator_scale(enc: EncodedGenerator, layer: EncodedLayer) -> float:
    """Real value of one unit of ``acc`` (§4), as the strategy defines it."""
    return generators.for_format(enc.format_name).accumulator_scale(enc, layer)


def synthesize(enc: EncodedGenerator, layer: EncodedLayer) -> tuple[np.ndarray, np.ndarray]:
    """int8 kernel (C_out, C_in) and float32 per-channel scales, exactly as the device makes them."""
    kernel, peaks = synthesis.finish_kernel(accumulators(enc, layer), layer.signs)
    scales = peaks * accumulator_scale(enc, layer) / synthesis.q_max(8) * layer.channel_factor
    scales = np.where(scales > 0, scales, 1.0).astype(np.float32)
    return kernel, scales
