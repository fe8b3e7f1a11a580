"""Move a model between Keras 3 and tf_keras: same graph, same weights, one shared generator.

Train in Keras 3 on any backend, then ``to_tf_keras(model)`` gives the tf_keras model that QAT
(tfmot), ``export``, ``expand`` and ``tflm`` take; ``to_keras3(model)`` goes the other way (the
reference models of ``models.py`` as Keras 3 models). Both read the source model's functional
config, rebuild each layer from its config in the target Keras (so the generators are shared by
``sharing.Family.resolve``, as when loading a model) and copy every weight by layer name.
Initializers are not carried over (the weights are); everything else in a layer's config is, and
a setting the target Keras cannot hold is refused, naming the layer.
"""

from __future__ import annotations

import inspect as pyinspect
from types import ModuleType
from typing import Any

import keras
import numpy as np

from hyper_tinypw_tf import inspect
from hyper_tinypw_tf._keras import keras as tf_keras
from hyper_tinypw_tf.keras3 import layers as k3_layers
from hyper_tinypw_tf.layers import HyperPWConv2D as TfKerasHyperPWConv2D
from hyper_tinypw_tf.pointwise import PointwiseBase

# The layers the exporter lowers (inspect.SUPPORTED_LAYERS), by class name.
SUPPORTED = sorted({cls.__name__ for cls in inspect.SUPPORTED_LAYERS})
# Config keys one Keras has and the other lacks, with the value that means "off" (dropped when off).
_NEUTRAL = {"renorm": False, "renorm_clipping": None, "renorm_momentum": 0.99, "quantization_config": None,
            "groups": 1, "activity_regularizer": None, "lora_rank": None, "lora_alpha": None}
_LAYER_KEYS = ("name", "trainable", "dtype")


