"""hyper_tinypw_tf: generated pointwise channel mixers for TinyML in tf_keras.

Public names: the layer, the generator strategies, the reference models and the byte accounting.
``custom_objects()`` lists every serializable class, for ``load_model`` and ``quantize_scope``.
"""

from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.generators import HyperGenerator, PaperGenerator, TiledGenerator
from hyper_tinypw_tf.layers import HyperPWConv2D
from hyper_tinypw_tf.low_rank import LowRankGenerator

__all__ = [
    "HyperGenerator",
    "HyperPWConv2D",
    "LowRankGenerator",
    "PaperGenerator",
    "TiledGenerator",
    "custom_objects",
    "keras",
]


def custom_objects() -> dict[str, type]:
    """Every class a saved hyper_tinypw_tf model may reference, by its plain and registered name."""
    from hyper_tinypw_tf import generators, losses

    classes = [HyperPWConv2D, *generators.STRATEGIES.values(), generators._ClipCodes, losses.SparseFocalLoss]
    objects: dict[str, type] = {}
    for cls in classes:
        objects[cls.__name__] = cls
        objects[keras.saving.get_registered_name(cls)] = cls
    return objects
