"""Generator strategies: what turns a layer's stored numbers into its PW kernel.

A strategy is one class (:class:`HyperGenerator`'s subclasses) that owns its whole contract: the
float kernel for training (docs/synthesis.md step by step; with ``quantize=True`` it simulates the
stored precision), the stored tensors it declares (:class:`StoredTensor` records with a ``role``,
all the byte accounting and the exporter know about it), its format name and input order, the
integer encoding of its variables, the numpy synthesis step, and its limits, checked at
construction. ``encode``, ``export/hyper``, ``export/expand`` and the byte report only ask it.
Adding a strategy is one new class (e.g. ``hyper_tinypw_tf/low_rank.py``) plus its C function.

Sharing is explicit: pass one generator instance to several layers. A generator's config carries
a ``shared_name``; when layers are rebuilt from config (``from_config``, ``clone_model``, model
loading, tfmot's ``quantize_apply``) :func:`resolve` hands every layer of the rebuilt model the
same new instance, so a model always holds exactly one set of generator variables.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from hyper_tinypw_tf import synthesis
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.storage import (
    BIAS_BITS,
    CODES,
    GENERATOR,
    HEADS,
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


def _fake_quant(x: tf.Tensor, scale: tf.Tensor, limit: float, low: float | None = None) -> tf.Tensor:
    """Round ``x`` to the grid ``scale · q`` (half away from zero), straight-through gradient."""
    scaled = x / scale
    q = tf.sign(scaled) * tf.floor(tf.abs(scaled) + 0.5)
    q = tf.clip_by_value(q, -limit if low is None else low, limit)
    return x + tf.stop_gradient(q * scale - x)


def _tensor_scale(x: tf.Tensor, limit: float) -> tf.Tensor:
    """Symmetric per-tensor scale of docs/synthesis.md §1, as a constant for the gradient."""
    peak = tf.stop_gradient(tf.reduce_max(tf.abs(x)))
    return tf.where(peak > 0, peak / limit, tf.ones_like(peak))


def fake_quant_weight(w: tf.Tensor, bits: int) -> tf.Tensor:
    """Simulate a symmetric narrow-range per-tensor weight of ``bits`` bits."""
    limit = float(synthesis.q_max(bits))
    return _fake_quant(w, _tensor_scale(w, limit), limit)


def fake_quant_channels(kernel: tf.Tensor) -> tf.Tensor:
    """Simulate ``channel_quantize``: int8 per output row (axis 0), peak at ±q_max(8)."""
    limit = float(synthesis.q_max(8))
    peak = tf.stop_gradient(tf.reduce_max(tf.abs(kernel), axis=1, keepdims=True))
    scale = tf.where(peak > 0, peak / limit, tf.ones_like(peak))
    return _fake_quant(kernel, scale, limit)


def quantize_variable(variable: tf.Variable, bits: int) -> tuple[np.ndarray, float]:
    """A float variable as stored integers and their per-tensor scale (§1)."""
    return synthesis.quantize_tensor(np.asarray(variable.numpy(), np.float64), bits)


def _positive(arg: str, value: Any, limit: int) -> None:
    """Raise unless ``value`` is an integer in [1, limit], naming the argument."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{arg} must be a positive integer, received {arg}={value!r}")
    if value > limit:
        raise ValueError(f"{arg} must be at most {limit}, received {arg}={value}")


