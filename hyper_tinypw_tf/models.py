"""Reference backbones: a separable 1D CNN for ECG and a Hello-Edge DS-CNN for keyword spotting.

Both build the same backbone with stored INT8 PW layers (``pw="stored"``) or generated ones
(``pw="hyper"``), so a comparison of the two is a same-backbone comparison. Presets are data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from hyper_tinypw_tf import generators, tasks
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.layers import HyperPWConv2D


@dataclass(frozen=True)
class Backbone:
    """Shape of a depthwise-separable CNN.

    ``stem`` is the first conv; each block is depthwise (``dw_kernel``, stride) → BN → ReLU →
    PW (``channels[i]``) → BN → ReLU. Kernels are (rows, cols): ECG uses (k, 1).
    """

    input_shape: tuple[int, int, int]
    stem_channels: int
    stem_kernel: tuple[int, int]
    stem_strides: tuple[int, int]
    channels: tuple[int, ...]
    strides: tuple[tuple[int, int], ...]
    dw_kernel: tuple[int, int]
    normalize_input: bool = False  # a per-column affine layer before the stem (see fit_input_normalization)

    def __post_init__(self) -> None:
        if len(self.channels) != len(self.strides):
            raise ValueError(
                f"Backbone: channels and strides need one entry per block, received "
                f"{len(self.channels)} channels and {len(self.strides)} strides"
            )


@dataclass(frozen=True)
class Preset:
    """A named model: its backbone in hyper mode, the stored backbone for the same name, the generator."""

    name: str
    task: str
    backbone: Backbone
    generator: dict[str, Any] = field(default_factory=dict)
    stored_backbone: Backbone | None = None  # budget presets: a stored CNN within the same budget
    budget: int | None = None

    def backbone_for(self, pw: str) -> Backbone:
        return self.stored_backbone if pw == "stored" and self.stored_backbone else self.backbone


ECG_INPUT = (256, 1, 1)
KWS_INPUT = (49, 10, 1)
_LARGE = (96, 192, 384, 512, 512, 512, 512, 512)
_TILED = {"strategy": generators.TiledGenerator.strategy, "config": {"tile_size": 8, "code_dim": 4, "hidden_dim": 32}}


def _ecg(channels: Sequence[int], strides: Sequence[int], stem: int, k: int = 7) -> Backbone:
    return Backbone(
        input_shape=ECG_INPUT,
        stem_channels=stem,
        stem_kernel=(k, 1),
        stem_strides=(2, 2),  # width is 1, so (s, s) acts as (s, 1); TF's depthwise wants equal strides
        channels=tuple(channels),
        strides=tuple((s, s) for s in strides),
        dw_kernel=(k, 1),
    )


def _ds_cnn(features: int, blocks: int) -> Backbone:
    return Backbone(
        input_shape=KWS_INPUT,
        stem_channels=features,
        stem_kernel=(10, 4),
        stem_strides=(2, 2),
        channels=(features,) * blocks,
        strides=((1, 1),) * blocks,
        dw_kernel=(3, 3),
        normalize_input=True,  # MFCC coefficients differ in scale by 30x (c0 sd ~26, c9 sd ~0.9)
    )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("large", "ecg", _ecg(_LARGE, (2, 2, 2, 1, 2, 1, 1, 1), 32), _TILED),
        Preset(
            "225k", "ecg", _ecg(_LARGE, (2, 2, 2, 1, 2, 1, 1, 1), 32), _TILED,
            stored_backbone=_ecg((64, 128, 256, 256, 256), (2, 2, 2, 2, 1), 32), budget=225_000,
        ),
        Preset(
            "64k", "ecg", _ecg((64, 128, 256, 256, 256, 256), (2, 2, 2, 1, 2, 1), 32), _TILED,
            stored_backbone=_ecg((32, 64, 128, 128, 128), (2, 2, 2, 2, 1), 16), budget=64_000,
        ),
        Preset(
            "32k", "ecg", _ecg((48, 96, 192, 192, 192), (2, 2, 2, 2, 1), 16), _TILED,
            stored_backbone=_ecg((32, 64, 112, 112), (2, 2, 2, 2), 16), budget=32_000,
        ),
        Preset(  # the smallest budget: both of its files, flatbuffer included, fit in 32,000 bytes
            "28k", "ecg", _ecg((40, 80, 160, 160), (2, 2, 2, 2), 16), _TILED,
            stored_backbone=_ecg((24, 48, 96, 96), (2, 2, 2, 2), 16), budget=28_000,
        ),
        Preset("ds_cnn_s", "kws", _ds_cnn(64, 4), _TILED),
        Preset("ds_cnn_m", "kws", _ds_cnn(172, 4), _TILED),
        Preset("ds_cnn_l", "kws", _ds_cnn(276, 5), _TILED),
    )
}


def get_preset(name: str) -> Preset:
    """Look a preset up by name, with a message listing the names that exist."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, received preset={name!r}")
    return PRESETS[name]


