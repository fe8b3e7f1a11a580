"""Quantization-aware training with tfmot for models holding HyperPWConv2D layers.

The layer knows nothing of tfmot; ``HyperPWConv2DQuantizeConfig`` tells tfmot what to do with it.
The generated kernel is not a variable, so the config hands tfmot no weights: it switches the
layer to simulate the device's integer synthesis (stored bits of codes, generator and heads; int8
hidden activations; the per-channel int8 kernel), which runs inside the layer's ``call``.
Every other layer keeps tfmot's default 8-bit scheme.
"""

from __future__ import annotations

import ast
import contextlib
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import tensorflow_model_optimization as tfmot

from hyper_tinypw_tf import atomic, custom_objects, inspect
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.generators import PACKAGE, HyperGenerator
from hyper_tinypw_tf.layers import HyperPWConv2D

_qkeras = tfmot.quantization.keras


@keras.utils.register_keras_serializable(package=PACKAGE)
class HyperPWConv2DQuantizeConfig(_qkeras.QuantizeConfig):
    """QAT for HyperPWConv2D: synthesis simulated in ``call``; activation and output as tfmot does.

    ``get_weights_and_quantizers`` returns nothing because there is no kernel variable; it is
    where tfmot hands us the layer at build time, so it turns the simulation on.
    """

    def get_weights_and_quantizers(self, layer: HyperPWConv2D) -> list:
        if not isinstance(layer, HyperPWConv2D):
            raise ValueError(
                f"HyperPWConv2DQuantizeConfig applies to HyperPWConv2D, received layer {layer.name!r} "
                f"of type {type(layer).__name__}"
            )
        layer.quantize_synthesis = True
        return []

    def get_activations_and_quantizers(self, layer: HyperPWConv2D) -> list:
        if layer.activation is None or layer.activation is keras.activations.linear:
            return []
        return [(layer.activation, _qkeras.quantizers.MovingAverageQuantizer(8, False, False, False))]

    def set_quantize_weights(self, layer: HyperPWConv2D, quantize_weights: list) -> None:
        if quantize_weights:
            raise ValueError(f"HyperPWConv2DQuantizeConfig: layer {layer.name!r} has no weights to replace")

    def set_quantize_activations(self, layer: HyperPWConv2D, quantize_activations: list) -> None:
        if quantize_activations:
            layer.activation = quantize_activations[0]

    def get_output_quantizers(self, layer: HyperPWConv2D) -> list:
        return []

    def get_config(self) -> dict[str, Any]:
        return {}


@keras.utils.register_keras_serializable(package=PACKAGE)
class FoldedBatchNormQuantizeConfig(_qkeras.QuantizeConfig):
    """BatchNorm after a HyperPWConv2D: nothing quantized here, as it folds into the kernel.

    The folded kernel is the generated one with each output row scaled by BN's gain, and
    per-channel int8 quantization is invariant to that scaling (its sign is stored apart), so
    fake-quantizing the kernel before BN is exactly what the device runs.
    """

    def get_weights_and_quantizers(self, layer: keras.layers.Layer) -> list:
        return []

    def get_activations_and_quantizers(self, layer: keras.layers.Layer) -> list:
        return []

    def set_quantize_weights(self, layer: keras.layers.Layer, quantize_weights: list) -> None:
        pass

    def set_quantize_activations(self, layer: keras.layers.Layer, quantize_activations: list) -> None:
        pass

    def get_output_quantizers(self, layer: keras.layers.Layer) -> list:
        return []

    def get_config(self) -> dict[str, Any]:
        return {}


@keras.utils.register_keras_serializable(package=PACKAGE)
class FrozenAffineQuantizeConfig(_qkeras.QuantizeConfig):
    """A frozen 1x1 depthwise conv (the input normalization): output quantized, weights left alone.

    tfmot's default config moves the kernel into its wrapper as a trainable weight, so QAT would
    retrain the train-split statistics. Handing tfmot no weights keeps the layer's own
    ``trainable=False`` in force; nothing is lost, because per-channel int8 represents a kernel
    with one value per channel exactly.
    """

    def get_weights_and_quantizers(self, layer: keras.layers.Layer) -> list:
        return []

    def get_activations_and_quantizers(self, layer: keras.layers.Layer) -> list:
        return [(layer.activation, _qkeras.quantizers.MovingAverageQuantizer(8, False, False, False))]

    def set_quantize_weights(self, layer: keras.layers.Layer, quantize_weights: list) -> None:
        if quantize_weights:
            raise ValueError(f"FrozenAffineQuantizeConfig: layer {layer.name!r} keeps its weights unquantized")

    def set_quantize_activations(self, layer: keras.layers.Layer, quantize_activations: list) -> None:
        if quantize_activations:
            layer.activation = quantize_activations[0]

    def get_output_quantizers(self, layer: keras.layers.Layer) -> list:
        return []

    def get_config(self) -> dict[str, Any]:
        return {}


