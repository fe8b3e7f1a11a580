"""The ``low_rank`` strategy: ``K = U·V`` per layer, int8 (or int4) factors, no generator at all.

A baseline for what a hypernetwork adds: each layer stores its kernel as the product of a
``C_out × r`` factor ``U`` (one code of ``r`` numbers per output channel, ``code_bits``) and an
``r × C_in`` factor ``V`` (``weight_bits``); nothing is shared between layers, there is no
micro-MLP and no requantization. The device sums ``acc[o, i] = Σ_r U[o, r]·V[r, i]`` in int32 and
finishes like every strategy (``synthesis.finish_kernel``). This file is the whole strategy on the
host (its float kernel: ``kernels.LowRankStrategy``);
``tflm_harness/core/htpw_low_rank.c`` is its C function.
"""

from __future__ import annotations

import numpy as np

from hyper_tinypw_tf import kernels, synthesis
from hyper_tinypw_tf.generator_base import ROLE_SIGNS, HyperGenerator, quantize_variable, register
from hyper_tinypw_tf.storage import CODES, HEADS, StoredTensor


def low_rank_accumulators(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Integer step (docs/synthesis.md §3): ``acc = U·V`` in int32, exact for ``r ≤ MAX_DENSE_TERMS``."""
    return synthesis.dense(u, v)


@register
class LowRankGenerator(kernels.LowRankStrategy, HyperGenerator):
    __doc__ = kernels.LowRankStrategy.__doc__

    FORMAT = "low_rank"
    ROLE_U = "u"
    ROLE_V = "v"
    FORMATS = {FORMAT: (ROLE_U, ROLE_V, ROLE_SIGNS)}

    def strategy_layer_tensors(self, layer_name, c_in, c_out):
        return [
            StoredTensor(f"{layer_name}/u", (c_out, self.rank), self.code_bits, CODES, self.ROLE_U),
            StoredTensor(f"{layer_name}/v", (self.rank, c_in), self.weight_bits, HEADS, self.ROLE_V),
        ]

    def synthesis_macs(self, c_in, c_out):
        return c_out * self.rank * c_in

    @property
    def format_name(self) -> str:
        return self.FORMAT

    def op_options(self) -> dict[str, int]:
        return {"code_dim": self.rank, "hidden_dim": self.rank, "tile_size": 0,
                "code_bits": self.code_bits, "weight_bits": self.weight_bits}

    def encode_layer_weights(self, weights, shared):
        u, s_u = quantize_variable(weights["u"], self.code_bits)
        v, s_v = quantize_variable(weights["v"], self.weight_bits)
        return {self.ROLE_U: u, self.ROLE_V: v}, {self.ROLE_U: s_u, self.ROLE_V: s_v}

    @classmethod
    def from_op(cls, options, *, input_shapes=None, name=None):
        return cls(rank=options.hidden_dim, code_bits=options.code_bits, weight_bits=options.weight_bits, name=name)

    @staticmethod
    def accumulators(enc, layer):
        return low_rank_accumulators(layer.tensors[LowRankGenerator.ROLE_U], layer.tensors[LowRankGenerator.ROLE_V])

    @staticmethod
    def accumulator_scale(enc, layer):
        return layer.scales[LowRankGenerator.ROLE_U] * layer.scales[LowRankGenerator.ROLE_V]