def _hyper_blocks(n_blocks: int, pw: str, keep_first_pw: bool, hyper_layers: Sequence[int] | None) -> set[int]:
    if pw not in ("stored", "hyper"):
        raise ValueError(f"pw must be 'stored' or 'hyper', received pw={pw!r}")
    if pw == "stored":
        return set()
    chosen = set(range(1 if keep_first_pw else 0, n_blocks)) if hyper_layers is None else set(hyper_layers)
    bad = sorted(i for i in chosen if not 0 <= i < n_blocks)
    if bad:
        raise ValueError(f"hyper_layers must index PW blocks 0..{n_blocks - 1}, received hyper_layers={sorted(chosen)}")
    if keep_first_pw and 0 in chosen:
        raise ValueError("hyper_layers includes block 0 while keep_first_pw=True; PW1 stays stored INT8")
    return chosen


# Keras' default 0.99 leaves BatchNorm's moving statistics half at their initial values after
# the ~70 steps of a short run on a small dataset (1 - 0.99**70 = 0.5), so inference sees
# features the training never did; 0.9 (PyTorch's default) settles within ~30 steps.
BN_MOMENTUM = 0.9
NORM_LAYER = "input_norm"


def _input_normalization(inputs: Any, shape: tuple[int, int, int]) -> Any:
    """Per-column affine ``(x - mean) / std`` as layers the exporter already lowers.

    The (H, W, C) input is viewed as (H, 1, W*C) (a free reshape), so each column is a channel
    and a 1x1 depthwise conv with bias is exactly a per-column scale and shift. Its weights are
    the train split's statistics (``fit_input_normalization``), frozen, and travel inside the
    model: the .keras/.h5 file, the QAT copy and the exported .tflite all normalize the same way.
    """
    h, w, c = shape
    x = keras.layers.Reshape((h, 1, w * c), name=f"{NORM_LAYER}_columns")(inputs)
    x = keras.layers.DepthwiseConv2D(
        1, use_bias=True, depthwise_initializer="ones", bias_initializer="zeros", trainable=False,
        name=NORM_LAYER,
    )(x)
    return keras.layers.Reshape((h, w, c), name=f"{NORM_LAYER}_restore")(x)


def fit_input_normalization(model: keras.Model, batches: Iterable[Any], eps: float = 1e-3) -> np.ndarray | None:
    """Set the model's input normalization to the per-column mean/std of ``batches``.

    ``batches`` yields ``x`` or ``(x, y)`` arrays of the model's input shape: the train split,
    so validation and test data never leak into the model. Returns the (2, columns) array of
    means and standard deviations used, or None when the model has no normalization layer.

    Raises:
      ValueError: ``batches`` is empty or its examples do not have the model's input shape.
    """
    names = [layer.name for layer in model.layers]
    if NORM_LAYER not in names:
        return None
    expected = tuple(model.input_shape[1:])
    total, total_sq, count = 0.0, 0.0, 0
    for batch in batches:
        x = np.asarray(batch[0] if isinstance(batch, tuple) else batch, np.float64)
        if tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"fit_input_normalization: examples must have shape {expected}, received x.shape={x.shape}"
            )
        columns = x.reshape(len(x), expected[0], -1)
        total = total + columns.sum(axis=(0, 1))
        total_sq = total_sq + np.square(columns).sum(axis=(0, 1))
        count += columns.shape[0] * columns.shape[1]
    if count == 0:
        raise ValueError("fit_input_normalization: batches is empty; pass the train split's examples")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0)) + eps
    layer = model.get_layer(NORM_LAYER)
    layer.set_weights([(1.0 / std).reshape(1, 1, -1, 1).astype(np.float32), (-mean / std).astype(np.float32)])
    return np.stack([mean, std])


