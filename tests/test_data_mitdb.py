"""hyper_tinypw_tf.data.mitdb (via data.load/load_arrays) on the real DS1 copy in the shared data folder."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest
import wfdb

from hyper_tinypw_tf.data import MissingRecordsError, load, load_arrays, mitdb
from hyper_tinypw_tf.data.errors import BadFileError
from hyper_tinypw_tf.data.options import LoadOptions, default_data_dir

DATA = default_data_dir()
MITDB = DATA / "mitdb"
pytestmark = pytest.mark.usefixtures("shared_data")  # fails loudly if absent

DS1 = ["101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122", "124",
       "201", "203", "205", "207", "208", "209", "215", "220", "223", "230"]
# AAMI EC57 table spelled out independently of the loader's mapping.
AAMI = {"N": "NLRej", "S": "AaJS", "V": "VE", "F": "F", "Q": "/fQ"}


def atr_counts(record: str) -> collections.Counter[str]:
    """Per-AAMI-class beat counts straight from the .atr file."""
    symbols = wfdb.rdann(str(MITDB / record), "atr").symbol
    out: collections.Counter[str] = collections.Counter()
    for s in symbols:
        for cls, members in AAMI.items():
            if s in members:
                out[cls] += 1
    return out


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def aami(cache_dir: Path):
    return load_arrays("mitdb_aami", MITDB, LoadOptions(cache_dir=cache_dir), records=DS1)


def test_every_ds1_record_counts_match_atr(aami) -> None:
    arrays, info = aami
    per_record: dict[str, collections.Counter[str]] = collections.defaultdict(
        collections.Counter)
    for a in arrays.values():
        for g, y in zip(a.groups, a.y, strict=True):
            per_record[str(g)][info.class_names[y]] += 1
    assert sorted(per_record) == sorted(DS1)
    for rec in DS1:
        assert per_record[rec] == atr_counts(rec), rec


def test_v_labels_match_atr(cache_dir: Path) -> None:
    arrays, info = load_arrays("mitdb_v", MITDB, LoadOptions(cache_dir=cache_dir), records=DS1)
    assert info.class_names == ["rest", "V"]
    for a in arrays.values():
        for rec in np.unique(a.groups)[:4]:
            c = atr_counts(str(rec))
            y = a.y[a.groups == rec]
            assert int(y.sum()) == c["V"]
            assert int((y == 0).sum()) == c["N"] + c["S"] + c["F"] + c["Q"]


def test_no_record_in_two_splits_and_deterministic(aami, cache_dir: Path) -> None:
    arrays, info = aami
    sets = {s: set(a.groups.tolist()) for s, a in arrays.items()}
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"])
    assert not (sets["val"] & sets["test"])
    assert all(sets.values())
    again = mitdb.assign_records(DS1, "patient_wise", MITDB, seed=0)
    assert {s: set(v) for s, v in again.items()} == sets
    other = mitdb.assign_records(DS1, "patient_wise", MITDB, seed=1)
    assert {s: set(v) for s, v in other.items()} != sets
    assert info.counts["train"]["N"] == int((arrays["train"].y == 0).sum())


def test_default_pool_excludes_paced_records(cache_dir: Path) -> None:
    out = mitdb.assign_records(mitdb.DS1 + mitdb.PACED, "patient_wise", MITDB)
    assert not set(mitdb.PACED) & {r for v in out.values() for r in v}


def test_inter_patient_lists_missing_ds2_records(cache_dir: Path) -> None:
    with pytest.raises(MissingRecordsError, match="mitdb: 22 record") as e:
        load_arrays("mitdb_v", MITDB, LoadOptions(cache_dir=cache_dir), protocol="inter_patient")
    msg = str(e.value)
    assert "22 record(s)" in msg and "100" in msg and "234" in msg and "patient_wise" in msg


def test_mlii_found_by_name_not_channel_zero(cache_dir: Path) -> None:
    # Record 114 stores V5 first and MLII second.
    out = mitdb.record_windows(MITDB, "114", window=64, zscore=False, cache_dir=cache_dir)
    sig = wfdb.rdrecord(str(MITDB / "114"), channel_names=["MLII"]).p_signal[:, 0]
    ann = wfdb.rdann(str(MITDB / "114"), "atr")
    first = next(s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in "NLRej")
    np.testing.assert_allclose(out["x"][0], sig[first - 32: first + 32], rtol=1e-6)


def test_record_without_mlii_raises_naming_header(tmp_path: Path) -> None:
    with pytest.raises(BadFileError, match=r"102\.hea.*MLII"):
        load_arrays("mitdb_v", MITDB, LoadOptions(cache_dir=tmp_path), records=["102"])


def test_dataset_shapes_resample_and_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HYPER_TINYPW_CACHE", str(tmp_path / "envcache"))
    ds, info = load("mitdb_v", MITDB, records=["101", "106", "108"], window=128, fs=180,
                    batch_size=32)
    x, y = next(iter(ds["train"]))
    assert tuple(x.shape) == (32, 128, 1, 1) and x.dtype.name == "float32"
    assert info.input_shape == (128, 1, 1)
    assert len(list((tmp_path / "envcache" / "mitdb").glob("*.npz"))) == 3
    n = sum(info.counts["train"].values()) + sum(info.counts["val"].values())
    n += sum(info.counts["test"].values())
    assert n == sum(sum(atr_counts(r).values()) for r in ["101", "106", "108"])
    assert sum(len(g) for g in info.groups.values()) == n
