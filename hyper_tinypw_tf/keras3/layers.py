"""HyperPWConv2D for Keras 3: the same layer as tf_keras's (``pointwise.PointwiseBase``) on ``keras.ops``."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from hyper_tinypw_tf.generators import PACKAGE
from hyper_tinypw_tf.keras3 import generators
from hyper_tinypw_tf.pointwise import PointwiseBase


@keras.saving.register_keras_serializable(package=PACKAGE)
class HyperPWConv2D(PointwiseBase, keras.layers.Layer):
    """Pointwise 2D convolution (1×1, stride 1, NHWC) with a generated kernel, for Keras 3.

    The arguments, checks, sharing and float kernel of tf_keras's ``hyper_tinypw_tf.layers.HyperPWConv2D``
    (see its docstring), on any Keras 3 backend. ``generator`` takes a Keras 3 generator
    (``hyper_tinypw_tf.keras3.TiledGenerator``, ...), a strategy name or a serialized generator.

    Example:
      >>> gen = TiledGenerator(tile_size=8, code_dim=4)
      >>> x = keras.Input((32, 1, 16))
      >>> y = HyperPWConv2D(32, generator=gen)(x)
      >>> y = HyperPWConv2D(32, generator=gen)(y)  # shares gen's variables
    """

    keras_api = keras
    family = generators.FAMILY

    def convolution_op(self, inputs: Any, kernel: Any) -> Any:
        """The 1×1 convolution with a Keras-layout kernel (1, 1, C_in, C_out)."""
        return ops.conv(inputs, kernel, strides=1, padding="valid", data_format="channels_last")

    def call(self, inputs: Any) -> Any:
        kernel = ops.reshape(ops.transpose(self.generated_kernel()), (1, 1, self.in_channels, self.filters))
        outputs = self.convolution_op(inputs, ops.cast(kernel, inputs.dtype))
        if self.use_bias:
            outputs = outputs + ops.cast(self.bias, outputs.dtype)
        return self.activation(outputs) if self.activation is not None else outputs

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (*tuple(input_shape)[:-1], self.filters)
