"""RR features beside the ECG window: the arithmetic, the loader's channels, and the exported file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import wfdb

from hyper_tinypw_tf import models, quantization, training
from hyper_tinypw_tf.data import ecg, load_arrays, mitdb
from hyper_tinypw_tf.data.options import LoadOptions, default_data_dir

DATA = default_data_dir()
MITDB = DATA / "mitdb"
RECORDS = ["101", "106", "108"]  # one record per split under patient_wise


def test_pre_post_and_local_rr_over_the_record_mean() -> None:
    # A premature beat at 260 (RR 60) and its compensatory pause (RR 140); mean RR is 100.
    beats = np.array([0, 100, 200, 260, 400, 500])
    rr = ecg.rr_features(beats, local_beats=4)
    np.testing.assert_allclose(rr[:, 0], [1.0, 1.0, 1.0, 0.6, 1.4, 1.0], rtol=1e-6)  # pre-RR
    np.testing.assert_allclose(rr[:, 1], [1.0, 1.0, 0.6, 1.4, 1.0, 1.0], rtol=1e-6)  # post-RR
    # Local mean of the pre-RR of 4 beats around each beat, the window kept inside the record.
    np.testing.assert_allclose(rr[:, 2], [0.9, 0.9, 0.9, 1.0, 1.0, 1.0], rtol=1e-6)
    assert rr.dtype == np.float32 and ecg.RR_FEATURES == ("pre_rr", "post_rr", "local_rr")


def test_rr_features_do_not_depend_on_sample_rate_or_heart_rate() -> None:
    beats = np.cumsum(np.random.default_rng(0).uniform(250, 400, size=50)).round()
    np.testing.assert_allclose(ecg.rr_features(beats), ecg.rr_features(beats * 3), rtol=1e-6)


def test_rr_features_edge_cases() -> None:
    np.testing.assert_array_equal(ecg.rr_features(np.array([42])), np.ones((1, 3), np.float32))
    assert ecg.rr_features(np.zeros(0)).shape == (0, 3)
    with pytest.raises(ValueError, match="beat positions must be in time order"):
        ecg.rr_features(np.array([0, 200, 100]))


def test_rr_channels_are_constant_along_time() -> None:
    windows = np.arange(12, dtype=np.float32).reshape(2, 6)
    rr = np.array([[0.5, 1.5, 1.0], [1.0, 1.0, 2.0]], np.float32)
    x = ecg.with_rr_channels(windows, rr)
    assert x.shape == (2, 6, 4)
    np.testing.assert_array_equal(x[:, :, 0], windows)
    np.testing.assert_array_equal(x[:, :, 1:], np.broadcast_to(rr[:, None, :], (2, 6, 3)))
    assert ecg.as_model_input(x).shape == (2, 6, 1, 4)
    with pytest.raises(ValueError, match="2 windows but 1 RR feature rows"):
        ecg.with_rr_channels(windows, rr[:1])


@pytest.fixture(scope="module")
def loaded(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.mktemp("c")
    options = LoadOptions(download=False, cache_dir=cache)
    with_rr = load_arrays("mitdb_aami", MITDB, options, records=RECORDS, rr_features=True)
    without = load_arrays("mitdb_aami", MITDB, options, records=RECORDS)
    return with_rr, without


def test_loader_adds_rr_channels_from_the_annotations(loaded) -> None:
    (arrays, info), (plain, plain_info) = loaded
    assert info.input_shape == (256, 1, 4) and plain_info.input_shape == (256, 1, 1)
    assert info.notes["rr_features"] is True
    for split, a in arrays.items():
        assert a.x.shape == (*plain[split].x.shape[:3], 4)
        np.testing.assert_array_equal(a.x[..., 0], plain[split].x[..., 0])
        np.testing.assert_array_equal(a.y, plain[split].y)
        record = str(a.groups[0])
        # Beat positions straight from wfdb, grouped by the AAMI table: the same beats as the windows.
        ann = wfdb.rdann(str(MITDB / record), "atr")
        beats = np.array([s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in mitdb.AAMI_MAP])
        want = ecg.rr_features(beats)
        np.testing.assert_array_equal(a.x[:, 0, 0, 1:], want)
        np.testing.assert_array_equal(a.x[:, :, 0, 1:], np.broadcast_to(want[:, None, :], (len(want), 256, 3)))


def test_rr_model_exports_one_input_that_tflm_reads(loaded) -> None:
    from tflite_micro.python.tflite_micro import runtime as micro

    from hyper_tinypw_tf.export import convert, interpreters

    (arrays, info), _ = loaded
    model = models.for_task("32k", info.task, info.input_shape, info.num_classes, pw="hyper")
    train = arrays["train"]
    pick = np.random.default_rng(0).permutation(len(train.y))[:1024]
    config = training.TrainConfig(epochs=1, learning_rate=2e-3, verbose=0)
    training.fit(model, tf.data.Dataset.from_tensor_slices((train.x[pick], train.y[pick])).batch(64), None, config)
    qat = quantization.quantize_model(model)
    training.fit(qat, tf.data.Dataset.from_tensor_slices((train.x[pick], train.y[pick])).batch(64), None, config)
    blob = convert.convert_model(qat)
    x = arrays["test"].x[::50][:32]
    interpreter = micro.Interpreter.from_bytes(blob)
    assert list(interpreter.get_input_details(0)["shape"]) == [1, 256, 1, 4]
    got = interpreters.predict(blob, x, "tflm")
    want = qat.predict(x, verbose=0)
    scale = float(interpreter.get_output_details(0)["quantization_parameters"]["scales"][0])
    # Keras simulates the integer arithmetic in float: a few output steps apart, not bit-exact.
    # Both sit on the output quantizer's grid, so the gap is a whole number of steps.
    steps = np.rint(np.abs(got - want) / scale)
    assert steps.max() <= 4, steps.max()
    # The RR channels reach the device: changing them alone changes the file's outputs.
    shifted = x.copy()
    shifted[..., 1:] *= 0.5
    assert not np.array_equal(interpreters.predict(blob, shifted, "tflm"), got)


def test_cli_refuses_rr_features_outside_mitdb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hyper_tinypw_tf.app import cli

    status = cli.main(["train", "--task=ptbxl", "--preset=32k", "--rr_features", f"--out={tmp_path}"])
    assert status == 2
    assert capsys.readouterr().err == (
        "hyper-tinypw train: error: --rr_features applies to --task=mitdb_v or mitdb_aami, received --task=ptbxl\n"
    )
