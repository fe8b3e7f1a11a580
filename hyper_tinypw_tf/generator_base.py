"""What every generator strategy shares: the base classes, their registry and the common roles.

:class:`HyperGenerator` is the contract a strategy fills (docs/synthesis.md); :class:`MLPGenerator`
adds the micro-MLP steps the tiled and paper strategies share; :func:`register` makes a strategy
known by name. The strategies themselves live in ``generators.py`` (tiled, paper) and in files of
their own (``low_rank.py``); this module imports none of them, so a strategy file imports it
without a cycle. ``generators`` is the public table that imports them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import numpy as np
import tensorflow as tf

from hyper_tinypw_tf import kernels, sharing, synthesis
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.storage import (
    BIAS_BITS,
    GENERATOR,
    SYNTHESIS_PARAMS,
    StoredTensor,
)

PACKAGE = "hyper_tinypw_tf"

# The role every strategy's op ends with: one sign bit per output channel (docs/format.md §2).
ROLE_SIGNS = "signs"
# Roles of the micro-MLP strategies' common inputs.
ROLE_CODES = "codes"
ROLE_W1 = "w1"
ROLE_B1 = "b1"
ROLE_REQUANT = "requant"
HIDDEN = "hidden"  # key of a layer's hidden-activation scale s_h,l among its encoded scales (§4)

Stored = dict[str, np.ndarray]  # stored integer tensors by role (int4 unpacked)
Scales = dict[str, float]  # host-only: the real value of one unit, by role


# The TensorFlow ops tf_keras's generators have always used, under keras.ops' names (kernels.Strategy.ops).
TF_OPS = SimpleNamespace(
    matmul=tf.matmul, relu=tf.nn.relu, reshape=tf.reshape, transpose=tf.transpose, sign=tf.sign,
    floor=tf.floor, abs=tf.abs, clip=tf.clip_by_value, stop_gradient=tf.stop_gradient, where=tf.where,
    ones_like=tf.ones_like, max=lambda x, axis=None, keepdims=False: tf.reduce_max(x, axis=axis, keepdims=keepdims),
)


def quantize_variable(variable: tf.Variable, bits: int) -> tuple[np.ndarray, float]:
    """A float variable as stored integers and their per-tensor scale (§1)."""
    return synthesis.quantize_tensor(np.asarray(variable.numpy(), np.float64), bits)


# tf_keras's strategies and live generators (sharing.Family); its methods are this module's API.
FAMILY = sharing.Family("tf_keras")
STRATEGIES: dict[str, type[HyperGenerator]] = FAMILY.strategies
get = FAMILY.get
serialize = FAMILY.serialize
deserialize = FAMILY.deserialize
claim = FAMILY.claim
resolve = FAMILY.resolve


@keras.utils.register_keras_serializable(package=PACKAGE)
class _ClipCodes(kernels.ClipCodes, keras.constraints.Constraint):
    """Clip codes to ``[-limit, limit]`` after each update."""

    ops = TF_OPS


class HyperGenerator(kernels.Strategy, keras.layers.Layer):
    """Base of tf_keras's strategies: ``kernels.Strategy`` on TensorFlow ops, plus the integer contract.

    Args: see :class:`kernels.Strategy` (``code_bits``, ``weight_bits``, ``shared_name``).
    """

    # Wire names of this strategy's op variants (format.md's ``strategy`` option) → input roles in order.
    FORMATS: dict[str, tuple[str, ...]] = {}
    ops = TF_OPS
    family = FAMILY
    clip_codes = _ClipCodes

    def shared_tensors(self) -> list[StoredTensor]:
        """The stored tensors this generator adds once, however many layers share it.

        Named after the Keras layer name, which is deterministic for a given script (unlike the
        random ``shared_name``), so the exported file is reproducible run to run.
        """
        return []

    def layer_tensors(self, layer_name: str, c_in: int, c_out: int) -> list[StoredTensor]:
        """The stored tensors one layer adds: the strategy's, then its output-channel sign bits."""
        return [
            *self.strategy_layer_tensors(layer_name, c_in, c_out),
            StoredTensor(f"{layer_name}/signs", (c_out,), 1, SYNTHESIS_PARAMS, ROLE_SIGNS),
        ]

    def strategy_layer_tensors(self, layer_name: str, c_in: int, c_out: int) -> list[StoredTensor]:
        """The strategy's own per-layer tensors."""
        raise NotImplementedError

    def synthesis_macs(self, c_in: int, c_out: int) -> int:
        """Integer multiply-accumulates to make one ``c_out × c_in`` kernel (docs/synthesis.md §3)."""
        raise NotImplementedError

    # -- the integer contract (docs/synthesis.md, docs/format.md) -----------------------------
    @property
    def format_name(self) -> str:
        """The ``strategy`` option of this generator's op in a hyper file."""
        raise NotImplementedError

    def op_options(self) -> dict[str, int]:
        """The op's size options (docs/format.md §3): code_dim, hidden_dim, tile_size, code_bits, weight_bits."""
        raise NotImplementedError

    def input_roles(self) -> tuple[str, ...]:
        """The roles of the op's inputs, in the order the op takes them."""
        return self.FORMATS[self.format_name]

    def encode_shared(self) -> tuple[Stored, Scales]:
        """The shared variables as stored integers by role, and their scales (§1)."""
        return {}, {}

    def encode_layer_weights(self, weights: dict[str, tf.Variable], shared: Any) -> tuple[Stored, Scales]:
        """One layer's stored integers by role (sign bits excepted) and its scales; ``shared`` is
        the ``encode.EncodedGenerator`` of this generator."""
        raise NotImplementedError

    @classmethod
    def op_config(cls, format_name: str, tile_size: int, c_in: int,
                  input_shapes: Mapping[str, list[int]] | None = None) -> dict[str, Any]:
        """Constructor arguments, beyond the size options, of a generator that writes this op variant.

        ``input_shapes``: the file's input shapes by role, for sizes the file chooses (none by default).
        """
        return {}

    @classmethod
    def from_op(cls, options: Any, *, input_shapes: Mapping[str, list[int]] | None = None,
                name: str | None = None) -> HyperGenerator:
        """A generator shaped like a hyper file's op: its declared tensors are the op's inputs.

        ``options`` is the op's options record (``export.format.HyperOptions``: strategy, code_dim,
        hidden_dim, tile_size, c_in, code_bits, weight_bits).
        """
        raise NotImplementedError

    def check_stored(self, values: Mapping[str, np.ndarray]) -> None:
        """Raise ValueError, naming the input, if read integers break a range the synthesis relies on."""

    @staticmethod
    def accumulators(enc: Any, layer: Any) -> np.ndarray:
        """The int32 accumulators ``acc[o, i]`` of docs/synthesis.md §3 from encoded tensors."""
        raise NotImplementedError

    @staticmethod
    def accumulator_scale(enc: Any, layer: Any) -> float:
        """Real value of one unit of ``acc`` (§4)."""
        raise NotImplementedError



