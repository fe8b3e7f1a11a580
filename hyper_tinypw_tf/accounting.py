"""Packed flash bytes of a model, by component, from the tensors each layer declares it stores.

``packed_bytes(model)`` lists every stored tensor (a generator shared by many layers once),
and the report sums them. Rendering is separate from counting: ``ByteReport.rows()`` returns
the numbers, ``ByteReport.table()`` draws them. A layer this module does not know raises: a
byte count that silently skips weights would be a wrong claim.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.inspect import WEIGHTLESS_LAYERS, is_quantize_input, unwrap
from hyper_tinypw_tf.layers import HyperPWConv2D
from hyper_tinypw_tf.storage import (
    CLASSIFIER,
    COMPONENTS,
    DEPTHWISE,
    GENERATED_COMPONENTS,
    STEM,
    STORED_PW,
    StoredTensor,
    channel_metadata,
)

WEIGHT_BITS = 8

def _conv_tensors(layer: keras.layers.Layer, component: str) -> list[StoredTensor]:
    kernel = layer.depthwise_kernel if component == DEPTHWISE else layer.kernel
    kernel_shape = tuple(int(d) for d in kernel.shape)
    channels = kernel_shape[-1] * (kernel_shape[-2] if component == DEPTHWISE else 1)
    return [
        StoredTensor(f"{layer.name}/kernel", kernel_shape, WEIGHT_BITS, component),
        *channel_metadata(layer.name, channels, channels),
    ]


def layer_tensors(layer: keras.layers.Layer) -> list[StoredTensor]:
    """What one layer stores, excluding a shared generator (counted once per model).

    Pass the model's own layer, not the one inside a tfmot wrapper: a wrapped layer loaded from a
    file was never called itself, so only the wrapper knows the input shape.
    """
    outer, layer = layer, unwrap(layer)
    if isinstance(layer, HyperPWConv2D):
        return [
            *layer.generator.layer_tensors(layer.name, layer.in_channels, layer.filters),
            *channel_metadata(layer.name, layer.filters, layer.filters),
        ]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return _conv_tensors(layer, DEPTHWISE)
    if isinstance(layer, keras.layers.Conv2D):
        if tuple(outer.input_shape[1:3]) == (1, 1) and tuple(layer.kernel_size) == (1, 1):
            return _conv_tensors(layer, CLASSIFIER)  # a 1x1 conv on pooled features is a dense layer
        pointwise = tuple(layer.kernel_size) == (1, 1)
        return _conv_tensors(layer, STORED_PW if pointwise else STEM)
    if isinstance(layer, keras.layers.Dense):
        shape = tuple(int(d) for d in layer.kernel.shape)
        return [
            StoredTensor(f"{layer.name}/kernel", shape, WEIGHT_BITS, CLASSIFIER),
            *channel_metadata(layer.name, shape[-1], 1),
        ]
    if isinstance(layer, keras.layers.BatchNormalization):
        return []  # folded into the conv before it
    if is_quantize_input(layer):
        return []  # tfmot's input quantizer becomes the int8 input tensor's scale and zero point
    if isinstance(layer, WEIGHTLESS_LAYERS) and not layer.weights:
        return []
    raise ValueError(
        f"packed_bytes: layer {layer.name!r} of type {type(layer).__name__} is not supported; "
        "its stored bytes are unknown."
    )


@dataclass(frozen=True)
class ByteReport:
    """Stored tensors of a model and what they add up to."""

    tensors: tuple[StoredTensor, ...]
    replaced_pw_bytes: int = 0  # int8 bytes the generated PW kernels would take if stored
    name: str = "model"

    @property
    def total(self) -> int:
        """Packed bytes of every stored tensor."""
        return sum(t.nbytes for t in self.tensors)

    @property
    def by_component(self) -> dict[str, int]:
        """Bytes per component, in report order (components with no tensor omitted)."""
        sums = {c: 0 for c in COMPONENTS}
        for t in self.tensors:
            sums[t.component] += t.nbytes
        return {c: b for c, b in sums.items() if any(t.component == c for t in self.tensors)}

    def bits_of(self, component: str) -> list[int]:
        """The distinct bit widths stored in a component."""
        return sorted({t.bits for t in self.tensors if t.component == component})

    @property
    def generated_bytes(self) -> int:
        """Generator, heads, codes and synthesis parameters: the cost of generating PW kernels."""
        return sum(t.nbytes for t in self.tensors if t.component in GENERATED_COMPONENTS)

    @property
    def pw_bytes(self) -> int:
        """Stored INT8 PW kernels of this model."""
        return sum(t.nbytes for t in self.tensors if t.component == STORED_PW)

    def rows(self) -> list[tuple[str, str, int]]:
        """(component, bits, bytes) rows, then the total."""
        rows = [
            (c, "/".join(str(b) for b in self.bits_of(c)), n) for c, n in self.by_component.items()
        ]
        return [*rows, ("total", "", self.total)]

    def table(self) -> str:
        """The report as a fixed-width table."""
        lines = [f"Packed bytes: {self.name}", f"{'component':<32}{'bits':>8}{'bytes':>12}"]
        lines += [f"{c:<32}{b:>8}{n:>12,}" for c, b, n in self.rows()]
        if self.replaced_pw_bytes:
            ratio = self.replaced_pw_bytes / max(self.generated_bytes, 1)
            lines.append(
                f"generated PW: {self.generated_bytes:,} bytes (generator+heads+codes+params) replace "
                f"{self.replaced_pw_bytes:,} bytes of INT8 PW kernels: 1/{ratio:.1f}"
            )
        return "\n".join(lines)

    def summary(self, print_fn: Callable[[str], None] = print) -> None:
        """Print the table."""
        print_fn(self.table())


def packed_bytes(model: keras.Model) -> ByteReport:
    """Count the packed flash bytes of a built model, shared generators once.

    Raises:
      ValueError: if the model is not built or holds a layer whose storage is unknown.
    """
    if not model.built:
        raise ValueError(f"packed_bytes: model {model.name!r} is not built; call it on an input or build() it first.")
    tensors: list[StoredTensor] = []
    shared: dict[int, object] = {}
    replaced = 0
    for layer in model.layers:
        inner = unwrap(layer)
        tensors += layer_tensors(layer)
        if isinstance(inner, HyperPWConv2D):
            replaced += StoredTensor("kernel", (inner.filters, inner.in_channels), WEIGHT_BITS, STORED_PW).nbytes
            if id(inner.generator) not in shared:
                shared[id(inner.generator)] = inner.generator
                tensors += inner.generator.shared_tensors()
    return ByteReport(tuple(tensors), replaced, model.name)


@dataclass(frozen=True)
class Comparison:
    """A stored and a hyper model of the same backbone."""

    stored: ByteReport
    hyper: ByteReport

    @property
    def ratio(self) -> float:
        return self.stored.total / self.hyper.total

    def table(self) -> str:
        comps = [c for c in COMPONENTS if c in self.stored.by_component or c in self.hyper.by_component]
        lines = [f"{'component':<32}{'stored':>12}{'hyper':>12}"]
        for c in comps:
            lines.append(f"{c:<32}{self.stored.by_component.get(c, 0):>12,}{self.hyper.by_component.get(c, 0):>12,}")
        lines.append(f"{'total':<32}{self.stored.total:>12,}{self.hyper.total:>12,}")
        lines.append(f"same-backbone ratio (stored / hyper): {self.ratio:.2f}x")
        if self.hyper.replaced_pw_bytes:
            lines.append(
                f"generated part / PW bytes it replaces: {self.hyper.generated_bytes:,} / "
                f"{self.hyper.replaced_pw_bytes:,} = 1/{self.hyper.replaced_pw_bytes / self.hyper.generated_bytes:.1f}"
            )
        return "\n".join(lines)


def compare(stored: keras.Model, hyper: keras.Model, print_fn: Callable[[str], None] | None = print) -> Comparison:
    """Same-backbone comparison of a stored and a hyper model; prints it unless print_fn is None."""
    result = Comparison(packed_bytes(stored), packed_bytes(hyper))
    if print_fn is not None:
        print_fn(result.table())
    return result



def folded_bytes(model: keras.Model) -> ByteReport:
    """What a folded export stores: each generated PW kernel as a stored INT8 kernel, no generator.

    The counterpart of :func:`packed_bytes` for ``hyper-tinypw export --format=folded``.
    """
    if not model.built:
        raise ValueError(f"folded_bytes: model {model.name!r} is not built; call it on an input or build() it first.")
    tensors: list[StoredTensor] = []
    for layer in model.layers:
        inner = unwrap(layer)
        if isinstance(inner, HyperPWConv2D):
            shape = (inner.filters, 1, 1, inner.in_channels)
            kernel = StoredTensor(f"{inner.name}/kernel", shape, WEIGHT_BITS, STORED_PW)
            tensors += [kernel, *channel_metadata(inner.name, inner.filters, inner.filters)]
        else:
            tensors += layer_tensors(layer)
    return ByteReport(tuple(tensors), 0, f"{model.name} (folded)")


@dataclass(frozen=True)
class RuntimeBill:
    """What generated kernels cost at run time, next to the backbone's own compute.

    ``cached_kernel_bytes`` is the SRAM that boot/lazy modes hold (every generated INT8 kernel);
    ``stream_kernel_bytes`` the largest one, which stream mode regenerates into on every
    inference at ``synthesis_macs`` per inference instead of once at load.
    """

    inference_macs: int
    synthesis_macs: int
    cached_kernel_bytes: int
    stream_kernel_bytes: int

    def table(self) -> str:
        return "\n".join([
            f"{'backbone MACs per inference':<44}{self.inference_macs:>14,}",
            f"{'synthesis MACs (once in boot/lazy mode)':<44}{self.synthesis_macs:>14,}",
            f"{'  ... or per inference in stream mode':<44}{self.synthesis_macs:>14,}",
            f"{'SRAM for cached kernels (boot/lazy), bytes':<44}{self.cached_kernel_bytes:>14,}",
            f"{'SRAM for the stream kernel buffer, bytes':<44}{self.stream_kernel_bytes:>14,}",
        ])


def _macs(outer: keras.layers.Layer) -> int:
    """Multiply-accumulates of one inference through the model's layer ``outer`` (batch 1).

    Shapes come from ``outer``: a layer inside a tfmot wrapper loaded from a file has none.
    """
    layer = unwrap(outer)
    if isinstance(layer, HyperPWConv2D):
        return int(np.prod(outer.output_shape[1:3])) * layer.in_channels * layer.filters
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return int(np.prod(outer.output_shape[1:])) * int(np.prod(layer.kernel_size))
    if isinstance(layer, keras.layers.Conv2D):
        return int(np.prod(outer.output_shape[1:])) * int(np.prod(layer.kernel.shape[:3]))
    if isinstance(layer, keras.layers.Dense):
        return int(np.prod(layer.kernel.shape))
    return 0


def synthesis_macs_by_layer(model: keras.Model) -> dict[str, int]:
    """Generated layer name → MACs to synthesize its kernel once, from its generator (the bill's one formula)."""
    macs = {}
    for layer in model.layers:
        inner = unwrap(layer)
        if isinstance(inner, HyperPWConv2D):
            macs[inner.name] = int(inner.generator.synthesis_macs(inner.in_channels, inner.filters))
    return macs


def runtime_bill(model: keras.Model) -> RuntimeBill:
    """Backbone MACs, synthesis MACs and the SRAM that generated kernels take."""
    inference = cached = largest = 0
    for layer in model.layers:
        inner = unwrap(layer)
        inference += _macs(layer)
        if isinstance(inner, HyperPWConv2D):
            kernel = inner.in_channels * inner.filters
            cached += kernel
            largest = max(largest, kernel)
    return RuntimeBill(inference, sum(synthesis_macs_by_layer(model).values()), cached, largest)
