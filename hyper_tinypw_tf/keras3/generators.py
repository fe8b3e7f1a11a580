"""Keras 3's generator strategies: ``kernels.py``'s strategies on ``keras.ops`` (TensorFlow, JAX, PyTorch).

Same constructor arguments, float kernel and sharing rules as tf_keras's ``generators.py`` (both mix
in the same ``kernels`` classes); no integer contract: a trained Keras 3 model is exported through
``hyper_tinypw_tf.to_tf_keras``.
"""

from __future__ import annotations

import keras

from hyper_tinypw_tf import kernels, sharing
from hyper_tinypw_tf.generators import PACKAGE

# Keras 3's strategies and live generators, apart from tf_keras's: FAMILY.get, .resolve, .serialize, ...
FAMILY = sharing.Family("Keras 3")


@keras.saving.register_keras_serializable(package=PACKAGE)
class _ClipCodes(kernels.ClipCodes, keras.constraints.Constraint):
    """Clip codes to ``[-limit, limit]`` after each update."""

    ops = keras.ops


class HyperGenerator(kernels.Strategy, keras.layers.Layer):
    """Base of Keras 3's strategies: ``kernels.Strategy`` on ``keras.ops``."""

    ops = keras.ops
    family = FAMILY
    clip_codes = _ClipCodes


def register(cls: type[HyperGenerator]) -> type[HyperGenerator]:
    """Class decorator: a Keras 3 strategy known by name and serializable as ``hyper_tinypw_tf>Name``."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(FAMILY.register(cls))


class MLPGenerator(kernels.MLPStrategy, HyperGenerator):
    __doc__ = kernels.MLPStrategy.__doc__


@register
class TiledGenerator(kernels.TiledStrategy, MLPGenerator):
    __doc__ = kernels.TiledStrategy.__doc__


@register
class PaperGenerator(kernels.PaperStrategy, MLPGenerator):
    __doc__ = kernels.PaperStrategy.__doc__


@register
class LowRankGenerator(kernels.LowRankStrategy, HyperGenerator):
    __doc__ = kernels.LowRankStrategy.__doc__
