"""What the flash stores, tensor by tensor: the one place that turns shapes and bits into bytes.

Strategies, standard layers and the exporter all describe their stored numbers as
:class:`StoredTensor` records; accounting only sums them. No other module multiplies a shape
by a bit width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Components of the byte report, in print order.
STEM = "stem"
DEPTHWISE = "depthwise"
STORED_PW = "stored PW"
GENERATOR = "generator"
HEADS = "heads"
CODES = "codes"
SYNTHESIS_PARAMS = "synthesis params"
BIASES_SCALES = "biases and per-channel scales"
CLASSIFIER = "classifier"
COMPONENTS = (
    STEM, DEPTHWISE, STORED_PW, GENERATOR, HEADS, CODES, SYNTHESIS_PARAMS, BIASES_SCALES, CLASSIFIER,
)
# What the generated representation costs, compared against the PW bytes it replaces.
GENERATED_COMPONENTS = (GENERATOR, HEADS, CODES, SYNTHESIS_PARAMS)

# Per-output-channel metadata of an integer conv/dense: an int32 bias and a float32 scale.
BIAS_BITS = 32
SCALE_BITS = 32


@dataclass(frozen=True)
class StoredTensor:
    """One tensor as it sits in flash: its shape, the bits per element, its component and role."""

    name: str
    shape: tuple[int, ...]
    bits: int
    component: str
    role: str = ""  # a generated layer's input it is (docs/format.md §3), "" for other tensors
    # Values kept in another tensor's quantization parameters, not in a buffer of their own (the
    # per-channel scales of an integer layer live in its kernel tensor's): that tensor's name.
    scales_of: str = ""

    def __post_init__(self) -> None:
        if self.bits not in (*range(1, 9), 32):
            raise ValueError(f"StoredTensor {self.name!r}: bits must be 1 to 8 or 32, received {self.bits}")
        if any(d <= 0 for d in self.shape):
            raise ValueError(f"StoredTensor {self.name!r}: non-positive dimension in shape {self.shape}")

    @property
    def count(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Packed size in bytes: sub-byte elements are packed, the last byte padded."""
        return -(-self.count * self.bits // 8)


def channel_metadata(name: str, channels: int, scales: int) -> list[StoredTensor]:
    """The int32 bias (one per output channel) and float32 weight scales of an integer layer.

    Every exported conv and dense carries a bias, BatchNorm folded in or zeros.
    """
    return [
        StoredTensor(f"{name}/bias", (channels,), BIAS_BITS, BIASES_SCALES),
        StoredTensor(f"{name}/scale", (scales,), SCALE_BITS, BIASES_SCALES, scales_of=f"{name}/kernel"),
    ]