class MLPGenerator(kernels.MLPStrategy, HyperGenerator):
    """Base of the hypernetwork strategies (``kernels.MLPStrategy``) with their integer contract.

    Per layer it stores codes, a requantization multiplier for ``h`` and the sign bits.
    """

    def shared_tensors(self) -> list[StoredTensor]:
        wb = self.weight_bits
        return [
            StoredTensor(f"{self.name}/w1", (self.code_dim, self.hidden_dim), wb, GENERATOR, ROLE_W1),
            StoredTensor(f"{self.name}/b1", (self.hidden_dim,), BIAS_BITS, GENERATOR, ROLE_B1),
            *self.strategy_shared_tensors(),
        ]

    def strategy_shared_tensors(self) -> list[StoredTensor]:
        """Shared tensors beyond the micro-MLP's first layer."""
        return []

    def strategy_layer_tensors(self, layer_name: str, c_in: int, c_out: int) -> list[StoredTensor]:
        return [
            *self.mlp_layer_tensors(layer_name, c_in, c_out),
            StoredTensor(f"{layer_name}/requant", (2,), 32, SYNTHESIS_PARAMS, ROLE_REQUANT),
        ]

    def mlp_layer_tensors(self, layer_name: str, c_in: int, c_out: int) -> list[StoredTensor]:
        """The strategy's per-layer codes and heads."""
        raise NotImplementedError

    def op_options(self) -> dict[str, int]:
        return {"code_dim": self.code_dim, "hidden_dim": self.hidden_dim, "tile_size": 0,
                "code_bits": self.code_bits, "weight_bits": self.weight_bits}

    def encode_codes(self, codes: tf.Variable) -> np.ndarray:
        """A layer's codes as stored integers, on their fixed scale (§1)."""
        values = np.asarray(codes.numpy(), np.float64)
        return synthesis.quantize_tensor(values, self.code_bits, scale=self.code_scale())[0]

    def encode_shared(self) -> tuple[Stored, Scales]:
        w1, s_w1 = quantize_variable(self.w1, self.weight_bits)
        code_scale = self.code_scale()
        b1 = synthesis.quantize_bias(np.asarray(self.b1.numpy(), np.float64), code_scale * s_w1)
        own, own_scales = self.encode_strategy_shared()
        return {ROLE_W1: w1, ROLE_B1: b1, **own}, {ROLE_W1: s_w1, ROLE_CODES: code_scale, **own_scales}

    def encode_strategy_shared(self) -> tuple[Stored, Scales]:
        """The strategy's shared matrices beyond W1 and b1, as stored integers and scales."""
        return {}, {}

    def encode_layer_weights(self, weights: dict[str, tf.Variable], shared: Any) -> tuple[Stored, Scales]:
        tensors, scales = self.encode_mlp_layer(weights)
        acc1 = synthesis.dense(tensors[ROLE_CODES], shared.tensors[ROLE_W1], shared.tensors[ROLE_B1])
        requant, hidden_scale = _requant_for(acc1, shared.scales[ROLE_CODES] * shared.scales[ROLE_W1])
        return {**tensors, ROLE_REQUANT: np.array([requant.multiplier, requant.shift], np.int32)}, {
            **scales, HIDDEN: hidden_scale}

    def encode_mlp_layer(self, weights: dict[str, tf.Variable]) -> tuple[Stored, Scales]:
        """One layer's codes (and head) as stored integers, with the head's scale."""
        raise NotImplementedError

    @classmethod
    def from_op(cls, options, *, input_shapes=None, name=None):
        return cls(code_dim=options.code_dim, hidden_dim=options.hidden_dim, code_bits=options.code_bits,
                   weight_bits=options.weight_bits, name=name,
                   **cls.op_config(options.strategy, options.tile_size, options.c_in, input_shapes))

    def check_stored(self, values: Mapping[str, np.ndarray]) -> None:
        multiplier, shift = (int(v) for v in values[ROLE_REQUANT])
        if not 2**30 <= multiplier < 2**31 or not -31 <= shift <= 30:
            raise ValueError(
                f"input {ROLE_REQUANT!r} must hold a multiplier in [2^30, 2^31) and a shift in [-31, 30], "
                f"received multiplier={multiplier}, shift={shift}"
            )

    @staticmethod
    def requant(layer: Any) -> synthesis.Requant:
        """A layer's stored hidden requantization as ``synthesis.Requant``."""
        return synthesis.Requant(*(int(x) for x in layer.tensors[ROLE_REQUANT]))

def _requant_for(acc1: np.ndarray, base: float) -> tuple[synthesis.Requant, float]:
    """Per-layer hidden scale s_h,l = max(h)/q_max(8) and the multiplier s_z·s_W1/s_h,l (§4); ``base`` = s_z·s_W1."""
    peak = float(np.max(np.maximum(acc1, 0))) if acc1.size else 0.0
    hidden_scale = base * peak / synthesis.q_max(8) if peak > 0 else 1.0
    mult, shift = synthesis.quantize_multiplier(base / hidden_scale)
    return synthesis.Requant(mult, shift), hidden_scale


def register(cls: type[HyperGenerator]) -> type[HyperGenerator]:
    """Class decorator: make a strategy known by its ``strategy`` name (``get``, ``deserialize``, ``for_format``)."""
    return keras.utils.register_keras_serializable(package=PACKAGE)(FAMILY.register(cls))
