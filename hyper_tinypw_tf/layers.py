"""HyperPWConv2D: a 1×1 convolution whose kernel is generated from a code by a shared generator."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from hyper_tinypw_tf import generators
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.generators import PACKAGE, HyperGenerator


def _single(value: Any, arg: str, allowed: Any) -> None:
    """Refuse Conv2D arguments a pointwise stride-1 conv cannot honour."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if any(v != allowed for v in values):
        raise ValueError(f"HyperPWConv2D only supports {arg}={allowed}, received {arg}={value!r}")


@keras.utils.register_keras_serializable(package=PACKAGE)
class HyperPWConv2D(keras.layers.Layer):
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

    def __init__(
        self,
        filters: int,
        kernel_size: Any = (1, 1),
        strides: Any = (1, 1),
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = (1, 1),
        groups: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        bias_initializer: Any = "zeros",
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        bias_constraint: Any = None,
        generator: Any = generators.TiledGenerator.strategy,
        code_initializer: Any = None,
        code_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if not isinstance(filters, int) or isinstance(filters, bool) or filters <= 0:
            raise ValueError(f"filters must be a positive integer, received filters={filters!r}")
        _single(kernel_size, "kernel_size", 1)
        _single(strides, "strides", 1)
        _single(dilation_rate, "dilation_rate", 1)
        if groups != 1:
            raise ValueError(f"HyperPWConv2D only supports groups=1, received groups={groups!r}")
        if padding.lower() not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', received padding={padding!r}")
        if data_format not in (None, "channels_last"):
            raise ValueError(f"HyperPWConv2D only supports data_format='channels_last', received {data_format!r}")
        self.filters = filters
        self.padding = padding.lower()
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.generator: HyperGenerator = generators.resolve(generator, self.name)
        self.code_initializer = keras.initializers.get(
            code_initializer or keras.initializers.RandomUniform(-1.0, 1.0)
        )
        self.code_regularizer = keras.regularizers.get(code_regularizer)
        self.input_spec = keras.layers.InputSpec(ndim=4)
        # Simulate the device's integer synthesis (set by the QuantizeConfig for QAT).
        self.quantize_synthesis = False

    def build(self, input_shape: Any) -> None:
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank != 4:
            raise ValueError(
                f"Layer {self.name!r} expects a 4D input (batch, rows, cols, channels), "
                f"received input_shape={input_shape}"
            )
        c_in = input_shape[-1]
        if c_in is None:
            raise ValueError(f"Layer {self.name!r}: the channel dimension must be known, received {input_shape}")
        self.generator.validate_layer(int(c_in), self.filters, self.name)
        if not self.generator.built:
            self.generator.build(None)
        self.in_channels = int(c_in)
        self.synthesis_weights = self.generator.create_layer_weights(self, self.in_channels, self.filters)
        self.bias = (
            self.add_weight(
                "bias", (self.filters,), initializer=self.bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint, trainable=True,
            )
            if self.use_bias
            else None
        )
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: self.in_channels})
        super().build(input_shape)

    @property
    def trainable_weights(self) -> list:
        # Until built, the layer has no weights of its own, and it must not list the shared
        # generator's either: tfmot's QuantizeWrapperV2 snapshots this list before build, and a
        # generator already built by another layer would put the weights out of order.
        return super().trainable_weights if self.built else []

    @property
    def non_trainable_weights(self) -> list:
        return super().non_trainable_weights if self.built else []

    def generated_kernel(self, quantize: bool | None = None) -> tf.Tensor:
        """The kernel ``K[o, i]`` (C_out, C_in) the generator makes for this layer."""
        quantize = self.quantize_synthesis if quantize is None else quantize
        kernel = self.generator.kernel(self.synthesis_weights, self.in_channels, self.filters, quantize)
        return generators.fake_quant_channels(kernel) if quantize else kernel

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

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=(1, 1),
            strides=(1, 1),
            padding=self.padding,
            data_format="channels_last",
            dilation_rate=(1, 1),
            groups=1,
            activation=keras.activations.serialize(self.activation),
            use_bias=self.use_bias,
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            bias_regularizer=keras.regularizers.serialize(self.bias_regularizer),
            bias_constraint=keras.constraints.serialize(self.bias_constraint),
            activity_regularizer=keras.regularizers.serialize(self.activity_regularizer),
            generator=generators.serialize(self.generator),
            code_initializer=keras.initializers.serialize(self.code_initializer),
            code_regularizer=keras.regularizers.serialize(self.code_regularizer),
        )
        return config
