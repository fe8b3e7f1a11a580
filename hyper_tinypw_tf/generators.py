"""Generator strategies: the shared network that turns per-layer codes into PW kernels.

Each strategy is a Keras layer that owns the *shared* variables and tells a
:class:`~hyper_tinypw_tf.layers.HyperPWConv2D` which *per-layer* variables to create
(codes, heads). It declares every tensor it stores as :class:`StoredTensor` records, which is
all the byte accounting and the exporter know about it. The float forward pass follows
docs/synthesis.md step by step; with ``quantize=True`` it simulates the stored precision.

Sharing is explicit: pass one generator instance to several layers. A generator's config carries
a ``shared_name``; when layers are rebuilt from config (``from_config``, ``clone_model``, model
loading, tfmot's ``quantize_apply``) :func:`resolve` hands every layer of the rebuilt model the
same new instance, so a model always holds exactly one set of generator variables.
"""

from __future__ import annotations

import uuid
import weakref
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
    """Simulate ``channel_quantize``: int8 per output row (axis 0), peak at ±127."""
    limit = float(synthesis.q_max(8))
    peak = tf.stop_gradient(tf.reduce_max(tf.abs(kernel), axis=1, keepdims=True))
    scale = tf.where(peak > 0, peak / limit, tf.ones_like(peak))
    return _fake_quant(kernel, scale, limit)


