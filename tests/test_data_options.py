"""hyper_tinypw_tf.data.options and data.load/load_arrays: one options object, one default data folder.

Every loader (MIT-BIH, Apnea-ECG, PTB-XL, Speech Commands) takes the common settings only as a
``LoadOptions``; the shared data folder is resolved in ``default_data_dir`` alone.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

from hyper_tinypw_tf.data import LoadOptions, apnea, default_data_dir, load_arrays, mitdb, ptbxl, speech_commands
from hyper_tinypw_tf.data.options import DATA_ENV, DEFAULT_OPTIONS

COMMON = {f.name for f in dataclasses.fields(LoadOptions)}
RECORDS = ["101", "106", "108"]


def test_options_are_frozen_with_one_default_each() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'quiet'"):
        DEFAULT_OPTIONS.quiet = False  # type: ignore[misc]
    assert COMMON == {"download", "skip_bad", "cache_dir", "use_cache", "quiet"}
    assert DEFAULT_OPTIONS == LoadOptions(download=True, skip_bad=False, cache_dir=None, use_cache=True, quiet=True)


@pytest.mark.parametrize("loader", [mitdb.load_arrays, apnea.load_arrays, ptbxl.load_arrays,
                                    speech_commands.load_local, speech_commands.load_tfds,
                                    speech_commands.load])
def test_every_loader_takes_the_common_settings_only_as_options(loader) -> None:
    params = inspect.signature(loader).parameters
    assert params["options"].default is DEFAULT_OPTIONS
    assert not COMMON & set(params), f"{loader.__qualname__} repeats {sorted(COMMON & set(params))}"


def test_a_loose_common_setting_is_refused(shared_data: Path) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'quiet'"):
        load_arrays("mitdb_v", shared_data / "mitdb", quiet=True, records=RECORDS)


def test_quiet_by_default_progress_bar_on_request(shared_data: Path, tmp_path: Path, capfd) -> None:
    options = LoadOptions(download=False, cache_dir=tmp_path)
    arrays, _ = load_arrays("mitdb_v", shared_data / "mitdb", options, records=RECORDS)
    assert "mitdb records" not in capfd.readouterr().err
    again, _ = load_arrays("mitdb_v", shared_data / "mitdb", dataclasses.replace(options, quiet=False),
                           records=RECORDS)
    assert "mitdb records" in capfd.readouterr().err
    assert all((again[s].x == arrays[s].x).all() for s in arrays)  # quiet changes output, not data


def test_default_data_dir_is_the_shared_copy_unless_the_environment_names_another(
        monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    repo = Path(__file__).resolve().parents[1]
    assert default_data_dir() == repo.parent / "shared" / "data"
    assert default_data_dir("mitdb") == repo.parent / "shared" / "data" / "mitdb"
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert default_data_dir("ptbxl") == tmp_path / "ptbxl"


def test_cli_default_data_dir_comes_from_the_one_resolver(monkeypatch, tmp_path: Path) -> None:
    from absl import flags

    from hyper_tinypw_tf.app import cli

    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    flags.FLAGS.unparse_flags()  # start from the defaults, whatever an earlier in-process CLI test parsed
    flags.FLAGS(["prog", "--task=mitdb_aami"])
    try:
        assert cli._data_dir() == tmp_path / "mitdb"
    finally:
        flags.FLAGS.unparse_flags()
