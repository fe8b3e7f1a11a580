"""hyper_tinypw_tf.data.apnea (through data.load/load_arrays) on small WFDB records the test writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb

from hyper_tinypw_tf.data import EmptyDataDirError, LoadOptions, apnea, load, load_arrays

LABELS = {"a01": "NAAN", "a02": "AANN", "b01": "NNNN", "c01": "NNNA", "c02": "ANNA"}


def write_record(d: Path, name: str, symbols: str, seed: int) -> np.ndarray:
    """A 100 Hz one-lead record of len(symbols) - 0.5 minutes plus one apn label per minute."""
    n = (len(symbols) - 1) * 6000 + 3000  # the last minute is incomplete
    sig = np.random.default_rng(seed).normal(size=(n, 1))
    wfdb.wrsamp(name, fs=100, units=["mV"], sig_name=["ECG"], p_signal=sig, fmt=["16"],
                write_dir=str(d))
    wfdb.wrann(name, "apn", np.arange(len(symbols)) * 6000, symbol=list(symbols),
               write_dir=str(d))
    return wfdb.rdrecord(str(d / name)).p_signal[:, 0]


@pytest.fixture()
def apnea_dir(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    d = tmp_path / "apnea-ecg"
    d.mkdir()
    sigs = {name: write_record(d, name, sym, i) for i, (name, sym) in enumerate(LABELS.items())}
    return d, sigs


def test_minute_windows_and_labels(apnea_dir, tmp_path: Path) -> None:
    d, sigs = apnea_dir
    arrays, info = load_arrays("apnea", d, LoadOptions(cache_dir=tmp_path / "c"), zscore=False)
    assert info.class_names == ["N", "A"]
    seen = set()
    for a in arrays.values():
        assert a.x.shape[1:] == (6000, 1, 1) and a.x.dtype == np.float32
        for rec in np.unique(a.groups):
            rec = str(rec)
            seen.add(rec)
            m = a.groups == rec
            full = LABELS[rec][:-1]  # the final, incomplete minute is dropped
            assert a.y[m].tolist() == ["NA".index(s) for s in full]
            for k in range(len(full)):
                np.testing.assert_allclose(a.x[m][k, :, 0, 0], sigs[rec][k * 6000:(k + 1) * 6000],
                                           rtol=1e-5, atol=1e-6)
    assert seen == set(LABELS)


def test_split_by_record_and_zscore(apnea_dir, tmp_path: Path) -> None:
    d, _ = apnea_dir
    arrays, info = load_arrays("apnea", d, LoadOptions(cache_dir=tmp_path / "c"), seed=3)
    sets = [set(a.groups.tolist()) for a in arrays.values()]
    assert sum(len(s) for s in sets) == len(set().union(*sets)) == len(LABELS)
    x = arrays["train"].x[0, :, 0, 0]
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1) < 1e-3
    assert info.counts["train"]["A"] == int(arrays["train"].y.sum())


def test_non_learning_set_records_ignored_and_dataset(apnea_dir, tmp_path: Path) -> None:
    d, _ = apnea_dir
    write_record(d, "x01", "NNA", 9)  # test-set record: no labels in the learning protocol
    ds, info = load("apnea", d, LoadOptions(cache_dir=tmp_path / "c"), batch_size=2)
    assert "x01" not in {g for v in info.groups.values() for g in v.tolist()}
    x, y = next(iter(ds["train"]))
    assert tuple(x.shape) == (2, 6000, 1, 1)
    assert set(apnea.LEARNING_SET) >= set(LABELS) and len(apnea.LEARNING_SET) == 35


def test_empty_dir_without_download(tmp_path: Path) -> None:
    with pytest.raises(EmptyDataDirError, match=str(tmp_path)):
        load_arrays("apnea", tmp_path, LoadOptions(download=False))


def test_minute_input_shape_drives_the_model(apnea_dir, tmp_path: Path) -> None:
    from hyper_tinypw_tf import models

    d, _ = apnea_dir
    arrays, info = load_arrays("apnea", d, LoadOptions(cache_dir=tmp_path / "c"))
    assert info.input_shape == (apnea.MINUTE, 1, 1) == arrays["train"].x.shape[1:]
    model = models.for_task("32k", info.task, info.input_shape, info.num_classes, pw="hyper")
    assert model(arrays["train"].x[:2]).shape == (2, 2)