class HyperGenerator(keras.layers.Layer):
    """Base of the strategies: stored bit widths, sharing identity, and the contract they fill in.

    Args:
      code_bits: stored bits of the per-layer codes (8, or 4 packed two per byte).
      weight_bits: stored bits of the other matrices (8 or 4).
      shared_name: identity of this generator across serialization; unique by default.
    """

    strategy: str = ""
    # Wire names of this strategy's op variants (format.md's ``strategy`` option) → input roles in order.
    FORMATS: dict[str, tuple[str, ...]] = {}

    def __init__(self, code_bits: int = 8, weight_bits: int = 8, shared_name: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for arg, value in (("code_bits", code_bits), ("weight_bits", weight_bits)):
            if value not in (4, 8):
                raise ValueError(f"{arg} must be 4 or 8, received {arg}={value!r}")
        self.code_bits = int(code_bits)
        self.weight_bits = int(weight_bits)
        self.shared_name = shared_name or f"{self.strategy}_{uuid.uuid4().hex[:12]}"
        _REGISTRY.append((weakref.ref(self), set()))

    # -- shared variables -------------------------------------------------------------------
    def build(self, input_shape: Any = None) -> None:
        """Create the shared variables; they do not depend on any layer's shape."""
        self.build_strategy()
        super().build(input_shape)

    def build_strategy(self) -> None:
        """Create the strategy's shared variables (none by default)."""

    def quantize_weight(self, w: tf.Tensor, quantize: bool, bits: int | None = None) -> tf.Tensor:
        """A stored matrix as the device sees it when ``quantize`` (``weight_bits`` unless ``bits``)."""
        return fake_quant_weight(w, self.weight_bits if bits is None else bits) if quantize else w

    # -- per-layer interface ----------------------------------------------------------------
    def validate_layer(self, c_in: int, c_out: int, layer_name: str) -> None:
        """Raise ValueError if a layer of this shape cannot share this generator."""

    def create_layer_weights(self, layer: keras.layers.Layer, c_in: int, c_out: int) -> dict[str, tf.Variable]:
        """Create the per-layer variables on ``layer``; returns them by name."""
        raise NotImplementedError

    def kernel(self, weights: dict[str, tf.Variable], c_in: int, c_out: int, quantize: bool = False) -> tf.Tensor:
        """The generated kernel ``K[o, i]`` of shape (C_out, C_in)."""
        raise NotImplementedError

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
    def from_op(cls, format_name: str, code_dim: int, hidden_dim: int, tile_size: int, c_in: int, *,
                code_bits: int = 8, weight_bits: int = 8, input_shapes: Mapping[str, list[int]] | None = None,
                name: str | None = None) -> HyperGenerator:
        """A generator shaped like a hyper file's op: its declared tensors are the op's inputs."""
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

    # -- serialization ----------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(code_bits=self.code_bits, weight_bits=self.weight_bits, shared_name=self.shared_name)
        return config

    def structure(self) -> dict[str, Any]:
        """The config without the Keras layer name: what must agree for two layers to share."""
        return _structure(self.get_config())


def _structure(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in ("name", "trainable", "dtype")}


@keras.utils.register_keras_serializable(package=PACKAGE)
class _ClipCodes(keras.constraints.Constraint):
    """Clip codes to ``[-limit, limit]`` after each update."""

    def __init__(self, limit: float = 1.0) -> None:
        self.limit = float(limit)

    def __call__(self, w: tf.Tensor) -> tf.Tensor:
        return tf.clip_by_value(w, -self.limit, self.limit)

    def get_config(self) -> dict[str, Any]:
        return {"limit": self.limit}


class MLPGenerator(HyperGenerator):
    """Base of the hypernetwork strategies: codes into the shared micro-MLP ``h = relu(z·W1 + b1)``.

    Per layer it stores codes, a requantization multiplier for ``h`` and the sign bits.

    Args:
      code_dim: ``d_z``, length of one code.
      hidden_dim: ``d_h``, width of the shared hidden layer.
      code_range: codes are clipped to ``[-code_range, code_range]``; their fixed scale is
        ``code_range / q_max(code_bits)``.
      **kwargs: see :class:`HyperGenerator`.
    """

    def __init__(self, code_dim: int = 4, hidden_dim: int = 32, code_range: float = 1.0, **kwargs: Any) -> None:
        _positive("code_dim", code_dim, synthesis.MAX_DENSE_TERMS)
        _positive("hidden_dim", hidden_dim, synthesis.MAX_DENSE_TERMS)
        if not code_range > 0:
            raise ValueError(f"code_range must be positive, received code_range={code_range!r}")
        self.code_dim = int(code_dim)
        self.hidden_dim = int(hidden_dim)
        self.code_range = float(code_range)
        super().__init__(**kwargs)

    def build(self, input_shape: Any = None) -> None:
        self.w1 = self.add_weight(
            "w1", (self.code_dim, self.hidden_dim), initializer="glorot_uniform", trainable=True
        )
        self.b1 = self.add_weight("b1", (self.hidden_dim,), initializer="zeros", trainable=True)
        super().build(input_shape)

    def code_scale(self) -> float:
        """Fixed scale of the stored codes."""
        return self.code_range / synthesis.q_max(self.code_bits)

    def code_constraint(self) -> keras.constraints.Constraint:
        """Keeps codes inside the range their fixed scale can represent."""
        return _ClipCodes(self.code_range)

    def add_codes(self, layer: keras.layers.Layer, name: str, count: int) -> tf.Variable:
        """``count`` codes of ``d_z`` numbers on ``layer``, with its initializer and regularizer."""
        return layer.add_weight(
            name, (count, self.code_dim), initializer=layer.code_initializer, regularizer=layer.code_regularizer,
            constraint=self.code_constraint(), trainable=True,
        )

    def hidden_activation(self, codes: tf.Tensor, quantize: bool) -> tf.Tensor:
        """Step 1: ``relu(z·W1 + b1)``, int8-simulated when ``quantize``."""
        w1, b1 = self.w1, self.b1
        if quantize:
            codes = _fake_quant(codes, self.code_scale(), float(synthesis.q_max(self.code_bits)))
            w1 = fake_quant_weight(w1, self.weight_bits)
            bias_scale = self.code_scale() * _tensor_scale(self.w1, float(synthesis.q_max(self.weight_bits)))
            b1 = _fake_quant(b1, bias_scale, float(synthesis.INT32_MAX))
        h = tf.nn.relu(tf.matmul(codes, w1) + b1)
        if quantize:
            limit = float(synthesis.q_max(8))
            h = _fake_quant(h, _tensor_scale(h, limit), limit, low=0.0)
        return h

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
    def from_op(cls, format_name, code_dim, hidden_dim, tile_size, c_in, *, code_bits=8, weight_bits=8,
                input_shapes=None, name=None):
        return cls(code_dim=code_dim, hidden_dim=hidden_dim, code_bits=code_bits, weight_bits=weight_bits,
                   name=name, **cls.op_config(format_name, tile_size, c_in, input_shapes))

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

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(code_dim=self.code_dim, hidden_dim=self.hidden_dim, code_range=self.code_range)
        return config


def _requant_for(acc1: np.ndarray, base: float) -> tuple[synthesis.Requant, float]:
    """Per-layer hidden scale s_h,l = max(h)/q_max(8) and the multiplier s_z·s_W1/s_h,l (§4); ``base`` = s_z·s_W1."""
    peak = float(np.max(np.maximum(acc1, 0))) if acc1.size else 0.0
    hidden_scale = base * peak / synthesis.q_max(8) if peak > 0 else 1.0
    mult, shift = synthesis.quantize_multiplier(base / hidden_scale)
    return synthesis.Requant(mult, shift), hidden_scale


STRATEGIES: dict[str, type[HyperGenerator]] = {}


def register(cls: type[HyperGenerator]) -> type[HyperGenerator]:
    """Class decorator: make a strategy known by its ``strategy`` name (``get``, ``deserialize``, ``for_format``)."""
    if not cls.strategy or cls.strategy in STRATEGIES:
        raise ValueError(f"strategy name {cls.strategy!r} of {cls.__name__} is empty or taken")
    STRATEGIES[cls.strategy] = cls
    return keras.utils.register_keras_serializable(package=PACKAGE)(cls)


@register
class TiledGenerator(MLPGenerator):
    """Tiles of ``b × b`` kernel entries, each made from its own code (HyperNetworks-style).

    One generator serves layers of any shape: a layer stores ``⌈C_out/b⌉·⌈C_in/b⌉`` codes of
    ``d_z`` numbers instead of ``C_out·C_in`` weights.

    Args:
      tile_size: ``b``.
      pad: allow kernels whose sides are not multiples of ``b``; the padding tiles' codes are
        stored and counted. With ``pad=False`` such a layer is refused.
      **kwargs: see :class:`MLPGenerator`.
    """

    strategy = "tiled"
    FORMAT = "tiled"
    ROLE_W2 = "w2"
    FORMATS = {FORMAT: (ROLE_CODES, ROLE_W1, ROLE_B1, ROLE_W2, ROLE_REQUANT, ROLE_SIGNS)}

    def __init__(self, tile_size: int = 8, pad: bool = True, **kwargs: Any) -> None:
        if not isinstance(tile_size, (int, np.integer)) or tile_size <= 0:
            raise ValueError(f"tile_size must be a positive integer, received tile_size={tile_size!r}")
        if tile_size > synthesis.MAX_TILE_SIZE:
            raise ValueError(
                f"tile_size must be at most {synthesis.MAX_TILE_SIZE} (the device's limit, docs/synthesis.md §5), "
                f"received tile_size={tile_size}"
            )
        self.tile_size = int(tile_size)
        self.pad = bool(pad)
        super().__init__(**kwargs)

    def build_strategy(self) -> None:
        b2 = self.tile_size * self.tile_size
        self.w2 = self.add_weight("w2", (self.hidden_dim, b2), initializer="glorot_uniform", trainable=True)

    def validate_layer(self, c_in: int, c_out: int, layer_name: str) -> None:
        if not self.pad:
            for arg, value in (("input channels", c_in), ("filters", c_out)):
                if value % self.tile_size:
                    raise ValueError(
                        f"Layer {layer_name!r}: {arg}={value} is not a multiple of the generator's "
                        f"tile_size={self.tile_size} and pad=False; use pad=True or another tile_size."
                    )

    def grid(self, c_in: int, c_out: int) -> tuple[int, int]:
        """Tile rows and columns of a ``c_out × c_in`` kernel."""
        return synthesis.tile_grid(c_out, c_in, self.tile_size)

    def create_layer_weights(self, layer, c_in, c_out):
        rows, cols = self.grid(c_in, c_out)
        return {"codes": self.add_codes(layer, "codes", rows * cols)}

    def kernel(self, weights, c_in, c_out, quantize=False):
        rows, cols, b = *self.grid(c_in, c_out), self.tile_size
        h = self.hidden_activation(weights["codes"], quantize)
        tiles = tf.matmul(h, self.quantize_weight(self.w2, quantize))  # (tiles, b*b)
        grid = tf.transpose(tf.reshape(tiles, (rows, cols, b, b)), (0, 2, 1, 3))
        return tf.reshape(grid, (rows * b, cols * b))[:c_out, :c_in]

    def strategy_shared_tensors(self):
        b2 = self.tile_size * self.tile_size
        return [StoredTensor(f"{self.name}/w2", (self.hidden_dim, b2), self.weight_bits, GENERATOR, self.ROLE_W2)]

    def mlp_layer_tensors(self, layer_name, c_in, c_out):
        rows, cols = self.grid(c_in, c_out)
        return [StoredTensor(f"{layer_name}/codes", (rows * cols, self.code_dim), self.code_bits, CODES, ROLE_CODES)]

    def synthesis_macs(self, c_in, c_out):
        rows, cols = self.grid(c_in, c_out)
        return rows * cols * (self.code_dim * self.hidden_dim + self.hidden_dim * self.tile_size**2)

    @property
    def format_name(self) -> str:
        return self.FORMAT

    def op_options(self):
        return {**super().op_options(), "tile_size": self.tile_size}

    def encode_strategy_shared(self):
        w2, s_w2 = quantize_variable(self.w2, self.weight_bits)
        return {self.ROLE_W2: w2}, {self.ROLE_W2: s_w2}

    def encode_mlp_layer(self, weights):
        return {ROLE_CODES: self.encode_codes(weights["codes"])}, {}

    @classmethod
    def op_config(cls, format_name, tile_size, c_in, input_shapes=None):
        return {"tile_size": tile_size}

    @staticmethod
    def accumulators(enc, layer):
        return synthesis.tiled_accumulators(
            layer.tensors[ROLE_CODES], enc.tensors[ROLE_W1], enc.tensors[ROLE_B1], enc.tensors[TiledGenerator.ROLE_W2],
            MLPGenerator.requant(layer), layer.c_out, layer.c_in, enc.options["tile_size"],
        )

    @staticmethod
    def accumulator_scale(enc, layer):
        return layer.scales[HIDDEN] * enc.scales[TiledGenerator.ROLE_W2]

    def get_config(self):
        config = super().get_config()
        config.update(tile_size=self.tile_size, pad=self.pad)
        return config


@register
class PaperGenerator(MLPGenerator):
    """HyperTinyPW's generator: one code per layer, a shared micro-MLP, a head per layer.

    ``head="dense"`` maps ``h_l`` to the whole kernel with a per-layer matrix of
    ``d_h · C_out · C_in`` numbers: larger than the kernel it makes, counted honestly.
    ``head="factorized"`` makes ``K = A_l · diag(h_l) · B[:, :C_in]`` with a per-layer
    ``A_l`` of ``C_out · d_h`` numbers and one ``B`` of ``d_h · max_in_channels`` shared by all.

    Args:
      head: "dense" or "factorized".
      max_in_channels: width of the shared factor ``B`` (factorized head only); a layer with
        more input channels cannot share this generator.
      **kwargs: see :class:`MLPGenerator`.
    """

    strategy = "paper"
    DENSE = "dense"
    FACTORIZED = "factorized"
    FORMAT_DENSE = "paper_dense"
    FORMAT_FACTORIZED = "paper_factorized"
    ROLE_HEAD = "head"
    ROLE_B_SHARED = "b_shared"
    FORMATS = {
        FORMAT_DENSE: (ROLE_CODES, ROLE_W1, ROLE_B1, ROLE_HEAD, ROLE_REQUANT, ROLE_SIGNS),
        FORMAT_FACTORIZED: (ROLE_CODES, ROLE_W1, ROLE_B1, ROLE_HEAD, ROLE_B_SHARED, ROLE_REQUANT, ROLE_SIGNS),
    }

    def __init__(self, head: str = FACTORIZED, max_in_channels: int = 512, **kwargs: Any) -> None:
        if head not in (self.DENSE, self.FACTORIZED):
            raise ValueError(f"head must be {self.DENSE!r} or {self.FACTORIZED!r}, received head={head!r}")
        if not isinstance(max_in_channels, (int, np.integer)) or max_in_channels <= 0:
            raise ValueError(
                f"max_in_channels must be a positive integer, received max_in_channels={max_in_channels!r}"
            )
        self.head = head
        self.max_in_channels = int(max_in_channels)
        super().__init__(**kwargs)
        if head == self.FACTORIZED and self.hidden_dim > synthesis.MAX_FACTOR_RANK:
            raise ValueError(
                f"hidden_dim must be at most {synthesis.MAX_FACTOR_RANK} with head={self.FACTORIZED!r}, "
                f"received hidden_dim={self.hidden_dim}"
            )

    @property
    def dense(self) -> bool:
        """Whether the head is the dense one (no shared factor B)."""
        return self.head == self.DENSE

    def build_strategy(self) -> None:
        if not self.dense:
            self.b_shared = self.add_weight(
                "b_shared", (self.hidden_dim, self.max_in_channels), initializer="glorot_uniform", trainable=True
            )

    def validate_layer(self, c_in, c_out, layer_name):
        if not self.dense and c_in > self.max_in_channels:
            raise ValueError(
                f"Layer {layer_name!r}: input channels={c_in} exceed the shared generator's "
                f"max_in_channels={self.max_in_channels}; these layers have incompatible configs "
                "for one generator."
            )

    def _head_shape(self, c_in: int, c_out: int) -> tuple[int, int]:
        return (self.hidden_dim, c_out * c_in) if self.dense else (c_out, self.hidden_dim)

    def create_layer_weights(self, layer, c_in, c_out):
        code = self.add_codes(layer, "code", 1)
        head = layer.add_weight("head", self._head_shape(c_in, c_out), initializer="glorot_uniform", trainable=True)
        return {"code": code, "head": head}

    def kernel(self, weights, c_in, c_out, quantize=False):
        h = self.hidden_activation(weights["code"], quantize)  # (1, d_h)
        head = self.quantize_weight(weights["head"], quantize)
        if self.dense:
            return tf.reshape(tf.matmul(h, head), (c_out, c_in))
        b_shared = self.quantize_weight(self.b_shared, quantize)[:, :c_in]
        return tf.matmul(head * h, b_shared)

    def strategy_shared_tensors(self):
        if self.dense:
            return []
        shape = (self.hidden_dim, self.max_in_channels)
        return [StoredTensor(f"{self.name}/b_shared", shape, self.weight_bits, GENERATOR, self.ROLE_B_SHARED)]

    def mlp_layer_tensors(self, layer_name, c_in, c_out):
        return [
            StoredTensor(f"{layer_name}/code", (1, self.code_dim), self.code_bits, CODES, ROLE_CODES),
            StoredTensor(f"{layer_name}/head", self._head_shape(c_in, c_out), self.weight_bits, HEADS, self.ROLE_HEAD),
        ]

    def synthesis_macs(self, c_in, c_out):
        mlp = self.code_dim * self.hidden_dim
        if self.dense:
            return mlp + self.hidden_dim * c_out * c_in
        return mlp + c_out * self.hidden_dim * (1 + c_in)

    @property
    def format_name(self) -> str:
        return self.FORMAT_DENSE if self.dense else self.FORMAT_FACTORIZED

    @classmethod
    def op_config(cls, format_name, tile_size, c_in, input_shapes=None):
        if format_name == cls.FORMAT_DENSE:
            return {"head": cls.DENSE, "max_in_channels": c_in}
        shape = list((input_shapes or {}).get(cls.ROLE_B_SHARED, []))
        cols = shape[1] if len(shape) == 2 and shape[1] > 0 else c_in
        if cols < c_in:
            raise ValueError(f"input {cls.ROLE_B_SHARED!r} has {cols} columns, fewer than c_in={c_in}")
        return {"head": cls.FACTORIZED, "max_in_channels": cols}

    def encode_mlp_layer(self, weights):
        head, head_scale = quantize_variable(weights["head"], self.weight_bits)
        return {ROLE_CODES: self.encode_codes(weights["code"]), self.ROLE_HEAD: head}, {self.ROLE_HEAD: head_scale}

    def encode_strategy_shared(self):
        if self.dense:
            return {}, {}
        b_shared, scale = quantize_variable(self.b_shared, self.weight_bits)
        return {self.ROLE_B_SHARED: b_shared}, {self.ROLE_B_SHARED: scale}

    @staticmethod
    def accumulators(enc, layer):
        p = PaperGenerator
        codes, head, requant = layer.tensors[ROLE_CODES], layer.tensors[p.ROLE_HEAD], MLPGenerator.requant(layer)
        w1, b1 = enc.tensors[ROLE_W1], enc.tensors[ROLE_B1]
        if enc.format_name == p.FORMAT_DENSE:
            return synthesis.paper_dense_accumulators(codes, w1, b1, head, requant, layer.c_out, layer.c_in)
        return synthesis.paper_factorized_accumulators(
            codes, w1, b1, head, enc.tensors[p.ROLE_B_SHARED], requant, layer.c_out, layer.c_in
        )

    @staticmethod
    def accumulator_scale(enc, layer):
        p = PaperGenerator
        if enc.format_name == p.FORMAT_DENSE:
            return layer.scales[HIDDEN] * layer.scales[p.ROLE_HEAD]
        return layer.scales[p.ROLE_HEAD] * layer.scales[HIDDEN] * enc.scales[p.ROLE_B_SHARED]

    def get_config(self):
        config = super().get_config()
        config.update(head=self.head, max_in_channels=self.max_in_channels)
        return config


def for_format(format_name: str) -> type[HyperGenerator]:
    """The strategy class whose op variant is ``format_name`` (a hyper file's ``strategy`` option)."""
    for cls in STRATEGIES.values():
        if format_name in cls.FORMATS:
            return cls
    raise ValueError(f"no strategy writes the op variant {format_name!r}")


# Every live generator with the names of the layers that use it (see resolve()).
# Process-global because tf_keras offers no per-rebuild scope that would carry a shared
# non-layer object from one layer's from_config to the next: clone_model runs under
# DisableSharedObjectScope (tf_keras/src/models/cloning.py), tfmot's quantize_apply rebuilds
# through clone_model, and ObjectSharingScope / SharedObjectLoadingScope exist only inside
# the .keras / legacy H5 loaders. Weak references keep it from holding models alive.
_REGISTRY: list[tuple[weakref.ref[HyperGenerator], set[str]]] = []


def get(identifier: str | dict[str, Any] | HyperGenerator) -> HyperGenerator:
    """A new generator from a strategy name or config dict, or the instance itself."""
    if isinstance(identifier, HyperGenerator):
        return identifier
    if isinstance(identifier, str):
        if identifier not in STRATEGIES:
            raise ValueError(f"generator must be one of {sorted(STRATEGIES)}, received generator={identifier!r}")
        return STRATEGIES[identifier]()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(
        "generator must be a strategy name, a config dict or a HyperGenerator, "
        f"received generator={identifier!r}"
    )


def serialize(generator: HyperGenerator) -> dict[str, Any]:
    """``{"strategy": ..., "config": ...}``, the form stored in a layer's config."""
    return {"strategy": generator.strategy, "config": generator.get_config()}


def deserialize(spec: dict[str, Any]) -> HyperGenerator:
    """A new generator from :func:`serialize`'s output (no sharing lookup)."""
    if not isinstance(spec, dict) or spec.get("strategy") not in STRATEGIES:
        raise ValueError(
            f"generator config must name a strategy in {sorted(STRATEGIES)}, received generator={spec!r}"
        )
    return STRATEGIES[spec["strategy"]].from_config(dict(spec.get("config", {})))


def _claims(generator: HyperGenerator) -> set[str]:
    for ref, names in _REGISTRY:
        if ref() is generator:
            return names
    raise RuntimeError(f"generator {generator.shared_name!r} is not registered")


def claim(generator: HyperGenerator, layer_name: str) -> None:
    """Record that the layer ``layer_name`` uses ``generator``."""
    _claims(generator).add(layer_name)


def resolve(identifier: Any, layer_name: str) -> HyperGenerator:
    """The generator a layer named ``layer_name`` uses, sharing by ``shared_name``.

    A config dict resolves to the newest live generator of the same ``shared_name`` that no
    layer of this name uses yet: rebuilding a model layer by layer (clone, load, quantize)
    thus puts all of its layers on one new instance, never on the original model's. A config
    that disagrees with that generator raises, naming both.
    """
    if not isinstance(identifier, dict):
        generator = get(identifier)
        claim(generator, layer_name)
        return generator
    config = identifier.get("config", {})
    _REGISTRY[:] = [(ref, names) for ref, names in _REGISTRY if ref() is not None]
    candidates = [
        ref() for ref, names in _REGISTRY
        if layer_name not in names and ref().shared_name == config.get("shared_name")
    ]
    if not candidates:
        generator = deserialize(identifier)
    else:
        generator = candidates[-1]
        if generator.strategy != identifier.get("strategy") or generator.structure() != _structure(config):
            raise ValueError(
                f"Layer {layer_name!r}: generator {generator.shared_name!r} is shared by layers with "
                f"incompatible configs: this layer asks for {identifier}, another layer uses "
                f"{serialize(generator)}."
            )
    claim(generator, layer_name)
    return generator


# Strategies in their own files register themselves on import; importing them here makes every
# strategy known wherever generators is imported. Last, so the base classes above exist.
from hyper_tinypw_tf import low_rank  # noqa: E402, F401
