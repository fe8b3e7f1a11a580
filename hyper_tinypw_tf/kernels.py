"""Each strategy's float kernel and trained variables, written once for tf_keras and Keras 3.

The strategy classes here know no Keras: they hold the constructor arguments and their checks, the
variables a strategy trains (:class:`VariableSpec`), and the float kernel of docs/synthesis.md step
by step, written against ``self.ops``, an op namespace with ``keras.ops``'s names. tf_keras's
generators (``generators.py``, ``low_rank.py``; ``ops`` = :data:`generators.TF_OPS`, the same
TensorFlow ops as ever) and Keras 3's (``keras3/generators.py``; ``ops`` = ``keras.ops``, any
backend) mix them into their own Layer base, so both Keras versions compute one kernel from one
source. The integer contract (synthesis.py) and the stored-tensor records stay with tf_keras's
classes: a Keras 3 model is exported through ``to_tf_keras``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from hyper_tinypw_tf import sharing, synthesis


@dataclass(frozen=True)
class VariableSpec:
    """One trained variable: name, shape, initializer.

    ``clip`` marks a code: it takes the layer's ``code_initializer`` and ``code_regularizer`` and is
    clipped to ``[-clip, clip]`` after each update (its stored scale is fixed).
    """

    name: str
    shape: tuple[int, ...]
    initializer: str = "glorot_uniform"
    clip: float | None = None


def fake_quant(ops: Any, x: Any, scale: Any, limit: float, low: float | None = None) -> Any:
    """Round ``x`` to the grid ``scale · q`` (half away from zero), straight-through gradient."""
    scaled = x / scale
    q = ops.sign(scaled) * ops.floor(ops.abs(scaled) + 0.5)
    q = ops.clip(q, -limit if low is None else low, limit)
    return x + ops.stop_gradient(q * scale - x)


def tensor_scale(ops: Any, x: Any, limit: float) -> Any:
    """Symmetric per-tensor scale of docs/synthesis.md §1, as a constant for the gradient."""
    peak = ops.stop_gradient(ops.max(ops.abs(x)))
    return ops.where(peak > 0, peak / limit, ops.ones_like(peak))


def fake_quant_weight(ops: Any, w: Any, bits: int) -> Any:
    """Simulate a symmetric narrow-range per-tensor weight of ``bits`` bits."""
    limit = float(synthesis.q_max(bits))
    return fake_quant(ops, w, tensor_scale(ops, w, limit), limit)


def fake_quant_channels(ops: Any, kernel: Any) -> Any:
    """Simulate ``channel_quantize``: int8 per output row (axis 0), peak at ±q_max(8)."""
    limit = float(synthesis.q_max(8))
    peak = ops.stop_gradient(ops.max(ops.abs(kernel), axis=1, keepdims=True))
    scale = ops.where(peak > 0, peak / limit, ops.ones_like(peak))
    return fake_quant(ops, kernel, scale, limit)


# ``init`` options of every strategy. "default": each variable from its own Keras initializer (as
# ever). "hyperfan_in": the same draws, rescaled so each generated kernel starts at He's variance
# 2/C_in for its own layer (Chang et al., ICLR 2020, "Principled weight initialization for
# hypernetworks"); only initial values change: nothing stored, no synthesis step, no file byte.
DEFAULT_INIT = "default"
HYPERFAN_IN = "hyperfan_in"
INITS = (DEFAULT_INIT, HYPERFAN_IN)
# The fan-in at which hyperfan_in's tiled codes fill their whole range: a layer with C_in inputs gets
# codes of variance (range²/3)·32/C_in, so no layer of at least 32 inputs (every generated layer of the
# presets: 40 to 512) needs codes beyond their clip range. A narrower layer keeps full-range codes and
# starts at 2/32 instead of 2/C_in (C_in/32 of He's variance).
HYPERFAN_REFERENCE_FAN_IN = 32


def he_variance(c_in: int) -> float:
    """He's variance for a ReLU network's layer of ``c_in`` inputs: the target of hyperfan_in."""
    return 2.0 / c_in


def second_moment(variable: Any) -> float:
    """Mean square of a variable's values (its variance about zero)."""
    values = np.asarray(variable, np.float64)
    return float(np.mean(np.square(values))) if values.size else 0.0


