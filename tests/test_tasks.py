"""The task registry agrees with its loaders, and its checks say what does not fit."""

from __future__ import annotations

import inspect

import pytest

from hyper_tinypw_tf import data, models, tasks
from hyper_tinypw_tf.app import cli
from hyper_tinypw_tf.data import apnea, ecg, mitdb, ptbxl, speech_commands


def test_each_spec_matches_what_its_loader_declares() -> None:
    """Class names and input shapes are the loaders' own constants (the spec must not drift from them)."""
    window = inspect.signature(mitdb.load_arrays).parameters["window"].default
    declared = {
        "mitdb_v": (mitdb.V_CLASSES, (window, 1, 1)),
        "mitdb_aami": (mitdb.AAMI_CLASSES, (window, 1, 1)),
        "apnea": (apnea.CLASS_NAMES, (apnea.MINUTE, 1, 1)),
        "ptbxl": (ptbxl.CLASS_NAMES, (ptbxl.LENGTH, 1, 1)),
        "speech_commands": (speech_commands.CLASS_NAMES, speech_commands.FeatureConfig().output_shape),
    }
    assert set(declared) == set(tasks.TASKS) == set(data.TASKS)
    for name, (classes, shape) in declared.items():
        spec = tasks.get(name)
        assert (spec.class_names, spec.input_shape) == (tuple(classes), shape), name
    assert tasks.RR_CHANNELS == len(ecg.RR_FEATURES)


def test_each_loader_resolves_and_takes_the_task_flags_its_spec_lists() -> None:
    keyword = {tasks.RECORDS: "records", tasks.RR_FEATURES: "rr_features", tasks.KWS_SPLIT: "split"}
    for spec in tasks.TASKS.values():
        function = spec.load_function()
        target = getattr(function, "func", function)
        params = inspect.signature(target).parameters
        assert all(k in params for k, _ in spec.loader_kwargs), spec.name
        for flag, name in keyword.items():
            if spec.takes(flag) and spec.family == "ecg":
                assert name in params, (spec.name, name)
        assert spec.returns in ("arrays", "datasets")


def test_every_family_has_presets_and_preset_kind_reads_the_registry() -> None:
    families = {p.task for p in models.PRESETS.values()}
    assert {spec.family for spec in tasks.TASKS.values()} == families
    for name, spec in tasks.TASKS.items():
        assert models.preset_kind(name) == spec.family
    assert tasks.of_family("kws") == ("speech_commands",)


def test_the_cli_task_choices_are_the_registry() -> None:
    assert tuple(cli.FLAGS["task"].parser.enum_values) == tasks.NAMES


@pytest.mark.parametrize(
    ("task", "value", "result"),
    [("mitdb_v", "patient_wise", None), ("mitdb_aami", "inter_patient", None), ("mitdb_v", "cv:5", 5),
     ("speech_commands", "cv:3", 3)],
)
def test_protocols_a_task_takes(task: str, value: str, result: int | None) -> None:
    assert tasks.parse_protocol(tasks.get(task), value) == result


@pytest.mark.parametrize(
    ("task", "value", "message"),
    [
        ("speech_commands", "patient_wise", "--protocol=patient_wise does not apply to --task=speech_commands; it "
                                            "takes cv:K"),
        ("mitdb_v", "cv", "--protocol=cv does not apply to --task=mitdb_v"),
        ("mitdb_v", "cv:2", r"--protocol=cv:2: protocol: cv:K needs an integer K >= 3"),
        ("ptbxl", "cv:5", "--protocol=cv:5 does not apply to --task=ptbxl; it takes $"),
    ],
)
def test_protocols_a_task_refuses(task: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tasks.parse_protocol(tasks.get(task), value)


def test_mismatch_names_both_shapes_and_class_counts() -> None:
    aami = tasks.get("mitdb_aami")
    assert tasks.mismatch(aami, (256, 1, 1), 5) is None
    assert tasks.mismatch(aami, (256, 1, 4), 5, rr_features=True) is None
    assert tasks.mismatch(aami, (256, 1, 1), 2) == (
        "takes input (256, 1, 1) with 2 classes, but --task=mitdb_aami --norr_features --nobeat_template gives "
        "input (256, 1, 1) with 5 classes"
    )
    assert tasks.mismatch(aami, (256, 1, 1), 5, rr_features=True).endswith(
        "--task=mitdb_aami --rr_features --nobeat_template gives input (256, 1, 4) with 5 classes"
    )
    # AAMI turns both input-channel flags on unless they are turned off; other tasks take them off.
    assert aami.input_channels({}) == {"rr_features": True, "beat_template": True}
    assert aami.input_channels({"beat_template": False}) == {"rr_features": True, "beat_template": False}
    assert aami.model_input_shape(**aami.input_channels({})) == (256, 1, 5)
    assert tasks.get("mitdb_v").input_channels({}) == {"rr_features": False, "beat_template": False}
    assert tasks.get("speech_commands").input_channels({"rr_features": True}) == {}


def test_unknown_task_lists_the_tasks() -> None:
    with pytest.raises(ValueError, match="unknown task 'nope'; choose one of mitdb_v, mitdb_aami, apnea"):
        tasks.get("nope")