def to_tf_keras(model: keras.Model) -> Any:
    """The tf_keras twin of a functional Keras 3 model: same layers, weights and one shared generator.

    Raises:
      ValueError: ``model`` is not a functional Keras 3 model, holds a layer the exporter does not
        lower, or a setting tf_keras cannot hold (each message names the layer).
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"to_tf_keras: model must be a Keras 3 keras.Model, received {type(model).__name__}")
    return _convert(model, tf_keras, TfKerasHyperPWConv2D, "to_tf_keras")


def to_keras3(model: Any) -> keras.Model:
    """The Keras 3 twin of a functional tf_keras model (e.g. ``models.for_task(...)``), weights included."""
    if not isinstance(model, tf_keras.Model):
        raise ValueError(f"to_keras3: model must be a tf_keras Model, received {type(model).__name__}")
    return _convert(model, keras, k3_layers.HyperPWConv2D, "to_keras3")


def _convert(model: Any, target: ModuleType, hyper_cls: type, what: str) -> Any:
    if isinstance(model, (keras.Sequential, tf_keras.Sequential)) or not model.get_config().get("input_layers"):
        raise ValueError(f"{what}: model {model.name!r} must be a functional model (Input -> layers), "
                         f"received a {type(model).__name__}")
    config = model.get_config()
    tensors: dict[tuple[str, int], Any] = {}
    for entry in config["layers"]:
        name, class_name = entry["config"]["name"], entry["class_name"]
        if class_name == "InputLayer":
            layer_config = entry["config"]
            shape = layer_config.get("batch_shape") or layer_config.get("batch_input_shape")
            _float32(layer_config.get("dtype"), name, what)
            tensors[(name, 0)] = target.Input(shape=tuple(shape[1:]), name=name)
            continue
        layer = _layer(entry, target, hyper_cls, what)
        for index, node in enumerate(_nodes(entry["inbound_nodes"])):
            inputs = [tensors[(ref[0], ref[1])] for ref in node]
            tensors[(name, index)] = layer(inputs[0] if len(inputs) == 1 else inputs)
    outputs = [tensors[(ref[0], ref[1])] for ref in _refs(config["output_layers"])]
    inputs = [tensors[(ref[0], ref[1])] for ref in _refs(config["input_layers"])]
    rebuilt = target.Model(inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0],
                           name=model.name)
    _copy_weights(model, rebuilt)
    return rebuilt


def _refs(spec: list) -> list[list]:
    """``[name, node, tensor]`` references: one, or a list of them."""
    return [spec] if spec and isinstance(spec[0], str) else list(spec)


def _nodes(inbound: list) -> list[list[tuple[str, int]]]:
    """Each call's input references (layer name, node index), from either Keras' config format."""
    nodes = []
    for node in inbound:
        if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}} holding __keras_tensor__ dicts
            found: list[tuple[str, int]] = []
            _keras_tensors(node["args"], found)
            nodes.append(found)
        else:  # tf_keras: [[name, node_index, tensor_index, kwargs], ...]
            nodes.append([(ref[0], ref[1]) for ref in node])
    return nodes


def _keras_tensors(value: Any, found: list[tuple[str, int]]) -> None:
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        history = value["config"]["keras_history"]
        found.append((history[0], history[1]))
    elif isinstance(value, (list, tuple)):
        for item in value:
            _keras_tensors(item, found)


def _layer(entry: dict, target: ModuleType, hyper_cls: type, what: str) -> Any:
    name, class_name = entry["config"]["name"], entry["class_name"]
    if class_name == "HyperPWConv2D":
        cls = hyper_cls
    elif class_name in SUPPORTED and hasattr(target.layers, class_name):
        cls = getattr(target.layers, class_name)
    else:
        raise ValueError(f"{what}: layer {name!r} is a {class_name}, which the exporter does not lower; "
                         f"supported layers: {', '.join(SUPPORTED)}")
    accepted = set(pyinspect.signature(cls.__init__).parameters) | set(_LAYER_KEYS)
    config = {}
    for key, value in entry["config"].items():
        if key.endswith("_initializer"):
            continue
        if key not in accepted:
            if key in _NEUTRAL and value == _NEUTRAL[key]:
                continue
            raise ValueError(f"{what}: layer {name!r} ({class_name}) sets {key}={value!r}, "
                             f"which the target Keras' {class_name} cannot hold")
        config[key] = _value(key, value, name, what)
    return cls.from_config(config)


def _value(key: str, value: Any, layer_name: str, what: str) -> Any:
    """A config value as the other Keras reads it."""
    if key == "dtype":
        return _float32(value, layer_name, what)
    if key == "axis" and isinstance(value, list) and len(value) == 1:
        return value[0]  # tf_keras writes BatchNormalization's axis as a list, Keras 3 wants an int
    if key == "generator" and isinstance(value, dict):
        generator = {k: _value(k, v, layer_name, what) for k, v in value.get("config", {}).items()}
        return {**value, "config": generator}
    return _plain(value)


def _plain(value: Any) -> Any:
    """A serialized Keras object as ``{"class_name", "config"}``, which both Keras versions read."""
    if isinstance(value, dict) and "class_name" in value and "config" in value:
        return {"class_name": value.get("registered_name") or value["class_name"], "config": _plain(value["config"])}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _float32(dtype: Any, layer_name: str, what: str) -> str:
    name = dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype
    if name not in (None, "float32"):
        raise ValueError(f"{what}: layer {layer_name!r} computes in {name}; only float32 models convert")
    return "float32"


def _copy_weights(source: Any, target: Any) -> None:
    """Every layer's weights by name; each generator's shared variables once."""
    generators = {}
    for layer in source.layers:
        twin = target.get_layer(layer.name)
        if isinstance(layer, PointwiseBase):
            for key, variable in layer.synthesis_weights.items():
                twin.synthesis_weights[key].assign(np.array(variable))
            if layer.use_bias:
                twin.bias.assign(np.array(layer.bias))
            generators[id(layer.generator)] = (layer.generator, twin.generator)
        elif layer.weights:
            twin.set_weights(layer.get_weights())
    for generator, twin in generators.values():
        for spec in generator.shared_variables():
            getattr(twin, spec.name).assign(np.array(getattr(generator, spec.name)))