class HyperGenerator(keras.layers.Layer):
    """Base of the strategies: the shared micro-MLP ``h = relu(z·W1 + b1)`` and its bookkeeping.

    Args:
      code_dim: ``d_z``, length of one code.
      hidden_dim: ``d_h``, width of the shared hidden layer.
      code_bits: stored bits of the codes (8, or 4 packed two per byte).
      weight_bits: stored bits of the generator and head matrices (8 or 4).
      code_range: codes are clipped to ``[-code_range, code_range]``; their fixed scale is
        ``code_range / q_max(code_bits)``.
      shared_name: identity of this generator across serialization; unique by default.
    """

    strategy: str = ""

    def __init__(
        self,
        code_dim: int = 4,
        hidden_dim: int = 32,
        code_bits: int = 8,
        weight_bits: int = 8,
        code_range: float = 1.0,
        shared_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for arg, value in (("code_dim", code_dim), ("hidden_dim", hidden_dim)):
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{arg} must be a positive integer, received {arg}={value!r}")
            if value > synthesis.MAX_DENSE_TERMS:
                raise ValueError(f"{arg} must be at most {synthesis.MAX_DENSE_TERMS}, received {arg}={value}")
        for arg, value in (("code_bits", code_bits), ("weight_bits", weight_bits)):
            if value not in (4, 8):
                raise ValueError(f"{arg} must be 4 or 8, received {arg}={value!r}")
        if not code_range > 0:
            raise ValueError(f"code_range must be positive, received code_range={code_range!r}")
        self.code_dim = int(code_dim)
        self.hidden_dim = int(hidden_dim)
        self.code_bits = int(code_bits)
        self.weight_bits = int(weight_bits)
        self.code_range = float(code_range)
        self.shared_name = shared_name or f"{self.strategy}_{uuid.uuid4().hex[:12]}"
        _REGISTRY.append((weakref.ref(self), set()))

    # -- shared variables -------------------------------------------------------------------
    def build(self, input_shape: Any = None) -> None:
        """Create the shared variables; they do not depend on any layer's shape."""
        self.w1 = self.add_weight(
            "w1", (self.code_dim, self.hidden_dim), initializer="glorot_uniform", trainable=True
        )
        self.b1 = self.add_weight("b1", (self.hidden_dim,), initializer="zeros", trainable=True)
        self.build_strategy()
        super().build(input_shape)

    def build_strategy(self) -> None:
        """Create the strategy's own shared variables."""

    def code_scale(self) -> float:
        """Fixed scale of the stored codes."""
        return self.code_range / synthesis.q_max(self.code_bits)

    def code_constraint(self) -> keras.constraints.Constraint:
        """Keeps codes inside the range their fixed scale can represent."""
        return _ClipCodes(self.code_range)

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

    def quantize_weight(self, w: tf.Tensor, quantize: bool) -> tf.Tensor:
        """A stored matrix as the device sees it when ``quantize``."""
        return fake_quant_weight(w, self.weight_bits) if quantize else w

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
        wb = self.weight_bits
        return [
            StoredTensor(f"{self.name}/w1", (self.code_dim, self.hidden_dim), wb, GENERATOR, "w1"),
            StoredTensor(f"{self.name}/b1", (self.hidden_dim,), BIAS_BITS, GENERATOR, "b1"),
            *self.strategy_shared_tensors(),
        ]

    def strategy_shared_tensors(self) -> list[StoredTensor]:
        """Shared tensors beyond the micro-MLP's first layer."""
        return []

    def layer_tensors(self, layer_name: str, c_in: int, c_out: int) -> list[StoredTensor]:
        """The stored tensors one layer adds: its codes, heads and synthesis parameters."""
        return [
            *self.strategy_layer_tensors(layer_name, c_in, c_out),
            StoredTensor(f"{layer_name}/requant", (2,), 32, SYNTHESIS_PARAMS, "requant"),
            StoredTensor(f"{layer_name}/signs", (c_out,), 1, SYNTHESIS_PARAMS, "signs"),
        ]

    def strategy_layer_tensors(self, layer_name: str, c_in: int, c_out: int) -> list[StoredTensor]:
        raise NotImplementedError

    def synthesis_macs(self, c_in: int, c_out: int) -> int:
        """Integer multiply-accumulates to make one ``c_out × c_in`` kernel (docs/synthesis.md §3)."""
        raise NotImplementedError

    # -- the integer contract (docs/synthesis.md, docs/format.md) -----------------------------
    # Wire names of this strategy's op variants (format.md's ``strategy`` option) → input order.
    FORMATS: dict[str, tuple[str, ...]] = {}

    @property
    def format_name(self) -> str:
        """The ``strategy`` option of this generator's op in a hyper file."""
        raise NotImplementedError

    @property
    def tile_option(self) -> int:
        """The op's ``tile_size`` option: 0 for strategies without tiles."""
        return 0

    def input_roles(self) -> tuple[str, ...]:
        """The roles of the op's inputs, in the order the op takes them."""
        return self.FORMATS[self.format_name]

    def encode_codes(self, codes: tf.Variable) -> np.ndarray:
        """A layer's codes as stored integers, on their fixed scale (§1)."""
        values = np.asarray(codes.numpy(), np.float64)
        return synthesis.quantize_tensor(values, self.code_bits, scale=self.code_scale())[0]

    def encode_layer_weights(self, weights: dict[str, tf.Variable]) -> tuple[np.ndarray, np.ndarray | None, float]:
        """One layer's stored integers: (codes, head or None, head scale)."""
        raise NotImplementedError

    def encode_extra(self) -> tuple[np.ndarray | None, float]:
        """The strategy's shared matrix beyond the micro-MLP as stored integers and its scale (§1)."""
        return None, 1.0

    @classmethod
    def format_fields(cls, format_name: str) -> dict[str, Any]:
        """The encoded generator's strategy-specific fields for an op of ``format_name`` (see ``encode``)."""
        return {}

    @classmethod
    def op_config(cls, format_name: str, tile_size: int, c_in: int) -> dict[str, Any]:
        """Constructor arguments, beyond the micro-MLP's sizes, of a generator that writes this op variant."""
        return {}

    @classmethod
    def from_op(cls, format_name: str, code_dim: int, hidden_dim: int, tile_size: int, c_in: int) -> HyperGenerator:
        """A generator shaped like a hyper file's op, e.g. to count its synthesis MACs."""
        return cls(code_dim=code_dim, hidden_dim=hidden_dim, **cls.op_config(format_name, tile_size, c_in))

    @classmethod
    def op_input_shapes(cls, format_name: str, c_out: int, c_in: int, code_dim: int, hidden_dim: int,
                        tile_size: int) -> dict[str, list[int]]:
        """Shapes of the op inputs whose shape is the strategy's own (codes, heads, W2), by role."""
        raise NotImplementedError

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
        config.update(
            code_dim=self.code_dim,
            hidden_dim=self.hidden_dim,
            code_bits=self.code_bits,
            weight_bits=self.weight_bits,
            code_range=self.code_range,
            shared_name=self.shared_name,
        )
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


@keras.utils.register_keras_serializable(package=PACKAGE)
class TiledGenerator(HyperGenerator):
    """Tiles of ``b × b`` kernel entries, each made from its own code (HyperNetworks-style).

    One generator serves layers of any shape: a layer stores ``⌈C_out/b⌉·⌈C_in/b⌉`` codes of
    ``d_z`` numbers instead of ``C_out·C_in`` weights.

    Args:
      tile_size: ``b``.
      pad: allow kernels whose sides are not multiples of ``b``; the padding tiles' codes are
        stored and counted. With ``pad=False`` such a layer is refused.
      **kwargs: see :class:`HyperGenerator`.
    """

    strategy = "tiled"

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
        codes = layer.add_weight(
            "codes",
            (rows * cols, self.code_dim),
            initializer=layer.code_initializer,
            regularizer=layer.code_regularizer,
            constraint=self.code_constraint(),
            trainable=True,
        )
        return {"codes": codes}

    def kernel(self, weights, c_in, c_out, quantize=False):
        rows, cols, b = *self.grid(c_in, c_out), self.tile_size
        h = self.hidden_activation(weights["codes"], quantize)
        tiles = tf.matmul(h, self.quantize_weight(self.w2, quantize))  # (tiles, b*b)
        grid = tf.transpose(tf.reshape(tiles, (rows, cols, b, b)), (0, 2, 1, 3))
        return tf.reshape(grid, (rows * b, cols * b))[:c_out, :c_in]

    def strategy_shared_tensors(self):
        b2 = self.tile_size * self.tile_size
        return [StoredTensor(f"{self.name}/w2", (self.hidden_dim, b2), self.weight_bits, GENERATOR, "w2")]

    def strategy_layer_tensors(self, layer_name, c_in, c_out):
        rows, cols = self.grid(c_in, c_out)
        return [StoredTensor(f"{layer_name}/codes", (rows * cols, self.code_dim), self.code_bits, CODES, "codes")]

    def synthesis_macs(self, c_in, c_out):
        rows, cols = self.grid(c_in, c_out)
        return rows * cols * (self.code_dim * self.hidden_dim + self.hidden_dim * self.tile_size**2)

    FORMATS = {"tiled": ("codes", "w1", "b1", "w2", "requant", "signs")}

    @property
    def format_name(self) -> str:
        return "tiled"

    @property
    def tile_option(self) -> int:
        return self.tile_size

    def encode_extra(self):
        return synthesis.quantize_tensor(np.asarray(self.w2.numpy(), np.float64), self.weight_bits)

    def encode_layer_weights(self, weights):
        return self.encode_codes(weights["codes"]), None, 1.0

    @classmethod
    def op_config(cls, format_name, tile_size, c_in):
        return {"tile_size": tile_size}

    @classmethod
    def op_input_shapes(cls, format_name, c_out, c_in, code_dim, hidden_dim, tile_size):
        rows, cols = synthesis.tile_grid(c_out, c_in, tile_size)
        return {"codes": [rows * cols, code_dim], "w2": [hidden_dim, tile_size * tile_size]}

    @staticmethod
    def accumulators(enc, layer):
        return synthesis.tiled_accumulators(
            layer.codes, enc.w1, enc.b1, enc.extra, layer.requant, layer.c_out, layer.c_in, enc.tile_size
        )

    @staticmethod
    def accumulator_scale(enc, layer):
        return layer.hidden_scale * enc.extra_scale

    def get_config(self):
        config = super().get_config()
        config.update(tile_size=self.tile_size, pad=self.pad)
        return config


@keras.utils.register_keras_serializable(package=PACKAGE)
class PaperGenerator(HyperGenerator):
    """HyperTinyPW's generator: one code per layer, a shared micro-MLP, a head per layer.

    ``head="dense"`` maps ``h_l`` to the whole kernel with a per-layer matrix of
    ``d_h · C_out · C_in`` numbers: larger than the kernel it makes, counted honestly.
    ``head="factorized"`` makes ``K = A_l · diag(h_l) · B[:, :C_in]`` with a per-layer
    ``A_l`` of ``C_out · d_h`` numbers and one ``B`` of ``d_h · max_in_channels`` shared by all.

    Args:
      head: "dense" or "factorized".
      max_in_channels: width of the shared factor ``B`` (factorized head only); a layer with
        more input channels cannot share this generator.
      **kwargs: see :class:`HyperGenerator`.
    """

    strategy = "paper"

    def __init__(self, head: str = "factorized", max_in_channels: int = 512, **kwargs: Any) -> None:
        if head not in ("dense", "factorized"):
            raise ValueError(f"head must be 'dense' or 'factorized', received head={head!r}")
        if not isinstance(max_in_channels, (int, np.integer)) or max_in_channels <= 0:
            raise ValueError(
                f"max_in_channels must be a positive integer, received max_in_channels={max_in_channels!r}"
            )
        self.head = head
        self.max_in_channels = int(max_in_channels)
        super().__init__(**kwargs)
        if head == "factorized" and self.hidden_dim > synthesis.MAX_FACTOR_RANK:
            raise ValueError(
                f"hidden_dim must be at most {synthesis.MAX_FACTOR_RANK} with head='factorized', "
                f"received hidden_dim={self.hidden_dim}"
            )

    def build_strategy(self) -> None:
        if self.head == "factorized":
            self.b_shared = self.add_weight(
                "b_shared", (self.hidden_dim, self.max_in_channels), initializer="glorot_uniform", trainable=True
            )

    def validate_layer(self, c_in, c_out, layer_name):
        if self.head == "factorized" and c_in > self.max_in_channels:
            raise ValueError(
                f"Layer {layer_name!r}: input channels={c_in} exceed the shared generator's "
                f"max_in_channels={self.max_in_channels}; these layers have incompatible configs "
                "for one generator."
            )

    def create_layer_weights(self, layer, c_in, c_out):
        code = layer.add_weight(
            "code",
            (1, self.code_dim),
            initializer=layer.code_initializer,
            regularizer=layer.code_regularizer,
            constraint=self.code_constraint(),
            trainable=True,
        )
        shape = (self.hidden_dim, c_out * c_in) if self.head == "dense" else (c_out, self.hidden_dim)
        head = layer.add_weight("head", shape, initializer="glorot_uniform", trainable=True)
        return {"code": code, "head": head}

    def kernel(self, weights, c_in, c_out, quantize=False):
        h = self.hidden_activation(weights["code"], quantize)  # (1, d_h)
        head = self.quantize_weight(weights["head"], quantize)
        if self.head == "dense":
            return tf.reshape(tf.matmul(h, head), (c_out, c_in))
        b_shared = self.quantize_weight(self.b_shared, quantize)[:, :c_in]
        return tf.matmul(head * h, b_shared)

    def strategy_shared_tensors(self):
        if self.head == "dense":
            return []
        shape = (self.hidden_dim, self.max_in_channels)
        return [StoredTensor(f"{self.name}/b_shared", shape, self.weight_bits, GENERATOR, "b_shared")]

    def strategy_layer_tensors(self, layer_name, c_in, c_out):
        shape = (self.hidden_dim, c_out * c_in) if self.head == "dense" else (c_out, self.hidden_dim)
        return [
            StoredTensor(f"{layer_name}/code", (1, self.code_dim), self.code_bits, CODES, "codes"),
            StoredTensor(f"{layer_name}/head", shape, self.weight_bits, HEADS, "head"),
        ]

    def synthesis_macs(self, c_in, c_out):
        mlp = self.code_dim * self.hidden_dim
        if self.head == "dense":
            return mlp + self.hidden_dim * c_out * c_in
        return mlp + c_out * self.hidden_dim * (1 + c_in)

    FORMATS = {
        "paper_dense": ("codes", "w1", "b1", "head", "requant", "signs"),
        "paper_factorized": ("codes", "w1", "b1", "head", "b_shared", "requant", "signs"),
    }

    @property
    def format_name(self) -> str:
        return f"paper_{self.head}"

    @classmethod
    def format_fields(cls, format_name):
        return {"head": format_name.removeprefix("paper_")}

    @classmethod
    def op_config(cls, format_name, tile_size, c_in):
        return {**cls.format_fields(format_name), "max_in_channels": c_in}

    @classmethod
    def op_input_shapes(cls, format_name, c_out, c_in, code_dim, hidden_dim, tile_size):
        dense = cls.format_fields(format_name)["head"] == "dense"
        return {"codes": [1, code_dim], "head": [hidden_dim, c_out * c_in] if dense else [c_out, hidden_dim]}

    def encode_layer_weights(self, weights):
        head, head_scale = synthesis.quantize_tensor(np.asarray(weights["head"].numpy(), np.float64), self.weight_bits)
        return self.encode_codes(weights["code"]), head, head_scale

    def encode_extra(self):
        if self.head == "dense":
            return None, 1.0
        return synthesis.quantize_tensor(np.asarray(self.b_shared.numpy(), np.float64), self.weight_bits)

    @staticmethod
    def accumulators(enc, layer):
        if enc.head == "dense":
            return synthesis.paper_dense_accumulators(
                layer.codes, enc.w1, enc.b1, layer.head, layer.requant, layer.c_out, layer.c_in
            )
        return synthesis.paper_factorized_accumulators(
            layer.codes, enc.w1, enc.b1, layer.head, enc.extra, layer.requant, layer.c_out, layer.c_in
        )

    @staticmethod
    def accumulator_scale(enc, layer):
        if enc.head == "dense":
            return layer.hidden_scale * layer.head_scale
        return layer.head_scale * layer.hidden_scale * enc.extra_scale

    def get_config(self):
        config = super().get_config()
        config.update(head=self.head, max_in_channels=self.max_in_channels)
        return config


STRATEGIES: dict[str, type[HyperGenerator]] = {"tiled": TiledGenerator, "paper": PaperGenerator}


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
