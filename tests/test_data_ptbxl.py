"""hyper_tinypw_tf.data.ptbxl (via data.load/load_arrays) on the partial copy in the shared data folder."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hyper_tinypw_tf.data import load, load_arrays
from hyper_tinypw_tf.data.options import LoadOptions, default_data_dir

DATA = default_data_dir()
PTBXL = DATA / "ptbxl"
pytestmark = pytest.mark.usefixtures("shared_data")  # fails loudly if absent


@pytest.fixture(scope="module")
def expected() -> pd.DataFrame:
    """Labels and folds derived straight from the CSVs (pandas, not the loader's csv code)."""
    db = pd.read_csv(PTBXL / "ptbxl_database.csv", index_col="ecg_id")
    scp = pd.read_csv(PTBXL / "scp_statements.csv", index_col=0)
    diag = scp[scp.diagnostic == 1].diagnostic_class
    db["has_file"] = [(PTBXL / f"{f}.dat").exists() for f in db.filename_lr]
    db["supers"] = [
        {diag[c] for c in ast.literal_eval(s) if c in diag.index} for s in db.scp_codes
    ]
    return db


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("c")


@pytest.fixture(scope="module")
def loaded(cache_dir: Path):
    return load_arrays("ptbxl", PTBXL, LoadOptions(cache_dir=cache_dir))


def test_labelled_records_and_folds(expected: pd.DataFrame, loaded) -> None:
    with_file = expected[expected.has_file]
    assert len(with_file) == 510  # README: 510 staged records have a row
    labelled = with_file[with_file.supers.map(len) > 0]
    print(f"{len(with_file)} rows with a file, {len(labelled)} with a diagnostic statement")
    arrays, info = loaded
    got_ids = np.concatenate([info.notes["ecg_id"][s] for s in ("train", "val", "test")])
    assert sorted(got_ids.tolist()) == sorted(labelled.index.tolist())
    assert info.notes["skipped"]["no_diagnostic"] == len(with_file) - len(labelled)
    folds = {"train": set(range(1, 9)), "val": {9}, "test": {10}}
    for split, a in arrays.items():
        ids = info.notes["ecg_id"][split]
        assert set(info.notes["strat_fold"][split].tolist()) <= folds[split]
        np.testing.assert_array_equal(info.notes["strat_fold"][split],
                                      labelled.loc[ids, "strat_fold"].to_numpy())
        want = [0 if s == {"NORM"} else 1 for s in labelled.loc[ids, "supers"]]
        assert a.y.tolist() == want
        assert a.x.shape == (len(ids), 1000, 1, 1) and a.x.dtype == np.float32
        assert set(a.groups.tolist()) == {
            str(int(p)) for p in labelled.loc[ids, "patient_id"]}


def test_skips_logged_in_one_line(expected: pd.DataFrame, loaded, caplog, cache_dir) -> None:
    with caplog.at_level(logging.INFO, logger="hyper_tinypw_tf.data"):
        ds, info = load("ptbxl", PTBXL, LoadOptions(cache_dir=cache_dir), batch_size=16)
    lines = [r.getMessage() for r in caplog.records if "ptbxl" in r.getMessage()]
    assert len(lines) == 1
    n_files = len(list((PTBXL / "records100").glob("*/*.hea")))
    rows_no_file = int((~expected.has_file).sum())
    files_no_row = n_files - int(expected.has_file.sum())
    assert f"{rows_no_file} rows without a file" in lines[0]
    assert f"{files_no_row} files without a row" in lines[0]
    x, y = next(iter(ds["train"]))
    assert tuple(x.shape) == (16, 1000, 1, 1)


def test_norm_vs_abnormal_and_input_shape_from_the_data(loaded) -> None:
    from hyper_tinypw_tf import models

    arrays, info = loaded
    assert info.class_names == ["NORM", "abnormal"]
    assert all(a.x.shape[1:] == info.input_shape == (1000, 1, 1) for a in arrays.values())
    # The preset fixes widths; the input (10 s at 100 Hz, not MIT-BIH's 256-sample beat) is the data's.
    model = models.for_task("64k", info.task, info.input_shape, info.num_classes, pw="hyper")
    assert model(arrays["test"].x[:2]).shape == (2, 2)
