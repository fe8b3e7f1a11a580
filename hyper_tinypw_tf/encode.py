"""Host side of docs/synthesis.md: a trained generator and layer → the integer tensors a device stores.

``encode_generator`` and ``encode_layer`` quantize float Keras weights by the rules of §1 and §4,
as the layer's strategy defines them, into stored tensors by role; ``synthesize`` runs the
strategy's numpy integer step (``synthesis.py``) on the result and returns the int8 kernel with its
per-channel float scales. The exporter, ``expand`` and the tests all use these functions, so there
is one path from weights to kernel bytes. Nothing here knows a strategy or a role but the sign bits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from hyper_tinypw_tf import generators, synthesis
from hyper_tinypw_tf.generators import HyperGenerator
from hyper_tinypw_tf.layers import HyperPWConv2D


@dataclass(frozen=True)
class EncodedGenerator:
    """A generator's shared tensors as stored (integers by role, int4 unpacked) and its op options."""

    format_name: str  # the op variant (``HyperGenerator.format_name``)
    options: Mapping[str, int]  # the op's size options (``HyperGenerator.op_options``)
    tensors: Mapping[str, np.ndarray]  # shared stored tensors by role
    scales: Mapping[str, float] = field(default_factory=dict)  # host-only; empty when read from a file


@dataclass(frozen=True)
class EncodedLayer:
    """One generated layer's stored tensors by role (sign bits included), plus the host-only numbers for
    its output scales."""

    name: str
    c_in: int
    c_out: int
    tensors: Mapping[str, np.ndarray]
    scales: Mapping[str, float] = field(default_factory=dict)  # host-only, as the strategy names them
    channel_factor: np.ndarray | None = None  # |g_o|: BatchNorm folded in (ones without BN)

    @property
    def signs(self) -> np.ndarray:
        """The packed sign bits of the output channels."""
        return self.tensors[generators.ROLE_SIGNS]


def encode_generator(generator: HyperGenerator) -> EncodedGenerator:
    """Quantize a built generator's shared variables (§1)."""
    if not generator.built:
        raise ValueError(f"encode_generator: generator {generator.shared_name!r} is not built")
    tensors, scales = generator.encode_shared()
    return EncodedGenerator(generator.format_name, generator.op_options(), tensors, scales)


def encode_layer(
    layer: HyperPWConv2D, enc: EncodedGenerator, channel_factor: np.ndarray | None = None
) -> EncodedLayer:
    """Quantize one layer's own tensors; ``channel_factor`` is BatchNorm's per-channel gain."""
    if not layer.built:
        raise ValueError(f"encode_layer: layer {layer.name!r} is not built")
    c_in, c_out = layer.in_channels, layer.filters
    factor = np.ones(c_out) if channel_factor is None else np.asarray(channel_factor, np.float64)
    if factor.shape != (c_out,):
        raise ValueError(f"encode_layer: channel_factor for {layer.name!r} needs shape ({c_out},), got {factor.shape}")
    tensors, scales = layer.generator.encode_layer_weights(layer.synthesis_weights, enc)
    signs = {generators.ROLE_SIGNS: synthesis.pack_signs(factor < 0)}
    return EncodedLayer(layer.name, c_in, c_out, {**tensors, **signs}, scales, np.abs(factor))


def from_stored(generator: HyperGenerator, name: str, c_in: int, c_out: int,
                values: Mapping[str, np.ndarray]) -> tuple[EncodedGenerator, EncodedLayer]:
    """The encoded generator and layer of stored integers read back by role (e.g. from a hyper file).

    ``generator`` declares which roles are shared; no scales exist, so only the integer kernel can be made.
    """
    shared = {r.role for r in generator.shared_tensors()}
    enc = EncodedGenerator(generator.format_name, generator.op_options(),
                           {role: v for role, v in values.items() if role in shared})
    layer = EncodedLayer(name, c_in, c_out, {role: v for role, v in values.items() if role not in shared})
    return enc, layer


def accumulators(enc: EncodedGenerator, layer: EncodedLayer) -> np.ndarray:
    """The int32 accumulators ``acc[o, i]`` of docs/synthesis.md §3 for one layer (the strategy's step)."""
    return generators.for_format(enc.format_name).accumulators(enc, layer)


def accumulator_scale(enc: EncodedGenerator, layer: EncodedLayer) -> float:
    """Real value of one unit of ``acc`` (§4), as the strategy defines it."""
    return generators.for_format(enc.format_name).accumulator_scale(enc, layer)


def integer_kernel(enc: EncodedGenerator, layer: EncodedLayer) -> tuple[np.ndarray, np.ndarray]:
    """The int8 kernel (C_out, C_in) the device makes, and each row's accumulator peak."""
    return synthesis.finish_kernel(accumulators(enc, layer), layer.signs)


def synthesize(enc: EncodedGenerator, layer: EncodedLayer) -> tuple[np.ndarray, np.ndarray]:
    """int8 kernel (C_out, C_in) and float32 per-channel scales, exactly as the device makes them."""
    kernel, peaks = integer_kernel(enc, layer)
    scales = peaks * accumulator_scale(enc, layer) / synthesis.q_max(8) * layer.channel_factor
    scales = np.where(scales > 0, scales, 1.0).astype(np.float32)
    return kernel, scales
