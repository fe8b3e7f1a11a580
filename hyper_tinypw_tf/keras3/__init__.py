"""hyper_tinypw_tf for Keras 3: ``HyperPWConv2D`` and the generators on ``keras.ops`` (TensorFlow, JAX, PyTorch).

Train here, then ``to_tf_keras(model)`` for QAT, export and TFLM (the tf_keras path). The float
kernels are ``kernels.py``'s, the same as tf_keras's layer computes.
"""

from hyper_tinypw_tf.keras3.convert import to_keras3, to_tf_keras
from hyper_tinypw_tf.keras3.generators import HyperGenerator, LowRankGenerator, PaperGenerator, TiledGenerator
from hyper_tinypw_tf.keras3.layers import HyperPWConv2D

__all__ = [
    "HyperGenerator",
    "HyperPWConv2D",
    "LowRankGenerator",
    "PaperGenerator",
    "TiledGenerator",
    "to_keras3",
    "to_tf_keras",
]
