"""What ``HyperPWConv2D`` is on any Keras: its arguments and their checks, its build, its config.

tf_keras's layer (``layers.py``) and Keras 3's (``keras3/layers.py``) mix :class:`PointwiseBase`
into their own ``Layer``; each names its Keras (``keras_api``), its generators (``family``, a
``sharing.Family``) and writes only ``call``, the op it runs on its framework's tensors.
"""

from __future__ import annotations

from typing import Any

from hyper_tinypw_tf import kernels


def _single(value: Any, arg: str, allowed: Any) -> None:
    """Refuse Conv2D arguments a pointwise stride-1 conv cannot honour."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if any(v != allowed for v in values):
        raise ValueError(f"HyperPWConv2D only supports {arg}={allowed}, received {arg}={value!r}")


class PointwiseBase:
    """The body of ``HyperPWConv2D`` shared by both Keras versions (see ``layers.HyperPWConv2D``)."""

    keras_api: Any = None  # the Keras module of the Layer this is mixed into
    family: Any = None  # that Keras' generators (sharing.Family)

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
        generator: Any = kernels.TiledStrategy.strategy,
        code_initializer: Any = None,
        code_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        keras = self.keras_api
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
        self.generator = self.family.resolve(generator, self.name)
        self.code_initializer = keras.initializers.get(
            code_initializer or keras.initializers.RandomUniform(-1.0, 1.0)
        )
        self.code_regularizer = keras.regularizers.get(code_regularizer)
        self.input_spec = keras.layers.InputSpec(ndim=4)
        # Simulate the device's integer synthesis (set by the QuantizeConfig for QAT).
        self.quantize_synthesis = False

    def build(self, input_shape: Any) -> None:
        dims = None if getattr(input_shape, "rank", 0) is None else tuple(input_shape)
        if dims is None or len(dims) != 4:
            raise ValueError(
                f"Layer {self.name!r} expects a 4D input (batch, rows, cols, channels), "
                f"received input_shape={input_shape}"
            )
        c_in = dims[-1]
        if c_in is None:
            raise ValueError(f"Layer {self.name!r}: the channel dimension must be known, received {input_shape}")
        self.generator.validate_layer(int(c_in), self.filters, self.name)
        if not self.generator.built:
            self.generator.build(None)
        self.in_channels = int(c_in)
        self.synthesis_weights = self.generator.create_layer_weights(self, self.in_channels, self.filters)
        self.bias = (
            self.add_weight(
                name="bias", shape=(self.filters,), initializer=self.bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint, trainable=True,
            )
            if self.use_bias
            else None
        )
        self.input_spec = self.keras_api.layers.InputSpec(ndim=4, axes={-1: self.in_channels})
        super().build(input_shape)

    def generated_kernel(self, quantize: bool | None = None) -> Any:
        """The kernel ``K[o, i]`` (C_out, C_in) the generator makes for this layer."""
        quantize = self.quantize_synthesis if quantize is None else quantize
        kernel = self.generator.kernel(self.synthesis_weights, self.in_channels, self.filters, quantize)
        return self.generator.fake_quant_channels(kernel) if quantize else kernel

    def get_config(self) -> dict[str, Any]:
        keras = self.keras_api
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
            generator=self.family.serialize(self.generator),
            code_initializer=keras.initializers.serialize(self.code_initializer),
            code_regularizer=keras.regularizers.serialize(self.code_regularizer),
        )
        return config
