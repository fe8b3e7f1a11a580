"""One reading of a Keras model's structure, shared by accounting, QAT and the exporter.

Each of them must agree on which layer sits inside a tfmot wrapper, which layer is tfmot's input
quantizer, which layers exist at all and which BatchNorm folds into a generated kernel: if QAT
leaves a BatchNorm unquantized because it folds, the exporter must fold exactly that one. So
these rules are written here once.
"""

from __future__ import annotations

import numpy as np
import tensorflow_model_optimization as tfmot

from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.layers import HyperPWConv2D

# Layers that store nothing in flash once exported (BatchNorm folds into the conv before it).
WEIGHTLESS_LAYERS = (
    keras.layers.InputLayer,
    keras.layers.BatchNormalization,
    keras.layers.ReLU,
    keras.layers.Activation,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.MaxPooling2D,
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.Dropout,
    keras.layers.Softmax,
    keras.layers.Add,
)
# Layers accounting counts and the exporter lowers (after unwrapping tfmot wrappers).
SUPPORTED_LAYERS = (
    *WEIGHTLESS_LAYERS,
    HyperPWConv2D,
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.Dense,
)


def unwrap(layer: keras.layers.Layer) -> keras.layers.Layer:
    """The user's layer inside tfmot wrappers (QuantizeWrapper, QuantizeAnnotate), or ``layer`` itself."""
    while isinstance(layer, tfmot.quantization.keras.QuantizeWrapper) or (
        hasattr(layer, "layer") and isinstance(layer.layer, keras.layers.Layer)
    ):
        layer = layer.layer
    return layer


def is_quantize_input(layer: keras.layers.Layer) -> bool:
    """Whether ``layer`` is tfmot's input quantizer, which becomes the int8 input's scale and zero point.

    tfmot does not export its QuantizeLayer class publicly; it is recognised by name and module.
    """
    cls = type(layer)
    return cls.__name__ == "QuantizeLayer" and cls.__module__.startswith("tensorflow_model_optimization")


def is_qat(model: keras.Model) -> bool:
    """Whether ``model`` came from tfmot's quantize_apply (it holds quantize wrappers)."""
    return any(isinstance(layer, tfmot.quantization.keras.QuantizeWrapper) for layer in model.layers)


def is_supported(layer: keras.layers.Layer) -> bool:
    """Whether accounting and the exporter know ``layer`` (a model's own layer, wrapped or not)."""
    return is_quantize_input(layer) or isinstance(unwrap(layer), SUPPORTED_LAYERS)


def _edges(model: keras.Model) -> tuple[dict[str, list[keras.layers.Layer]], dict[str, int]]:
    """(unwrapped layer name → the unwrapped layers it feeds, unwrapped layer name → number of inputs)."""
    feeds: dict[str, list[keras.layers.Layer]] = {}
    fan_in: dict[str, int] = {}
    for layer in model.layers:
        for node in layer.inbound_nodes:
            parents = node.inbound_layers
            for parent in parents if isinstance(parents, list) else [parents]:
                feeds.setdefault(unwrap(parent).name, []).append(unwrap(layer))
                fan_in[unwrap(layer).name] = fan_in.get(unwrap(layer).name, 0) + 1
    return feeds, fan_in


def children(model: keras.Model) -> dict[str, list[keras.layers.Layer]]:
    """Unwrapped layer name → the unwrapped layers it feeds, one entry per call."""
    return _edges(model)[0]


def is_linear(layer: keras.layers.Layer) -> bool:
    """Whether ``layer`` applies no activation (none, or keras' linear)."""
    activation = getattr(layer, "activation", None)
    return activation is None or activation is keras.activations.linear


def batchnorm_gain(bn: keras.layers.BatchNormalization) -> np.ndarray:
    """The per-channel gain gamma/sqrt(var+eps) of a BatchNorm in inference (what folds into a kernel)."""
    variance = np.asarray(bn.moving_variance.numpy(), np.float64)
    gamma = np.asarray(bn.gamma.numpy(), np.float64) if bn.scale else np.ones_like(variance)
    return gamma / np.sqrt(variance + bn.epsilon)


def folded_batchnorms(model: keras.Model) -> dict[str, keras.layers.BatchNormalization]:
    """The fold rule: generated layer name → the BatchNorm folded into its kernel.

    A BatchNorm folds into a HyperPWConv2D when the layer has no activation, is called once and
    feeds that BatchNorm alone, and the BatchNorm has that single input. Then BN is a per-channel
    gain and shift of the kernel's output, which per-channel int8 absorbs (its sign stored apart).
    QAT leaves exactly these BatchNorms unquantized and the exporter folds exactly these.
    """
    feeds, fan_in = _edges(model)
    found = {}
    for outer in model.layers:
        layer = unwrap(outer)
        if not isinstance(layer, HyperPWConv2D) or not is_linear(layer) or len(outer.inbound_nodes) != 1:
            continue
        after = feeds.get(layer.name, [])
        if len(after) == 1 and isinstance(after[0], keras.layers.BatchNormalization) and fan_in[after[0].name] == 1:
            found[layer.name] = after[0]
    return found
