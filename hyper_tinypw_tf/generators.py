"""Generator strategies: what turns a layer's stored numbers into its PW kernel.

A strategy is one class (:class:`HyperGenerator`'s subclasses) that owns its whole contract: the
float kernel for training (docs/synthesis.md step by step; with ``quantize=True`` it simulates the
stored precision; written once in ``kernels.py``, on the ops Keras 3's generators use too), the
stored tensors it declares (:class:`StoredTensor` records with a ``role``, all the byte
accounting and the exporter know about it), its format name and input order, the integer encoding
of its variables, the numpy synthesis step, and its limits, checked at construction. ``encode``,
``export/hyper``, ``export/expand`` and the byte report only ask it.
This module is the strategy table: the tiled and paper strategies are written here, the others in files of
their own (``low_rank.py``) that it imports, so importing ``generators`` makes every strategy known. The base
classes and the registry are in ``generator_base.py``, which imports no strategy. Adding a strategy: docs/extending.md.

Sharing is explicit: pass one generator instance to several layers; :func:`resolve` keeps one
generator per rebuilt model (``sharing.py`` says how).
"""

from __future__ import annotations

from typing import Any

from hyper_tinypw_tf import kernels, synthesis
from hyper_tinypw_tf.generator_base import (
    FAMILY,
    HIDDEN,
    PACKAGE,
    ROLE_B1,
    ROLE_CODES,
    ROLE_REQUANT,
    ROLE_SIGNS,
    ROLE_W1,
    STRATEGIES,
    TF_OPS,
    HyperGenerator,
    MLPGenerator,
    Scales,
    Stored,
    _ClipCodes,
    claim,
    deserialize,
    get,
    quantize_variable,
    register,
    resolve,
    serialize,
)
from hyper_tinypw_tf.storage import CODES, GENERATOR, HEADS, StoredTensor

__all__ = [
    "PACKAGE",
    "ROLE_SIGNS",
    "ROLE_CODES",
    "ROLE_W1",
    "ROLE_B1",
    "ROLE_REQUANT",
    "HIDDEN",
    "Stored",
    "Scales",
    "TF_OPS",
    "quantize_variable",
    "FAMILY",
    "STRATEGIES",
    "get",
    "serialize",
    "deserialize",
    "claim",
    "resolve",
    "_ClipCodes",
    "HyperGenerator",
    "MLPGenerator",
    "register",
    "TiledGenerator",
    "PaperGenerator",
    "for_format",
    "from_op",
]


@register
class TiledGenerator(kernels.TiledStrategy, MLPGenerator):
    __doc__ = kernels.TiledStrategy.__doc__

    FORMAT = "tiled"
    ROLE_W2 = "w2"
    FORMATS = {FORMAT: (ROLE_CODES, ROLE_W1, ROLE_B1, ROLE_W2, ROLE_REQUANT, ROLE_SIGNS)}

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

@register
class PaperGenerator(kernels.PaperStrategy, MLPGenerator):
    __doc__ = kernels.PaperStrategy.__doc__

    FORMAT_DENSE = "paper_dense"
    FORMAT_FACTORIZED = "paper_factorized"
    ROLE_HEAD = "head"
    ROLE_B_SHARED = "b_shared"
    FORMATS = {
        FORMAT_DENSE: (ROLE_CODES, ROLE_W1, ROLE_B1, ROLE_HEAD, ROLE_REQUANT, ROLE_SIGNS),
        FORMAT_FACTORIZED: (ROLE_CODES, ROLE_W1, ROLE_B1, ROLE_HEAD, ROLE_B_SHARED, ROLE_REQUANT, ROLE_SIGNS),
    }

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

def from_op(options: Any, **kwargs: Any) -> HyperGenerator:
    """The generator a hyper file's op describes (``options``: its ``export.format.HyperOptions``), made by the
    strategy that writes its variant; ``kwargs`` go to that strategy's ``from_op``."""
    return for_format(options.strategy).from_op(options, **kwargs)


def for_format(format_name: str) -> type[HyperGenerator]:
    """The strategy class whose op variant is ``format_name`` (a hyper file's ``strategy`` option)."""
    for cls in STRATEGIES.values():
        if format_name in cls.FORMATS:
            return cls
    raise ValueError(f"no strategy writes the op variant {format_name!r}")


# Strategies in their own files register themselves on import, after the two above: the registration
# order is the strategy id of the op (export/format.STRATEGIES, HTPW_STRATEGY_ID_* in C).
from hyper_tinypw_tf import low_rank  # noqa: E402, F401