def build_backbone(
    backbone: Backbone,
    num_classes: int,
    pw: str = "stored",
    keep_first_pw: bool = True,
    hyper_layers: Sequence[int] | None = None,
    generator: Any = None,
    name: str = "separable_cnn",
    bn_momentum: float = BN_MOMENTUM,
) -> keras.Model:
    """A functional tf_keras model of ``backbone`` with the chosen PW layers generated; it outputs logits.

    All generated PW layers share one generator (a new one from ``generator``, default tiled).
    With ``backbone.normalize_input`` the first layers normalize each input column (identity
    until ``fit_input_normalization`` sets the train statistics).
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, received num_classes={num_classes}")
    hyper = _hyper_blocks(len(backbone.channels), pw, keep_first_pw, hyper_layers)
    shared = generators.get(generator if generator is not None else _TILED) if hyper else None

    def bn_relu(x: Any, label: str) -> Any:
        x = keras.layers.BatchNormalization(momentum=bn_momentum, name=f"{label}_bn")(x)
        return keras.layers.ReLU(name=f"{label}_relu")(x)

    inputs = keras.Input(backbone.input_shape, name="input")
    x = _input_normalization(inputs, backbone.input_shape) if backbone.normalize_input else inputs
    x = keras.layers.Conv2D(
        backbone.stem_channels, backbone.stem_kernel, strides=backbone.stem_strides,
        padding="same", use_bias=False, name="stem",
    )(x)
    x = bn_relu(x, "stem")
    for i, (filters, strides) in enumerate(zip(backbone.channels, backbone.strides, strict=True)):
        x = keras.layers.DepthwiseConv2D(
            backbone.dw_kernel, strides=strides, padding="same", use_bias=False, name=f"dw{i + 1}"
        )(x)
        x = bn_relu(x, f"dw{i + 1}")
        if i in hyper:
            x = HyperPWConv2D(filters, generator=shared, use_bias=False, name=f"pw{i + 1}")(x)
        else:
            x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"pw{i + 1}")(x)
        x = bn_relu(x, f"pw{i + 1}")
    # The classifier is a 1x1 conv on the pooled (1, 1, C) map, and the model returns logits:
    # integer CONV_2D gives the same bytes in LiteRT and TFLM, FULLY_CONNECTED and SOFTMAX do not.
    x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="pool")(x)
    x = keras.layers.Conv2D(num_classes, 1, name="classifier")(x)
    outputs = keras.layers.Reshape((num_classes,), name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def _from_preset(
    preset: str | None, task: str, backbone: Backbone | None, pw: str, name: str, **kwargs: Any
) -> keras.Model:
    if preset is not None:
        spec = get_preset(preset)
        if spec.task != task:
            raise ValueError(f"preset {preset!r} is a {spec.task} preset, not for {name}")
        backbone = spec.backbone_for(pw)
        kwargs.setdefault("generator", spec.generator)
    if backbone is None:
        raise ValueError(f"{name} needs preset= or backbone=")
    return build_backbone(backbone, pw=pw, name=f"{name}_{preset or 'custom'}_{pw}", **kwargs)


def preset_kind(task: str) -> str:
    """The preset family a data task needs ("kws", "ecg"): the task registry's ``TaskSpec.family``."""
    return tasks.get(task).family


def for_task(
    preset: str, task: str, input_shape: Sequence[int], num_classes: int, pw: str = "stored", **kwargs: Any
) -> keras.Model:
    """A preset's widths and depths on the dataset's input shape (length, leads, MFCC frames).

    A preset fixes the backbone; the input shape (window length and sample rate, number of
    leads or extra RR channels) is the dataset's, so every task runs with every preset of its kind.

    Raises:
      ValueError: an unknown preset, a preset of the other kind, or an input that is not (H, W, C).
    """
    spec = get_preset(preset)
    kind = preset_kind(task)
    if spec.task != kind:
        names = sorted(n for n, p in PRESETS.items() if p.task == kind)
        raise ValueError(
            f"preset {preset!r} is for {spec.task} tasks; task {task!r} needs a {kind} preset, one of {names}"
        )
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (H, W, C) with positive sizes, received input_shape={shape}")
    backbone = replace(spec.backbone_for(pw), input_shape=shape)
    family = "ds_cnn" if kind == "kws" else "separable_cnn_1d"
    kwargs.setdefault("generator", spec.generator)
    return build_backbone(backbone, num_classes, pw=pw, name=f"{family}_{preset}_{pw}", **kwargs)


def separable_cnn_1d(
    preset: str | None = "large",
    num_classes: int = 2,
    pw: str = "stored",
    keep_first_pw: bool = True,
    hyper_layers: Sequence[int] | None = None,
    generator: Any = None,
    input_length: int | None = None,
    backbone: Backbone | None = None,
) -> keras.Model:
    """ECG separable CNN on (T, 1, 1) input: stem conv, N DW→PW blocks, pooling, dense."""
    if input_length is not None:
        base = backbone or get_preset(preset).backbone_for(pw)  # type: ignore[arg-type]
        backbone, preset = replace(base, input_shape=(input_length, 1, 1)), None
    return _from_preset(
        preset, "ecg", backbone, pw, "separable_cnn_1d", num_classes=num_classes,
        keep_first_pw=keep_first_pw, hyper_layers=hyper_layers, generator=generator,
    )


def ds_cnn(
    preset: str | None = "ds_cnn_s",
    num_classes: int = 12,
    pw: str = "stored",
    keep_first_pw: bool = True,
    hyper_layers: Sequence[int] | None = None,
    generator: Any = None,
    backbone: Backbone | None = None,
) -> keras.Model:
    """Hello-Edge DS-CNN on 49×10 MFCC input (Zhang et al., arXiv:1711.07128)."""
    return _from_preset(
        preset, "kws", backbone, pw, "ds_cnn", num_classes=num_classes,
        keep_first_pw=keep_first_pw, hyper_layers=hyper_layers, generator=generator,
    )