def is_frozen_affine(layer: keras.layers.Layer) -> bool:
    """A non-trainable 1x1 DepthwiseConv2D: a fixed per-channel scale and shift."""
    return (
        isinstance(layer, keras.layers.DepthwiseConv2D)
        and not layer.trainable
        and tuple(layer.kernel_size) == (1, 1)
    )


def all_custom_objects() -> dict[str, type]:
    """The package's serializable classes plus this module's, for loading QAT models."""
    objects = custom_objects()
    for cls in (HyperPWConv2DQuantizeConfig, FoldedBatchNormQuantizeConfig, FrozenAffineQuantizeConfig):
        objects[cls.__name__] = cls
        objects[keras.saving.get_registered_name(cls)] = cls
    return objects


def quantize_scope() -> contextlib.AbstractContextManager:
    """tfmot's quantize_scope with every hyper_tinypw_tf class in it."""
    return _qkeras.quantize_scope(all_custom_objects())


def batchnorms_after_hyper(model: keras.Model) -> dict[str, HyperPWConv2D]:
    """BatchNorm layers that fold into a generated kernel, by name, with their HyperPWConv2D.

    The rule is ``inspect.folded_batchnorms``, the one the exporter folds by.
    """
    layers = {layer.name: layer for layer in model.layers}
    return {bn.name: layers[name] for name, bn in inspect.folded_batchnorms(model).items()}


def _annotator(folded: dict[str, HyperPWConv2D]):
    def annotate(layer: keras.layers.Layer) -> keras.layers.Layer:
        if isinstance(layer, HyperPWConv2D):
            return _qkeras.quantize_annotate_layer(layer, HyperPWConv2DQuantizeConfig())
        if layer.name in folded:
            return _qkeras.quantize_annotate_layer(layer, FoldedBatchNormQuantizeConfig())
        if is_frozen_affine(layer):
            return _qkeras.quantize_annotate_layer(layer, FrozenAffineQuantizeConfig())
        return _qkeras.quantize_annotate_layer(layer)

    return annotate


def quantize_model(model: keras.Model, *, preserve_clusters: bool = False) -> keras.Model:
    """A QAT copy of ``model``: tfmot's default 8-bit scheme plus simulated synthesis in hyper layers.

    ``preserve_clusters``: tfmot's cluster-preserving QAT (CQAT) for a clustered model
    (``hyper_tinypw_tf.clustering``): each stored Conv2D/Dense kernel trains its centroids, not its
    values, so it still holds its clusters after QAT and the file can be LUT-compressed. Plain QAT moves
    every value on its own and undoes them. Such a model does not survive tf_keras's save/load (tfmot's
    cluster-preserving quantizers are not deserializable): train it, then :func:`without_cluster_preservation`.
    """
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(f"quantize_model needs a built tf_keras model, received {model!r}")
    folded = batchnorms_after_hyper(model)
    for name, after in inspect.children(model).items():
        for layer in after:
            if isinstance(layer, keras.layers.BatchNormalization) and layer.name not in folded and isinstance(
                model.get_layer(name), HyperPWConv2D
            ):
                raise ValueError(
                    f"quantize_model: BatchNormalization {layer.name!r} after HyperPWConv2D {name!r} does not fold "
                    "into the generated kernel (the layer has an activation, several consumers or several calls); "
                    "apply the activation after the BatchNorm"
                )
    with quantize_scope():
        annotate = _annotator(folded)
        annotated = keras.models.clone_model(model, clone_function=annotate)
        annotated.set_weights(model.get_weights())
        scheme = (tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=False)
                  if preserve_clusters else _qkeras.default_8bit.Default8BitQuantizeScheme())
        return _qkeras.quantize_apply(annotated, scheme=scheme)


