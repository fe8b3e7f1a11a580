"""Post-training generation: a trained stored CNN → a hyper model on the same backbone within a byte budget.

A generated mixer trained from scratch never sees a trained network; the clustering + LUT peer
compresses one. This module gives the generator the same start, after NeRN (Ashkenazi et al.,
ICLR 2023: fit a small network to a trained network's weights, then distil) and AdaRound / GPTQ
(Nagel et al. 2020, Frantar et al. 2023: reconstruct each layer's *outputs* on calibration
activations, not its weights):

1. :func:`choose` picks the generator sizes (tile, code, hidden dim, or rank; int8 or int4) whose
   file fits ``budget_bytes``: the packed bytes come from the strategy's declared tensors (the byte
   report's one source), the flatbuffer overhead is measured by exporting, and the largest
   candidates are trial-fitted to keep the one that reconstructs best.
2. :func:`same_backbone` rebuilds the stored model layer for layer with every PW layer after the
   first generated, and copies every other weight (input normalization, stem, depthwise, BN, PW1,
   classifier, biases).
3. :func:`fit_generator` fits codes and the shared generator jointly to each PW layer's outputs on
   calibration activations captured at its input (:func:`capture_targets`), in the units the next
   layer sees (after its BatchNorm), with a free per-channel gain that the BatchNorm absorbs.
4. :func:`compress` then fine-tunes end to end with distillation from the stored model
   (``losses.Distiller`` through ``pipeline.fit_model``) and runs QAT; export and scoring are the
   caller's (``export.api.export_files``, ``pipeline.evaluate_model``), as ``hyper-tinypw compress`` does.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from hyper_tinypw_tf import accounting, generators, inspect, models
from hyper_tinypw_tf._keras import keras
from hyper_tinypw_tf.layers import HyperPWConv2D
from hyper_tinypw_tf.storage import STORED_PW

STRATEGIES = ("tiled", "paper", "low_rank")
STARTS = ("fit", "scratch")
GENERATOR_NAME = "compress_generator"  # a fixed Keras name, so tensor names (and file bytes) do not vary
BITS = (8, 4)  # stored bits of codes and generator weights, tried for every size
TRIALS = 3  # the largest candidates within the budget that are trial-fitted
TRIAL_STEPS = 300
FIT_STEPS = 1500


class BudgetError(ValueError):
    """The byte budget admits no generator of the strategy on this backbone."""


# --- the same backbone ---------------------------------------------------------------------------


def _chain_pairs(model: keras.Model) -> list[tuple[keras.layers.Layer, keras.layers.Layer]]:
    """(model's layer, the user's layer inside it) in order, without the input and tfmot's input quantizer."""
    unsupported = [layer.name for layer in model.layers if not inspect.is_supported(layer)]
    if unsupported:
        raise ValueError(f"compress: layer {unsupported[0]!r} of model {model.name!r} is not supported")
    return [
        (layer, inspect.unwrap(layer)) for layer in model.layers
        if not inspect.is_quantize_input(layer) and not isinstance(layer, keras.layers.InputLayer)
    ]


