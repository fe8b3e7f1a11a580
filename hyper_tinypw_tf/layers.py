"""HyperPWConv2D (tf_keras): a 1×1 convolution whose kernel is generated from a code by a shared generator."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from hyper_tinypw_tf import generators
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.generators import PACKAGE
from hyper_tinypw_tf.pointwise import PointwiseBase


@keras.utils.register_keras_serializable(package=PACKAGE)
class HyperPWConv2D(PointwiseBase, keras.layers.Layer):
    """Pointwise 2D convolution (1×1, stride 1, NHWC) with a generated kernel.

    Behaves like ``Conv2D(filters, 1)`` whose kernel ``K`` is made from this layer's code(s)
    by a generator shared with other layers, following docs/synthesis.md. What a device
    stores for this layer is the code(s) and, for some strategies, a small head; the kernel is
    synthesized once at load time. The arguments kept from ``Conv2D`` mean the same; there is
    no ``kernel_*`` argument because there is no kernel variable.

    Args:
      filters: number of output channels.
      kernel_size, strides, dilation_rate, groups: accepted for Conv2D compatibility; must be 1.
      padding: "valid" or "same" (identical for a 1×1 kernel).
      data_format: "channels_last" or None.
      activation, use_bias, bias_initializer, bias_regularizer, activity_regularizer,
        bias_constraint: as in ``Conv2D``.
      generator: a :class:`HyperGenerator` instance (share it by passing the same instance to
        several layers), a strategy name (a key of ``generators.STRATEGIES``) for a private
        generator, or a serialized generator dict.
      code_initializer, code_regularizer: for this layer's codes.

    Input shape:
      4D tensor ``(batch, rows, cols, channels)``.

    Output shape:
      4D tensor ``(batch, rows, cols, filters)``.

    Raises:
      ValueError: on a non-positive ``filters``, a non-unit kernel/stride/dilation/groups, an
        input that is not 4D, or a layer shape the shared generator cannot serve.

    Example:
      >>> gen = TiledGenerator(tile_size=8, code_dim=4)
      >>> x = keras.Input((32, 1, 16))
      >>> y = HyperPWConv2D(32, generator=gen)(x)
      >>> y = HyperPWConv2D(32, generator=gen)(y)  # shares gen's variables

    References:
      Shaalan, HyperTinyPW, arXiv:2603.24916 (MLSys 2026); Ha, Dai & Le, HyperNetworks, ICLR 2017.
    """

    keras_api = keras
    family = generators.FAMILY

    @property
    def trainable_weights(self) -> list:
        # Until built, the layer has no weights of its own, and it must not list the shared
        # generator's either: tfmot's QuantizeWrapperV2 snapshots this list before build, and a
        # generator already built by another layer would put the weights out of order.
        return super().trainable_weights if self.built else []

    @property
    def non_trainable_weights(self) -> list:
        return super().non_trainable_weights if self.built else []

    def convolution_op(self, inputs: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        """The 1×1 convolution with a Keras-layout kernel (1, 1, C_in, C_out)."""
        return tf.nn.conv2d(inputs, kernel, strides=1, padding="VALID")

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        kernel = tf.reshape(tf.transpose(self.generated_kernel()), (1, 1, self.in_channels, self.filters))
        outputs = self.convolution_op(inputs, tf.cast(kernel, inputs.dtype))
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, tf.cast(self.bias, outputs.dtype))
        return self.activation(outputs) if self.activation is not None else outputs

    def compute_output_shape(self, input_shape: Any) -> tf.TensorShape:
        return tf.TensorShape(input_shape)[:-1].concatenate([self.filters])