def rescale(variable: Any, target: float, peak: float | None = None) -> None:
    """Scale a variable in place to mean square ``target`` (its drawn shape kept), ``|values| ≤ peak``.

    A variable of zeros (nothing to scale) is left alone.
    """
    values = np.asarray(variable, np.float64)
    current = second_moment(values)
    if current <= 0:
        return
    factor = float(np.sqrt(target / current))
    top = float(np.max(np.abs(values)))
    if peak is not None and top * factor > peak:
        factor = peak / top
    variable.assign((values * factor).astype(np.asarray(variable).dtype))


def positive(arg: str, value: Any, limit: int) -> None:
    """Raise unless ``value`` is an integer in [1, limit], naming the argument."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{arg} must be a positive integer, received {arg}={value!r}")
    if value > limit:
        raise ValueError(f"{arg} must be at most {limit}, received {arg}={value}")


class ClipCodes:
    """Clip codes to ``[-limit, limit]`` after each update (mixed into each Keras' Constraint)."""

    ops: Any = None

    def __init__(self, limit: float = 1.0) -> None:
        self.limit = float(limit)

    def __call__(self, w: Any) -> Any:
        return self.ops.clip(w, -self.limit, self.limit)

    def get_config(self) -> dict[str, Any]:
        return {"limit": self.limit}


class Strategy:
    """Base of the strategies: stored bit widths, sharing identity, variables and the float kernel.

    Args:
      code_bits: stored bits of the per-layer codes (8, or 4 packed two per byte).
      weight_bits: stored bits of the other matrices (8 or 4).
      shared_name: identity of this generator across serialization; unique by default.
      init: "default" (each variable from its Keras initializer) or "hyperfan_in" (the same draws
        rescaled so each layer's generated kernel starts at He's variance 2/C_in of that layer;
        see the strategy's ``init_shared`` and ``init_layer``). Initial values only.
    """

    strategy: str = ""
    # Set by the Keras this class is mixed into: its op namespace, its sharing.Family, its ClipCodes.
    ops: Any = None
    family: Any = None
    clip_codes: Any = None

    def __init__(self, code_bits: int = 8, weight_bits: int = 8, shared_name: str | None = None,
                 init: str = DEFAULT_INIT, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for arg, value in (("code_bits", code_bits), ("weight_bits", weight_bits)):
            if value not in (4, 8):
                raise ValueError(f"{arg} must be 4 or 8, received {arg}={value!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, received init={init!r}")
        self.init = init
        self.code_bits = int(code_bits)
        self.weight_bits = int(weight_bits)
        self.shared_name = shared_name or f"{self.strategy}_{uuid.uuid4().hex[:12]}"
        self.family.track(self)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self.strategy_config()}

    def structure(self) -> dict[str, Any]:
        """The config without the Keras layer's keys: what must agree for two layers to share."""
        return sharing.structure(self.get_config())

    def strategy_config(self) -> dict[str, Any]:
        """The constructor arguments (the config beyond the Keras layer's own keys)."""
        config = {"code_bits": self.code_bits, "weight_bits": self.weight_bits, "shared_name": self.shared_name}
        # "init" only when it is not the default, so a default generator's config (and every file
        # or pin made from one) is what it was before the option existed.
        return config if self.init == DEFAULT_INIT else {**config, "init": self.init}

    def shared_variables(self) -> list[VariableSpec]:
        """The variables every layer of this generator shares, in creation order."""
        return []

    def layer_variables(self, c_in: int, c_out: int) -> list[VariableSpec]:
        """The variables one ``c_out × c_in`` layer adds, in creation order."""
        raise NotImplementedError

    def build(self, input_shape: Any = None) -> None:
        """Create the shared variables; they do not depend on any layer's shape."""
        for spec in self.shared_variables():
            setattr(self, spec.name, self.add_weight(
                name=spec.name, shape=spec.shape, initializer=spec.initializer, trainable=True))
        if self.init == HYPERFAN_IN:
            self.init_shared()
        super().build(input_shape)

    def create_layer_weights(self, layer: Any, c_in: int, c_out: int) -> dict[str, Any]:
        """Create the per-layer variables on ``layer``; returns them by name."""
        weights = {}
        for spec in self.layer_variables(c_in, c_out):
            extra = {} if spec.clip is None else {
                "regularizer": layer.code_regularizer, "constraint": self.clip_codes(spec.clip)}
            initializer = layer.code_initializer if spec.clip is not None else spec.initializer
            weights[spec.name] = layer.add_weight(
                name=spec.name, shape=spec.shape, initializer=initializer, trainable=True, **extra)
        if self.init == HYPERFAN_IN:
            self.init_layer(weights, c_in, c_out)
        return weights

    def init_shared(self) -> None:
        """hyperfan_in: rescale the just-drawn shared variables (none by default)."""

    def init_layer(self, weights: dict[str, Any], c_in: int, c_out: int) -> None:
        """hyperfan_in: rescale one layer's just-drawn variables so its kernel starts at ``he_variance(c_in)``."""
        raise NotImplementedError

    def validate_layer(self, c_in: int, c_out: int, layer_name: str) -> None:
        """Raise ValueError if a layer of this shape cannot share this generator."""

    def quantize_weight(self, w: Any, quantize: bool, bits: int | None = None) -> Any:
        """A stored matrix as the device sees it when ``quantize`` (``weight_bits`` unless ``bits``)."""
        return fake_quant_weight(self.ops, w, self.weight_bits if bits is None else bits) if quantize else w

    def kernel(self, weights: dict[str, Any], c_in: int, c_out: int, quantize: bool = False) -> Any:
        """The generated kernel ``K[o, i]`` of shape (C_out, C_in)."""
        raise NotImplementedError

    def fake_quant_channels(self, kernel: Any) -> Any:
        """A kernel as the device's per-channel int8 (``fake_quant_channels`` on this Keras' ops)."""
        return fake_quant_channels(self.ops, kernel)


class MLPStrategy(Strategy):
    """Base of the hypernetwork strategies: codes into the shared micro-MLP ``h = relu(z·W1 + b1)``.

    Args:
      code_dim: ``d_z``, length of one code.
      hidden_dim: ``d_h``, width of the shared hidden layer.
      code_range: codes are clipped to ``[-code_range, code_range]``; their fixed scale is
        ``code_range / q_max(code_bits)``.
      **kwargs: see :class:`Strategy`.
    """

    def __init__(self, code_dim: int = 4, hidden_dim: int = 32, code_range: float = 1.0, **kwargs: Any) -> None:
        positive("code_dim", code_dim, synthesis.MAX_DENSE_TERMS)
        positive("hidden_dim", hidden_dim, synthesis.MAX_DENSE_TERMS)
        if not code_range > 0:
            raise ValueError(f"code_range must be positive, received code_range={code_range!r}")
        self.code_dim = int(code_dim)
        self.hidden_dim = int(hidden_dim)
        self.code_range = float(code_range)
        super().__init__(**kwargs)

    def strategy_config(self) -> dict[str, Any]:
        return {**super().strategy_config(), "code_dim": self.code_dim, "hidden_dim": self.hidden_dim,
                "code_range": self.code_range}

    def shared_variables(self) -> list[VariableSpec]:
        return [
            VariableSpec("w1", (self.code_dim, self.hidden_dim)),
            VariableSpec("b1", (self.hidden_dim,), "zeros"),
            *self.strategy_shared_variables(),
        ]

    def strategy_shared_variables(self) -> list[VariableSpec]:
        """Shared variables beyond the micro-MLP's first layer."""
        return []

    def init_shared(self) -> None:
        """He on the hidden layer: ``E[W1²] = 2/d_z``, so ``E[h²] = E[z²]`` for zero-mean codes (b1 = 0)."""
        rescale(self.w1, he_variance(self.code_dim))

    def hidden_numpy(self, codes: Any) -> np.ndarray:
        """Step 1 in float64 numpy on the current values: ``relu(z·W1 + b1)``, for initialization."""
        h = np.asarray(codes, np.float64) @ np.asarray(self.w1, np.float64) + np.asarray(self.b1, np.float64)
        return np.maximum(h, 0.0)

    def code_variable(self, name: str, count: int) -> VariableSpec:
        """``count`` codes of ``d_z`` numbers, clipped to the range their fixed scale represents."""
        return VariableSpec(name, (count, self.code_dim), clip=self.code_range)

    def code_scale(self) -> float:
        """Fixed scale of the stored codes."""
        return self.code_range / synthesis.q_max(self.code_bits)

    def hidden_activation(self, codes: Any, quantize: bool) -> Any:
        """Step 1: ``relu(z·W1 + b1)``, int8-simulated when ``quantize``."""
        ops, w1, b1 = self.ops, self.w1, self.b1
        if quantize:
            codes = fake_quant(ops, codes, self.code_scale(), float(synthesis.q_max(self.code_bits)))
            w1 = fake_quant_weight(ops, w1, self.weight_bits)
            bias_scale = self.code_scale() * tensor_scale(ops, self.w1, float(synthesis.q_max(self.weight_bits)))
            b1 = fake_quant(ops, b1, bias_scale, float(synthesis.INT32_MAX))
        h = ops.relu(ops.matmul(codes, w1) + b1)
        if quantize:
            limit = float(synthesis.q_max(8))
            h = fake_quant(ops, h, tensor_scale(ops, h, limit), limit, low=0.0)
        return h


class TiledStrategy(MLPStrategy):
    """Tiles of ``b × b`` kernel entries, each made from its own code (HyperNetworks-style).

    One generator serves layers of any shape: a layer stores ``⌈C_out/b⌉·⌈C_in/b⌉`` codes of
    ``d_z`` numbers instead of ``C_out·C_in`` weights.

    Args:
      tile_size: ``b``.
      pad: allow kernels whose sides are not multiples of ``b``; the padding tiles' codes are
        stored and counted. With ``pad=False`` such a layer is refused.
      **kwargs: see :class:`MLPStrategy`.
    """

    strategy = "tiled"

    def __init__(self, tile_size: int = 8, pad: bool = True, **kwargs: Any) -> None:
        need = synthesis.tile_size_problem(tile_size)
        if need:
            raise ValueError(f"tile_size must be {need}, received tile_size={tile_size!r}")
        self.tile_size = int(tile_size)
        self.pad = bool(pad)
        super().__init__(**kwargs)

    def strategy_config(self) -> dict[str, Any]:
        return {**super().strategy_config(), "tile_size": self.tile_size, "pad": self.pad}

    def strategy_shared_variables(self) -> list[VariableSpec]:
        return [VariableSpec("w2", (self.hidden_dim, self.tile_size * self.tile_size))]

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

    def layer_variables(self, c_in: int, c_out: int) -> list[VariableSpec]:
        rows, cols = self.grid(c_in, c_out)
        return [self.code_variable("codes", rows * cols)]

    def full_range_variance(self) -> float:
        """Variance of codes uniform over their whole clip range: ``code_range²/3``."""
        return self.code_range**2 / 3.0

    def init_shared(self) -> None:
        """Hyperfan-in on the output layer: ``K = h·W2`` has variance ``d_h·E[h²]·E[W2²]``; W2 is set so
        that codes of full-range variance give He's variance at ``HYPERFAN_REFERENCE_FAN_IN``.

        One W2 serves every layer, so the per-layer part of Chang et al.'s ``1/fan_in`` is in the codes
        (:meth:`init_layer`): with b1 = 0, h and hence K scale linearly with them.
        """
        super().init_shared()
        reference = he_variance(HYPERFAN_REFERENCE_FAN_IN)
        rescale(self.w2, reference / (self.hidden_dim * self.full_range_variance()))

    def init_layer(self, weights, c_in, c_out):
        """Codes of variance ``full_range_variance·32/C_in`` (kept in range): K's variance is ``2/C_in``."""
        target = self.full_range_variance() * HYPERFAN_REFERENCE_FAN_IN / c_in
        rescale(weights["codes"], target, peak=self.code_range)

    def kernel(self, weights, c_in, c_out, quantize=False):
        ops, (rows, cols), b = self.ops, self.grid(c_in, c_out), self.tile_size
        h = self.hidden_activation(weights["codes"], quantize)
        tiles = ops.matmul(h, self.quantize_weight(self.w2, quantize))  # (tiles, b*b)
        grid = ops.transpose(ops.reshape(tiles, (rows, cols, b, b)), (0, 2, 1, 3))
        return ops.reshape(grid, (rows * b, cols * b))[:c_out, :c_in]


class PaperStrategy(MLPStrategy):
    """HyperTinyPW's generator: one code per layer, a shared micro-MLP, a head per layer.

    ``head="dense"`` maps ``h_l`` to the whole kernel with a per-layer matrix of
    ``d_h · C_out · C_in`` numbers: larger than the kernel it makes, counted honestly.
    ``head="factorized"`` makes ``K = A_l · diag(h_l) · B[:, :C_in]`` with a per-layer
    ``A_l`` of ``C_out · d_h`` numbers and one ``B`` of ``d_h · max_in_channels`` shared by all.

    Args:
      head: "dense" or "factorized".
      max_in_channels: width of the shared factor ``B`` (factorized head only); a layer with
        more input channels cannot share this generator.
      **kwargs: see :class:`MLPStrategy`.
    """

    strategy = "paper"
    DENSE = "dense"
    FACTORIZED = "factorized"

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

    def strategy_config(self) -> dict[str, Any]:
        return {**super().strategy_config(), "head": self.head, "max_in_channels": self.max_in_channels}

    @property
    def dense(self) -> bool:
        """Whether the head is the dense one (no shared factor B)."""
        return self.head == self.DENSE

    def strategy_shared_variables(self) -> list[VariableSpec]:
        return [] if self.dense else [VariableSpec("b_shared", (self.hidden_dim, self.max_in_channels))]

    def validate_layer(self, c_in, c_out, layer_name):
        if not self.dense and c_in > self.max_in_channels:
            raise ValueError(
                f"Layer {layer_name!r}: input channels={c_in} exceed the shared generator's "
                f"max_in_channels={self.max_in_channels}; these layers have incompatible configs "
                "for one generator."
            )

    def _head_shape(self, c_in: int, c_out: int) -> tuple[int, int]:
        return (self.hidden_dim, c_out * c_in) if self.dense else (c_out, self.hidden_dim)

    def layer_variables(self, c_in: int, c_out: int) -> list[VariableSpec]:
        return [self.code_variable("code", 1), VariableSpec("head", self._head_shape(c_in, c_out))]

    def init_layer(self, weights, c_in, c_out):
        """Hyperfan-in on the per-layer head, given this layer's one code and the shared weights.

        ``K[o, i] = Σ_k A[o, k]·h_k·B[k, i]`` (dense: ``Σ_k h_k·H[k, o·C_in + i]``) has variance
        ``E[A²]·mean_i Σ_k h_k²·B[k, i]²`` over the head's draw, so the head gets the mean square that
        makes it ``2/C_in``. Chang et al. average over the embedding; here each layer has a single code,
        whose norm alone varies severalfold between layers, so the head is scaled for the code it has.
        """
        h2 = np.square(self.hidden_numpy(weights["code"]))[0]  # (d_h,)
        if self.dense:
            spread = float(np.sum(h2))
        else:
            b_shared = np.asarray(self.b_shared, np.float64)[:, :c_in]
            spread = float(np.mean(h2 @ np.square(b_shared)))
        if spread > 0:  # a code with every hidden unit at zero makes a zero kernel at any head scale
            rescale(weights["head"], he_variance(c_in) / spread)

    def kernel(self, weights, c_in, c_out, quantize=False):
        ops = self.ops
        h = self.hidden_activation(weights["code"], quantize)  # (1, d_h)
        head = self.quantize_weight(weights["head"], quantize)
        if self.dense:
            return ops.reshape(ops.matmul(h, head), (c_out, c_in))
        b_shared = self.quantize_weight(self.b_shared, quantize)[:, :c_in]
        return ops.matmul(head * h, b_shared)


class LowRankStrategy(Strategy):
    """Per-layer factors ``U`` (C_out × r) and ``V`` (r × C_in) with ``K = U·V``.

    Args:
      rank: ``r``, the inner dimension; the op's ``code_dim`` and ``hidden_dim`` options both hold it.
      **kwargs: see :class:`Strategy` (``code_bits`` are U's bits, ``weight_bits`` V's).
    """

    strategy = "low_rank"

    def __init__(self, rank: int = 4, **kwargs: Any) -> None:
        if not isinstance(rank, (int, np.integer)) or isinstance(rank, bool) or rank <= 0:
            raise ValueError(f"rank must be a positive integer, received rank={rank!r}")
        if rank > synthesis.MAX_DENSE_TERMS:
            raise ValueError(f"rank must be at most {synthesis.MAX_DENSE_TERMS}, received rank={rank}")
        self.rank = int(rank)
        super().__init__(**kwargs)

    def strategy_config(self) -> dict[str, Any]:
        return {**super().strategy_config(), "rank": self.rank}

    def layer_variables(self, c_in: int, c_out: int) -> list[VariableSpec]:
        return [VariableSpec("u", (c_out, self.rank)), VariableSpec("v", (self.rank, c_in))]

    def init_layer(self, weights, c_in, c_out):
        """``K = U·V`` has variance ``r·E[U²]·E[V²]``: ``E[U²] = 1/r`` and He on V, ``E[V²] = 2/C_in``."""
        rescale(weights["u"], 1.0 / self.rank)
        rescale(weights["v"], he_variance(c_in))

    def kernel(self, weights, c_in, c_out, quantize=False):
        u = self.quantize_weight(weights["u"], quantize, self.code_bits)
        return self.ops.matmul(u, self.quantize_weight(weights["v"], quantize))
