"""The task registry: one frozen :class:`TaskSpec` per data task, the one place a task is described.

The CLI's ``--task`` choices, its per-task flag checks and model/task compatibility check, ``report``'s
class count and ``models.preset_kind`` read it; a new dataset is one spec here plus one loader module
(docs/extending.md, "A new dataset"). The module imports nothing of the package: the loader is named
(``"module:function"``) and imported only when :meth:`TaskSpec.loader` is called, so the registry sits
below the data layer and the models. ``tests/test_tasks.py`` holds each spec to its loader's constants.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Task flags: command-line switches that only some tasks take (each spec lists the ones it takes).
RECORDS, PROTOCOL, RR_FEATURES, KWS_SPLIT = "records", "protocol", "rr_features", "kws_split"
BEAT_TEMPLATE = "beat_template"
TASK_FLAGS = (RECORDS, PROTOCOL, RR_FEATURES, BEAT_TEMPLATE, KWS_SPLIT)
# Input-channel flags and the channels each adds: --rr_features, pre-RR, post-RR and local-mean RR
# (data.ecg.RR_FEATURES); --beat_template, each beat minus its record's median beat (data.ecg.with_template_channel).
INPUT_CHANNELS = {RR_FEATURES: 3, BEAT_TEMPLATE: 1}
RR_CHANNELS = INPUT_CHANNELS[RR_FEATURES]
CV = "cv"  # --protocol=cv:K, K-fold cross-validation over records or speakers (data.splits.parse_cv)


@dataclass(frozen=True)
class TaskSpec:
    """What a task is: its data, its labels, the input a model of it takes and the flags it honours.

    ``family`` is the preset kind (``models.Preset.task``) that builds models for it. ``loader`` is
    ``"module:function"`` with ``loader_kwargs`` bound; ``returns`` says whether it returns numpy arrays
    per split (``data.load`` batches them) or ``tf.data`` datasets. ``dataset`` names the folder under
    the shared data root; ``shared_copy`` says whether ../shared/data holds one.
    """

    name: str
    dataset: str
    loader: str
    returns: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    family: str
    flags: frozenset[str] = frozenset()
    protocols: tuple[str, ...] = ()  # --protocol values besides cv:K; CV listed when cv:K applies
    loader_kwargs: tuple[tuple[str, Any], ...] = ()
    shared_copy: bool = True
    headline: tuple[str, ...] = ("macro_f1", "balanced_accuracy")  # the metrics a summary leads with
    channels_on: frozenset[str] = frozenset()  # input-channel flags on unless turned off (--noFLAG)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def takes(self, flag: str) -> bool:
        """Whether the task honours a task flag (``records``, ``protocol``, ``rr_features``, ``kws_split``)."""
        return flag in self.flags

    def model_input_shape(self, rr_features: bool = False, beat_template: bool = False) -> tuple[int, int, int]:
        """The (H, W, C) input its models take; each input-channel flag that is on adds its channels."""
        height, width, channels = self.input_shape
        on = {RR_FEATURES: rr_features, BEAT_TEMPLATE: beat_template}
        return (height, width, channels + sum(n for flag, n in INPUT_CHANNELS.items() if on[flag]))

    def input_channels(self, given: dict[str, bool | None]) -> dict[str, bool]:
        """The input-channel flags in force: each as given, else on when the task turns it on by default."""
        return {flag: bool(given.get(flag) if given.get(flag) is not None else flag in self.channels_on)
                for flag in INPUT_CHANNELS if self.takes(flag)}

    def load_function(self) -> Callable[..., Any]:
        """The loader, imported now, with ``loader_kwargs`` bound."""
        module, _, name = self.loader.partition(":")
        function = getattr(importlib.import_module(module), name)
        return functools.partial(function, **dict(self.loader_kwargs))


_MITDB_FLAGS = frozenset({RECORDS, PROTOCOL, RR_FEATURES, BEAT_TEMPLATE})
# Inter-patient AAMI classes need both: morphology alone does not transfer between patients (README, Data).
_AAMI_CHANNELS = frozenset({RR_FEATURES, BEAT_TEMPLATE})
_AAMI = ("N", "S", "V", "F", "Q")

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("mitdb_v", "mitdb", "hyper_tinypw_tf.data.mitdb:load_arrays", "arrays", ("rest", "V"), (256, 1, 1),
                 "ecg", _MITDB_FLAGS, ("patient_wise", "inter_patient", CV), (("labels", "v"),)),
        TaskSpec("mitdb_aami", "mitdb", "hyper_tinypw_tf.data.mitdb:load_arrays", "arrays", _AAMI, (256, 1, 1),
                 "ecg", _MITDB_FLAGS, ("patient_wise", "inter_patient", CV), (("labels", "aami"),),
                 channels_on=_AAMI_CHANNELS),
        TaskSpec("apnea", "apnea-ecg", "hyper_tinypw_tf.data.apnea:load_arrays", "arrays", ("N", "A"), (6000, 1, 1),
                 "ecg", shared_copy=False),
        TaskSpec("ptbxl", "ptbxl", "hyper_tinypw_tf.data.ptbxl:load_arrays", "arrays", ("NORM", "abnormal"),
                 (1000, 1, 1), "ecg"),
        TaskSpec("speech_commands", "speech_commands", "hyper_tinypw_tf.data.speech_commands:load", "datasets",
                 ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_silence_", "_unknown_"),
                 (49, 10, 1), "kws", frozenset({KWS_SPLIT, PROTOCOL}), (CV,), headline=("macro_f1", "accuracy")),
    )
}
NAMES = tuple(TASKS)


def get(name: str) -> TaskSpec:
    """The spec of a task, with a message listing the tasks that exist."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(NAMES)}")
    return TASKS[name]


