"""hyper_tinypw_tf: generated pointwise channel mixers for TinyML, in Keras 3 and tf_keras.

Public names: the layer, the generator strategies, the reference models and the byte accounting.
``HyperPWConv2D``, the generators and ``keras`` follow the process's Keras, as ``tf.keras`` does:
tf_keras's classes (``hyper_tinypw_tf.layers``, ``generators``) when ``TF_USE_LEGACY_KERAS=1`` was
set before this import, Keras 3's (``hyper_tinypw_tf.keras3``, any backend) otherwise. QAT, export
and TFLM run on tf_keras models: ``to_tf_keras`` turns a trained Keras 3 model into one.
``custom_objects()`` lists every serializable tf_keras class, for tf_keras's ``load_model`` and
``quantize_scope`` (Keras 3 finds its classes by their registered names).
"""

from hyper_tinypw_tf import generators as _generators
from hyper_tinypw_tf._keras import LEGACY_PROCESS
from hyper_tinypw_tf._keras import keras as _tf_keras
from hyper_tinypw_tf.layers import HyperPWConv2D as _HyperPWConv2D

if LEGACY_PROCESS:
    from hyper_tinypw_tf._keras import keras
    from hyper_tinypw_tf.generators import HyperGenerator, PaperGenerator, TiledGenerator
    from hyper_tinypw_tf.layers import HyperPWConv2D
    from hyper_tinypw_tf.low_rank import LowRankGenerator
else:
    import keras

    from hyper_tinypw_tf.keras3 import HyperGenerator, HyperPWConv2D, LowRankGenerator, PaperGenerator, TiledGenerator

__all__ = [
    "LEGACY_PROCESS",
    "HyperGenerator",
    "HyperPWConv2D",
    "LowRankGenerator",
    "PaperGenerator",
    "TiledGenerator",
    "compress",
    "custom_objects",
    "keras",
    "to_keras3",
    "to_tf_keras",
]


def __getattr__(name: str):
    """The converters load Keras 3 and tfmot, and ``compress`` tfmot and the exporter: imported on first use."""
    if name == "compress":
        import importlib

        return importlib.import_module("hyper_tinypw_tf.app.compress")
    if name in ("to_tf_keras", "to_keras3"):
        from hyper_tinypw_tf.keras3 import convert

        return getattr(convert, name)
    raise AttributeError(f"module 'hyper_tinypw_tf' has no attribute {name!r}")


def custom_objects() -> dict[str, type]:
    """Every class a saved tf_keras hyper_tinypw_tf model may reference, by its plain and registered name."""
    from hyper_tinypw_tf import losses

    classes = [_HyperPWConv2D, *_generators.STRATEGIES.values(), _generators._ClipCodes, losses.SparseFocalLoss]
    objects: dict[str, type] = {}
    for cls in classes:
        objects[cls.__name__] = cls
        objects[_tf_keras.saving.get_registered_name(cls)] = cls
    return objects