def without_cluster_preservation(cqat_model: keras.Model, clustered: keras.Model) -> keras.Model:
    """A default-scheme QAT model of ``clustered`` holding ``cqat_model``'s trained values: one tf_keras can save.

    CQAT writes the clustered values into each kernel variable at every training step, so the kernels,
    ranges and other variables, copied layer by layer, are the trained model; the centroid and index
    variables CQAT adds are left behind. Both export to the same file (``tests/test_peers.py``).
    """
    plain = quantize_model(clustered)
    for mine, theirs in zip(plain.layers, cqat_model.layers, strict=True):
        kept = [w for w in theirs.weights if _leaf(w, theirs) not in _CQAT_VARIABLES]
        if [_leaf(w, theirs) for w in kept] != [_leaf(w, mine) for w in mine.weights]:
            raise ValueError(f"without_cluster_preservation: layer {theirs.name!r} of the CQAT model does not match "
                             f"{mine.name!r}; pass the clustered model it was quantized from")
        mine.set_weights([w.numpy() for w in kept])
    return plain


_CQAT_VARIABLES = ("cluster_centroids_tf", "ori_weights_vars_tf", "pulling_indices_tf")  # tfmot's names


def _leaf(weight: Any, layer: keras.layers.Layer) -> str:
    """A variable's own name, its layer's name masked (``quantize_layer_1/quantize_layer_1_min:0`` → ``*_min``)."""
    return weight.name.split(":")[0].rsplit("/", 1)[-1].replace(layer.name, "*")


_DUPLICATES_WARNING = "Found duplicated `Variable`s in Model's `weights`"


def _shared_only_by_generators(model: keras.Model) -> bool:
    """Whether every variable the model lists more than once belongs to a HyperGenerator.

    tf_keras's H5 writer stores weights per layer, so a generator shared by N layers is written N times;
    on load, ``from_config`` rebuilds one shared generator and each layer's copy is assigned into its
    same variables (equal values), so the sharing survives (tests/test_serialization.py).
    """
    seen: dict[int, int] = {}
    for weight in model._undeduplicated_weights:  # what tf_keras's warning compares with model.weights
        seen[id(weight)] = seen.get(id(weight), 0) + 1
    generator_ids = {id(w) for layer in model.submodules if isinstance(layer, HyperGenerator) for w in layer.weights}
    return all(count == 1 or key in generator_ids for key, count in seen.items())


@contextlib.contextmanager
def _tf_log_without(drop: Callable[[str], bool]) -> Iterator[None]:
    """TensorFlow's log without the records whose message ``drop`` picks, while the block runs."""
    tf_logger = logging.getLogger("tensorflow")

    def keep(record: logging.LogRecord) -> bool:
        return not drop(record.getMessage())

    tf_logger.addFilter(keep)
    try:
        yield
    finally:
        tf_logger.removeFilter(keep)


def cqat_training_log(cqat_model: keras.Model) -> contextlib.AbstractContextManager:
    """Training a CQAT model without the optimizer's warning that its clustered kernels get no gradient.

    That is CQAT by design: the centroids train and each step writes them into the kernel. The warning
    is dropped only when every variable it names is such a kernel; any other is printed as TensorFlow wrote it.
    """
    # A wrapper's first weight is its layer's kernel (``layer.layer.kernel`` is the quantized tensor after a call).
    clustered = {layer.weights[0].name for layer in cqat_model.layers
                 if any(_leaf(w, layer) == _CQAT_VARIABLES[0] for w in layer.weights)}

    def only_clustered_kernels(message: str) -> bool:
        named = re.match(r"Gradients do not exist for variables (\[.*?\]) when minimizing", message)
        return bool(named) and set(ast.literal_eval(named.group(1))) <= clustered

    return _tf_log_without(only_clustered_kernels)


def save_model(model: keras.Model, path: str | Path) -> None:
    """``model.save(path)`` through a temporary name in the same folder, then a rename (a killed save
    leaves no file), without tf_keras's H5 warning that shared variables will not stay shared.

    The warning is silenced only when the generators are the only shared variables, where it is untrue:
    the reloaded model holds one generator whose variables every hyper layer uses. For any other shared
    variable it is printed as tf_keras wrote it.
    """
    quiet = str(path).endswith((".h5", ".hdf5")) and _shared_only_by_generators(model)
    with _tf_log_without(lambda message: quiet and _DUPLICATES_WARNING in message):
        with atomic.atomic_path(path) as tmp:
            model.save(tmp)