def _chain(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's layers in order, tfmot wrappers unwrapped, without the input and tfmot's input quantizer."""
    return [inner for _, inner in _chain_pairs(model)]


def _weight_key(variable: tf.Variable) -> str:
    """A weight's own name (``kernel``, ``gamma``, ...) without its layer or wrapper prefix."""
    return variable.name.rsplit("/", 1)[-1].split(":")[0]


def _copy_weights(source: keras.layers.Layer, target: keras.layers.Layer) -> None:
    """Set ``target``'s weights from the model layer ``source`` by weight name.

    A tfmot wrapper tracks the float variables itself (its inner layer's ``kernel`` is replaced by a
    fake-quantized tensor while it runs), so the names, not the inner layer's list, pair them.
    """
    found = {_weight_key(w): w for w in source.weights}
    missing = [_weight_key(w) for w in target.weights if _weight_key(w) not in found]
    if missing:
        raise ValueError(f"compress: layer {source.name!r} holds no weight {missing[0]!r} to copy")
    target.set_weights([np.asarray(found[_weight_key(w)].numpy()) for w in target.weights])


def pw_layer_names(model: keras.Model) -> list[str]:
    """Names of the stored pointwise layers (the byte report's "stored PW" kernels), in model order."""
    names = []
    for layer in model.layers:
        if any(t.component == STORED_PW and t.name.endswith("/kernel") for t in accounting.layer_tensors(layer)):
            names.append(inspect.unwrap(layer).name)
    return names


def _float_config(layer: keras.layers.Layer) -> dict[str, Any]:
    """A layer's config with tfmot's activation wrapper (set on layers inside a QAT model) taken off."""
    config = layer.get_config()
    activation = getattr(layer, "activation", None)
    if activation is None or not type(activation).__module__.startswith("tensorflow_model_optimization"):
        return config
    # QuantizeAwareActivation wraps the layer's activation, tfmot's NoOpActivation (linear) among them.
    while activation is not None and type(activation).__module__.startswith("tensorflow_model_optimization"):
        activation = getattr(activation, "activation", None)
    config["activation"] = keras.activations.serialize(activation) if activation is not None else "linear"
    return config


def _generated_names(stored: keras.Model, generated: Sequence[str] | None) -> list[str]:
    """The PW layers to generate (default: every stored PW layer after the first), checked."""
    pws = pw_layer_names(stored)
    chosen = list(pws[1:] if generated is None else generated)
    unknown = [name for name in chosen if name not in pws]
    if unknown:
        raise ValueError(f"compress: {unknown[0]!r} is not a stored PW layer of {stored.name!r}; its PW layers: {pws}")
    if not chosen:
        raise ValueError(f"compress: model {stored.name!r} has no PW layer to generate (PW layers: {pws})")
    return chosen


def _rebuild(stored: keras.Model, name: str, replace: Callable[[keras.layers.Layer], Any] | None = None
             ) -> keras.Model:
    """A float chain of ``stored``'s layers, each rebuilt from its config with its weights, or ``replace(layer)``."""
    inputs = keras.Input(tuple(stored.input_shape[1:]), name="input")
    x, pairs = inputs, []
    for outer, layer in _chain_pairs(stored):
        new = replace(layer) if replace is not None else None
        new = type(layer).from_config(_float_config(layer)) if new is None else new
        x = new(x)
        pairs.append((outer, new))
    model = keras.Model(inputs, x, name=name)
    for outer, new in pairs:
        if isinstance(new, HyperPWConv2D):
            if new.use_bias:
                new.bias.assign({_weight_key(w): w for w in outer.weights}["bias"])
        elif new.weights:
            _copy_weights(outer, new)
    return model



def float_copy(stored: keras.Model) -> keras.Model:
    """``stored`` as a float model (a QAT model's float weights in plain layers): the teacher and the targets."""
    return _rebuild(stored, f"{stored.name}_float") if inspect.is_qat(stored) else stored


def same_backbone(stored: keras.Model, generator: Any, generated: Sequence[str] | None = None) -> keras.Model:
    """A float model of ``stored``'s layers with the PW layers ``generated`` made by one shared ``generator``.

    ``stored`` is a float or QAT (tfmot) model that is a chain of layers, like the reference models;
    ``generated`` defaults to every stored PW layer after the first (PW1 stays stored, as in the
    presets). Every weight of the other layers is copied from ``stored``.

    Raises:
      ValueError: the model is not a supported chain, holds no PW layer to generate, or ``generated``
        names a layer that is not a stored PW layer.
    """
    chosen = _generated_names(stored, generated)
    shared = generators.get(generator)

    def replace(layer: keras.layers.Layer) -> HyperPWConv2D | None:
        if layer.name not in chosen:
            return None
        return HyperPWConv2D(layer.filters, generator=shared, use_bias=layer.use_bias, name=layer.name)

    return _rebuild(stored, f"{stored.name}_generated", replace)


# --- sizes within the budget ----------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One generator size: its serialized spec and the packed bytes of the whole model it makes."""

    generator: dict[str, Any]
    packed_bytes: int
    generated_tensors: int  # how many stored tensors the generator declares on this backbone

    def describe(self) -> str:
        config = self.generator["config"]
        keys = ("tile_size", "code_dim", "hidden_dim", "rank", "head")
        sizes = ", ".join(f"{k}={config[k]}" for k in keys if k in config)
        return f"{self.generator['strategy']} ({sizes}, int{config['code_bits']})"


def _size_grid(strategy: str, max_in: int) -> Iterable[dict[str, Any]]:
    """The constructor arguments tried for ``strategy`` (before bits): small to large."""
    if strategy == "tiled":
        for tile, code, hidden in itertools.product((4, 8, 16), (1, 2, 4, 8, 16), (8, 16, 32, 64)):
            yield {"tile_size": tile, "code_dim": code, "hidden_dim": hidden}
    elif strategy == "paper":
        for code, hidden in itertools.product((2, 4, 8, 16), (2, 4, 6, 8, 12, 16, 24, 32, 48, 64)):
            yield {"head": "factorized", "code_dim": code, "hidden_dim": hidden, "max_in_channels": max_in}
    elif strategy == "low_rank":
        for rank in range(1, 65):
            yield {"rank": rank}
    else:
        raise ValueError(f"compress: strategy must be one of {STRATEGIES}, received strategy={strategy!r}")


def candidates(stored: keras.Model, strategy: str, generated: Sequence[str] | None = None) -> list[Candidate]:
    """Every size of ``strategy`` on ``stored``'s backbone with its exact packed bytes, smallest first.

    Bytes are the stored model's records with the generated PW kernels' records swapped for what the
    generator declares (its shared tensors once, each layer's tensors): the byte report's records,
    without building a model per size.
    """
    chosen = _generated_names(stored, generated)
    shapes = {}
    for layer in _chain(stored):
        if layer.name in chosen:
            shapes[layer.name] = (int(layer.kernel.shape[-2]), int(layer.filters))
    base = sum(
        t.nbytes for layer in stored.layers for t in accounting.layer_tensors(layer)
        if not (inspect.unwrap(layer).name in shapes and t.name.endswith("/kernel"))
    )
    found = []
    max_in = max(c_in for c_in, _ in shapes.values())
    for sizes, bits in itertools.product(_size_grid(strategy, max_in), BITS):
        spec = {"strategy": strategy, "config": {**sizes, "code_bits": bits, "weight_bits": bits,
                                                 "name": GENERATOR_NAME}}
        gen = generators.deserialize(spec)
        declared = [*gen.shared_tensors(), *(
            t for name, (c_in, c_out) in shapes.items() for t in gen.layer_tensors(name, c_in, c_out))]
        found.append(Candidate(spec, base + sum(t.nbytes for t in declared), len(declared)))
    return sorted(found, key=lambda c: c.packed_bytes)


def file_overhead(model: keras.Model) -> int:
    """Flatbuffer bytes of ``model``'s hyper file beyond its packed tensors, measured by exporting its QAT copy."""
    from hyper_tinypw_tf import quantization
    from hyper_tinypw_tf.export import api

    qat = quantization.quantize_model(model)
    data = api.export_model(qat, fmt=api.HYPER)
    return api.byte_report(qat, data, fmt=api.HYPER).overhead


# --- data-aware reconstruction ----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What one generated layer should reproduce: the stored kernel (C_out, C_in), the centred covariance of
    its calibration inputs (C_in, C_in), and each output channel's weight (its BatchNorm gain squared)."""

    kernel: np.ndarray
    covariance: np.ndarray
    weight: np.ndarray

    def energy(self) -> float:
        """The weighted variance of the stored layer's outputs: the denominator of the relative error."""
        return float(np.sum(self.weight * np.einsum("oi,ij,oj->o", self.kernel, self.covariance, self.kernel)))


def _bn_after(model: keras.Model) -> dict[str, keras.layers.BatchNormalization]:
    """PW layer name → the BatchNorm right after it (the one a generated kernel folds into)."""
    found = {}
    for name, after in inspect.children(model).items():
        if len(after) == 1 and isinstance(after[0], keras.layers.BatchNormalization):
            found[name] = after[0]
    return found


def capture_targets(stored: keras.Model, names: Sequence[str], x: np.ndarray, batch_size: int = 256
                    ) -> dict[str, Target]:
    """For each PW layer in ``names``: its kernel, the covariance of its inputs over ``x``, its output weights.

    Output error is measured after the BatchNorm that follows (``gain² · error²`` per channel), in the
    units the next layer sees; a constant offset is left out (centred covariance) because the BatchNorm's
    re-estimated mean absorbs it.
    """
    inner = {layer.name: layer for layer in _chain(stored)}
    bns = _bn_after(stored)
    by_name = {inspect.unwrap(layer).name: layer for layer in stored.layers}
    probe = keras.Model(stored.inputs, [by_name[name].input for name in names])
    sums: dict[str, np.ndarray] = {}
    outer: dict[str, np.ndarray] = {}
    count = 0
    for start in range(0, len(x), batch_size):
        outs = probe(x[start:start + batch_size], training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        for name, out in zip(names, outs, strict=True):
            flat = np.asarray(out, np.float64).reshape(-1, out.shape[-1])
            sums[name] = sums.get(name, 0.0) + flat.sum(axis=0)
            outer[name] = outer.get(name, 0.0) + flat.T @ flat
        count += int(np.prod(outs[0].shape[:-1]))
    if count == 0:
        raise ValueError("compress: the calibration data holds no examples")
    targets = {}
    for name in names:
        mean = sums[name] / count
        kernel = np.asarray(inner[name].kernel.numpy(), np.float64)[0, 0].T  # (C_out, C_in)
        bn = bns.get(name)
        gain = np.ones(kernel.shape[0]) if bn is None else inspect.batchnorm_gain(bn)
        targets[name] = Target(kernel, outer[name] / count - np.outer(mean, mean), gain**2)
    return targets


def _hyper_layers(model: keras.Model) -> list[HyperPWConv2D]:
    return [layer for layer in (inspect.unwrap(lay) for lay in model.layers) if isinstance(layer, HyperPWConv2D)]


def _weighted_error(kernel: tf.Tensor, target: Target, gain: tf.Tensor | None) -> tf.Tensor:
    """Relative output error of ``gain · kernel`` against the stored kernel, weighted per channel."""
    generated = kernel if gain is None else kernel * gain[:, None]
    diff = tf.cast(generated, tf.float64) - target.kernel
    per_channel = tf.reduce_sum((diff @ target.covariance) * diff, axis=1)
    return tf.reduce_sum(target.weight * per_channel) / max(target.energy(), 1e-30)


def reconstruction_errors(model: keras.Model, targets: dict[str, Target], gains: dict[str, np.ndarray] | None = None
                          ) -> dict[str, float]:
    """Per generated layer, the output error energy over the stored layer's (0 = exact; 1 = as bad as zero).

    Without ``gains`` each channel gets its best gain (what the BatchNorm after it can absorb).
    """
    errors = {}
    for layer in _hyper_layers(model):
        target = targets[layer.name]
        kernel = layer.generated_kernel(quantize=False)
        gain = gains[layer.name] if gains is not None else _best_gain(kernel.numpy(), target)
        errors[layer.name] = float(_weighted_error(kernel, target, tf.constant(gain, tf.float32)))
    return errors


def _best_gain(kernel: np.ndarray, target: Target) -> np.ndarray:
    """Per output channel, the least-squares gain of the generated row onto the stored one (covariance metric)."""
    k = np.asarray(kernel, np.float64)
    cross = np.einsum("oi,ij,oj->o", k, target.covariance, target.kernel)
    own = np.einsum("oi,ij,oj->o", k, target.covariance, k)
    return np.where(own > 0, cross / np.maximum(own, 1e-30), 1.0)


@dataclass(frozen=True)
class FitReport:
    """Per-layer relative output errors before and after the fit, and the channel gains the fit chose."""

    before: dict[str, float]
    after: dict[str, float]
    gains: dict[str, np.ndarray] = field(repr=False)

    @property
    def mean_before(self) -> float:
        return float(np.mean(list(self.before.values())))

    @property
    def mean_after(self) -> float:
        return float(np.mean(list(self.after.values())))


def _low_rank_start(model: keras.Model, targets: dict[str, Target]) -> None:
    """``low_rank``: start each layer at the best rank-r kernel in the output metric (SVD of K·C^½)."""
    for layer in _hyper_layers(model):
        target, rank = targets[layer.name], layer.generator.rank
        values, vectors = np.linalg.eigh(target.covariance)
        values = np.maximum(values, 1e-8 * max(values.max(), 1e-30))
        root, inv_root = (vectors * np.sqrt(values)) @ vectors.T, (vectors / np.sqrt(values)) @ vectors.T
        u, s, vt = np.linalg.svd(target.kernel @ root, full_matrices=False)
        r = min(rank, len(s))
        scale = np.sqrt(s[:r])
        left, right = np.zeros((layer.filters, rank)), np.zeros((rank, layer.in_channels))
        left[:, :r], right[:r] = u[:, :r] * scale, (scale[:, None] * vt[:r]) @ inv_root
        layer.synthesis_weights["u"].assign(left.astype(np.float32))
        layer.synthesis_weights["v"].assign(right.astype(np.float32))


def fit_generator(model: keras.Model, targets: dict[str, Target], steps: int = FIT_STEPS, learning_rate: float = 1e-2,
                  seed: int = 0) -> FitReport:
    """Fit codes and the shared generator of ``model`` jointly so each generated layer reproduces its target.

    Minimizes the sum over layers of the relative output error (:func:`reconstruction_errors`) with Adam,
    a cosine-decayed learning rate and a free gain per output channel. All layers share the generator,
    so the fit is joint. ``low_rank`` starts from the closed-form optimum of each layer.
    """
    layers = _hyper_layers(model)
    keras.utils.set_random_seed(seed)
    before = reconstruction_errors(model, targets)
    if layers[0].generator.strategy == "low_rank":
        _low_rank_start(model, targets)
    gains = {layer.name: tf.Variable(_best_gain(layer.generated_kernel(False).numpy(), targets[layer.name])
                                     .astype(np.float32)) for layer in layers}
    variables = [*gains.values(), *{id(v): v for layer in layers for v in layer.trainable_weights}.values()]
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(steps, 1))
    optimizer = keras.optimizers.Adam(schedule)

    @tf.function
    def step() -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = tf.add_n([
                _weighted_error(layer.generated_kernel(False), targets[layer.name], gains[layer.name])
                for layer in layers
            ])
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        for variable in variables:
            if getattr(variable, "constraint", None) is not None:
                variable.assign(variable.constraint(variable))
        return loss

    for _ in range(steps):
        step()
    final = {name: gain.numpy().astype(np.float64) for name, gain in gains.items()}
    return FitReport(before, reconstruction_errors(model, targets, final), final)


def absorb_gains(model: keras.Model, gains: dict[str, np.ndarray]) -> None:
    """Fold each generated layer's channel gains into the BatchNorm after it: BN(g·y) as a BatchNorm of y.

    mean/g and var/g² keep the normalized output; a negative gain flips gamma's sign.
    """
    bns = _bn_after(model)
    for name, gain in gains.items():
        bn = bns.get(name)
        if bn is None:
            continue
        g = np.where(np.abs(gain) < 1e-6, np.where(gain < 0, -1e-6, 1e-6), gain)
        gamma, beta, mean, var = bn.get_weights() if bn.scale and bn.center else _full_bn(bn)
        bn.set_weights(_bn_weights(bn, gamma * np.sign(g), beta, mean / g, (var + bn.epsilon) / g**2 - bn.epsilon))


def _full_bn(bn: keras.layers.BatchNormalization) -> list[np.ndarray]:
    n = int(bn.moving_mean.shape[0])
    gamma = bn.gamma.numpy() if bn.scale else np.ones(n, np.float32)
    beta = bn.beta.numpy() if bn.center else np.zeros(n, np.float32)
    return [gamma, beta, bn.moving_mean.numpy(), bn.moving_variance.numpy()]


def _bn_weights(bn: keras.layers.BatchNormalization, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray,
                var: np.ndarray) -> list[np.ndarray]:
    weights = ([gamma] if bn.scale else []) + ([beta] if bn.center else []) + [mean, np.maximum(var, 0.0)]
    if not bn.scale and np.any(gamma < 0):
        raise ValueError(f"compress: BatchNorm {bn.name!r} has no gamma to take a negative channel gain")
    return [np.asarray(w, np.float32) for w in weights]


# --- choosing and the whole recipe ------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """The generator size chosen for a budget, with its bytes and the trial fits that chose it."""

    candidate: Candidate
    overhead: int  # flatbuffer overhead measured on the smallest size's hyper file
    budget: int
    trials: dict[str, float]  # candidate description → mean relative error after a short fit

    @property
    def estimated_file_bytes(self) -> int:
        """The hyper file's expected size: packed bytes plus the measured overhead."""
        return self.candidate.packed_bytes + self.overhead


def overhead_slack(candidate: Candidate) -> int:
    """Bytes kept free for the final file's flatbuffer overhead to exceed the one measured on the smallest
    size's untrained QAT export: alignment padding per generated tensor and option bytes. Measured on
    ECG 64k (tiled, 13 generated tensors): 9,036 bytes measured, 9,312 in the trained model's file."""
    return 32 * candidate.generated_tensors + 256


def choose(stored: keras.Model, budget_bytes: int, strategy: str, targets: dict[str, Target],
           generated: Sequence[str] | None = None, trials: int = TRIALS, trial_steps: int = TRIAL_STEPS,
           print_fn: Callable[[str], None] | None = print, overhead: int | None = None) -> Choice:
    """The generator size for ``budget_bytes``: of the ``trials`` largest that fit, the best after a short fit.

    A size fits when its packed bytes, the flatbuffer overhead measured on the smallest size (one QAT
    export, unless ``overhead`` gives a value measured before on this backbone) and :func:`overhead_slack`
    stay within the budget; the caller checks the exported file.

    Raises:
      BudgetError: no size of ``strategy`` fits; the message names the budget and the smallest file possible.
    """
    if not isinstance(budget_bytes, (int, np.integer)) or isinstance(budget_bytes, bool) or budget_bytes <= 0:
        raise ValueError(f"compress: budget must be a positive number of bytes, received budget={budget_bytes!r}")
    every = candidates(stored, strategy, generated)
    if overhead is None:
        overhead = file_overhead(same_backbone(stored, every[0].generator, generated))
    fitting = [c for c in every if c.packed_bytes + overhead + overhead_slack(c) <= budget_bytes]
    if not fitting:
        smallest = every[0].packed_bytes + overhead + overhead_slack(every[0])
        raise BudgetError(
            f"compress: budget={budget_bytes:,} bytes is too small for any {strategy} generator on this backbone; "
            f"the smallest feasible budget is {smallest:,} bytes ({every[0].describe()}: {every[0].packed_bytes:,} "
            f"packed + {overhead:,} flatbuffer + {overhead_slack(every[0])} slack)"
        )
    shortlist = fitting[-trials:]
    scores = {}
    for candidate in shortlist:
        model = same_backbone(stored, candidate.generator, generated)
        scores[candidate.describe()] = fit_generator(model, targets, steps=trial_steps).mean_after
        if print_fn is not None:
            print_fn(f"compress: trial {candidate.describe()}: {candidate.packed_bytes:,} packed bytes, "
                     f"relative output error {scores[candidate.describe()]:.4f}")
    best = min(shortlist, key=lambda c: (scores[c.describe()], -c.packed_bytes))
    return Choice(best, overhead, int(budget_bytes), scores)


@dataclass(frozen=True)
class Finetune:
    """End-to-end fine-tuning after the fit: distillation from the stored model, then QAT (lr / 10)."""

    epochs: int = 2
    qat_epochs: int = 1
    learning_rate: float = 5e-4
    distill_alpha: float = 0.7
    distill_temperature: float = 2.0
    patience: int = 3
    seed: int = 0


@dataclass
class CompressResult:
    """Everything :func:`compress` made: the float and QAT hyper models, the size choice and the fit."""

    model: keras.Model
    qat: keras.Model | None
    choice: Choice
    fit: FitReport


def calibration_inputs(dataset: Any, count: int = 512, seed: int = 0) -> np.ndarray:
    """``count`` inputs drawn at random (seeded) from a batched ``(x, y)`` dataset, e.g. the train split."""
    xs = np.concatenate([np.asarray(x) for x, _ in dataset])
    pick = np.random.default_rng(seed).permutation(len(xs))[:count]
    return xs[np.sort(pick)]


def compress(
    stored: keras.Model,
    budget_bytes: int,
    strategy: str = "tiled",
    calibration: np.ndarray | None = None,
    datasets: dict[str, Any] | None = None,
    info: Any = None,
    finetune: Finetune | None = Finetune(),
    fit_steps: int = FIT_STEPS,
    trials: int = TRIALS,
    generated: Sequence[str] | None = None,
    start: str = "fit",
    print_fn: Callable[[str], None] | None = print,
) -> CompressResult:
    """A hyper model on ``stored``'s backbone whose hyper file fits ``budget_bytes``, fitted to ``stored``.

    Args:
      stored: the trained stored model (float, or QAT from ``quantize_model``); the distillation teacher.
      budget_bytes: the hyper file's size limit, flatbuffer included.
      strategy: "tiled", "paper" (factorized head) or "low_rank".
      calibration: inputs whose PW activations the fit reproduces (default: 512 from ``datasets["train"]``).
      datasets, info: ``data.load``'s splits and metadata, for fine-tuning (needed unless ``finetune`` is None).
      finetune: the fine-tuning schedule, or None to stop after the fit (no QAT model then).
      fit_steps: Adam steps of the reconstruction fit.
      trials: how many of the largest sizes within the budget are trial-fitted.
      generated: the PW layers to generate (default: all but the first).
      start: "fit" (reconstruct the stored layers, then fine-tune) or "scratch": the same model and
        schedule from a fresh initialization (input normalization kept), the baseline the fit must beat.

    Raises:
      BudgetError: the budget is too small for any size of ``strategy``.
      ValueError: a bad strategy, budget, model, or fine-tuning without ``datasets``.
    """
    from hyper_tinypw_tf import quantization, training
    from hyper_tinypw_tf.app import pipeline

    if strategy not in STRATEGIES:
        raise ValueError(f"compress: strategy must be one of {STRATEGIES}, received strategy={strategy!r}")
    if start not in STARTS:
        raise ValueError(f"compress: start must be one of {STARTS}, received start={start!r}")
    if finetune is not None and (datasets is None or info is None):
        raise ValueError("compress: fine-tuning needs datasets= and info= (data.load's output), or pass finetune=None")
    if calibration is None:
        if datasets is None:
            raise ValueError("compress: pass calibration= inputs or datasets= with a train split")
        calibration = calibration_inputs(datasets["train"])
    teacher = float_copy(stored)
    targets = capture_targets(teacher, _generated_names(stored, generated), np.asarray(calibration, np.float32))
    choice = choose(stored, budget_bytes, strategy, targets, generated, trials, print_fn=print_fn)
    if print_fn is not None:
        print_fn(f"compress: chose {choice.candidate.describe()}: {choice.candidate.packed_bytes:,} packed + "
                 f"~{choice.overhead:,} flatbuffer = ~{choice.estimated_file_bytes:,} bytes, budget {budget_bytes:,}")
    model = same_backbone(stored, choice.candidate.generator, generated)
    if start == "scratch":
        model = scratch_like(model, seed=0 if finetune is None else finetune.seed)
        errors = reconstruction_errors(model, targets)
        report = FitReport(errors, errors, {})
    else:
        report = fit_generator(model, targets, steps=fit_steps)
        absorb_gains(model, report.gains)
        training.recalibrate_batchnorm(model, tf.data.Dataset.from_tensor_slices(calibration).batch(256))
    if print_fn is not None:
        print_fn(f"compress: {start}: mean relative output error {report.mean_before:.4f} (initial) -> "
                 f"{report.mean_after:.4f}")
    if finetune is None:
        return CompressResult(model, None, choice, report)
    config = pipeline.RunConfig(
        patience=finetune.patience, seed=finetune.seed, distill=True, distill_alpha=finetune.distill_alpha,
        distill_temperature=finetune.distill_temperature,
    )
    training.set_seed(finetune.seed)
    if finetune.epochs > 0:
        pipeline.fit_model(model, datasets, info, config, finetune.epochs, finetune.learning_rate, None, teacher)
    qat = quantization.quantize_model(model)
    if finetune.qat_epochs > 0:
        pipeline.fit_model(qat, datasets, info, config, finetune.qat_epochs, finetune.learning_rate / 10, None,
                           teacher)
    return CompressResult(model, qat, choice, report)


def scratch_like(model: keras.Model, seed: int = 0) -> keras.Model:
    """A from-scratch twin of a compressed model: the same layers and generator size, freshly initialized.

    The input normalization (train statistics, not learned) is copied; everything else starts anew.
    """
    keras.utils.set_random_seed(seed)
    fresh = keras.models.clone_model(model)
    for layer in model.layers:
        if layer.name == models.NORM_LAYER:
            fresh.get_layer(layer.name).set_weights(layer.get_weights())
    return fresh


# --- files: what ``hyper-tinypw compress`` runs ---------------------------------------------------------


def export_within_budget(qat: keras.Model, path: str | Path, budget_bytes: int, mode: str = "boot",
                         print_fn: Callable[[str], None] | None = print) -> Any:
    """Export ``qat`` as a hyper file to ``path`` only if the file fits ``budget_bytes``; returns its byte table.

    Raises:
      ValueError: the file would exceed the budget (nothing is written then).
    """
    from hyper_tinypw_tf.export import api

    data = api.export_model(qat, fmt=api.HYPER, mode=mode)
    report = api.byte_report(qat, data, fmt=api.HYPER)
    if len(data) > budget_bytes:
        raise ValueError(f"compress: the hyper file is {len(data):,} bytes, over budget={budget_bytes:,} "
                         f"({report.overhead:,} of them flatbuffer overhead)")
    api.write_atomic(path, data)
    if print_fn is not None:
        report.summary(print_fn)
    return report


def run(model_path: str | Path, budget_bytes: int, out: str | Path, load_data: Callable[[], tuple[dict, Any]],
        strategy: str = "tiled", finetune: Finetune = Finetune(), start: str = "fit", mode: str = "boot",
        calibration_count: int = 512, n_boot: int = 1000, print_fn: Callable[[str], None] = print,
        **options: Any) -> dict[str, Any]:
    """``hyper-tinypw compress``: stored model file → ``out/`` model.keras, model_qat.h5, model_hyper.tflite and
    compress.json (the size choice, the fit's errors, the file's bytes and its TFLM test metrics).

    The hyper file is scored through the HyperTinyPW op in the host TFLM runner (``pipeline.evaluate_model``).
    ``options`` go to :func:`compress` (``fit_steps``, ``trials``, ``generated``).
    """
    from hyper_tinypw_tf import quantization
    from hyper_tinypw_tf.app import pipeline, stages

    out = Path(out)
    stored = pipeline.load_model(model_path)
    datasets, info = load_data()
    calibration = calibration_inputs(datasets["train"], calibration_count, finetune.seed)
    result = compress(stored, budget_bytes, strategy, calibration, datasets, info, finetune, start=start,
                      print_fn=print_fn, **options)
    out.mkdir(parents=True, exist_ok=True)
    quantization.save_model(result.model, out / "model.keras")
    quantization.save_model(result.qat, out / "model_qat.h5")
    model_file = out / "model_hyper.tflite"
    report = export_within_budget(result.qat, model_file, budget_bytes, mode, print_fn)
    metrics = pipeline.evaluate_model(model_file, lambda: (datasets, info), "test", n_boot, finetune.seed)
    summary = {
        "stored_model": str(model_path), "strategy": strategy, "start": start, "budget_bytes": int(budget_bytes),
        "generator": result.choice.candidate.generator, "file_bytes": report.total,
        "measured_overhead": result.choice.overhead,
        "packed_bytes": result.choice.candidate.packed_bytes, "trials": result.choice.trials,
        "relative_output_error": {"before": result.fit.before, "after": result.fit.after},
        "finetune": dataclasses.asdict(finetune), "tflm_test": metrics,
    }
    stages.write_json(out / "compress.json", summary)
    print_fn(f"compress: {model_file} ({report.total:,} bytes <= {budget_bytes:,}): test macro-F1 "
             f"{metrics['metrics']['macro_f1']:.3f} in TFLM ({metrics['runtime']})")
    return summary