def taking(flag: str) -> tuple[str, ...]:
    """Names of the tasks that honour a task flag, in registry order."""
    return tuple(name for name, spec in TASKS.items() if spec.takes(flag))


def of_family(family: str) -> tuple[str, ...]:
    """Names of the tasks whose models a preset of ``family`` ("ecg", "kws") builds."""
    return tuple(name for name, spec in TASKS.items() if spec.family == family)


def parse_protocol(spec: TaskSpec, value: str) -> int | None:
    """Check ``value`` is a protocol ``spec`` takes; return K of ``cv:K`` (None for the others).

    The ``cv:K`` spelling and its K >= 3 rule are ``data.splits.parse_cv``'s.
    """
    from hyper_tinypw_tf.data import splits

    try:
        folds = splits.parse_cv(value)
    except ValueError as error:
        raise ValueError(f"--protocol={value}: {error}") from None
    if (folds is not None and CV in spec.protocols) or (folds is None and value in spec.protocols and value != CV):
        return folds
    choices = [f"{p}:K" if p == CV else p for p in spec.protocols]
    raise ValueError(f"--protocol={value} does not apply to --task={spec.name}; it takes {' or '.join(choices)}")


def mismatch(spec: TaskSpec, input_shape: tuple[int, ...], num_classes: int, rr_features: bool = False,
             beat_template: bool = False) -> str | None:
    """Why a model with this input shape (no batch) and class count cannot run on the task, or None."""
    want = spec.model_input_shape(rr_features, beat_template)
    if tuple(input_shape) == want and num_classes == spec.num_classes:
        return None
    flags = "".join(f" --{flag}" if on else (f" --no{flag}" if flag in spec.channels_on else "")
                    for flag, on in ((RR_FEATURES, rr_features), (BEAT_TEMPLATE, beat_template)) if spec.takes(flag))
    return (f"takes input {tuple(input_shape)} with {num_classes} classes, but --task={spec.name}"
            f"{flags} gives input {want} with {spec.num_classes} classes")
