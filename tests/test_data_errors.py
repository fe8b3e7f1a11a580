"""hyper_tinypw_tf.data.errors/wfdb_io/speech_commands: bad files named, skip_bad counts, offline is one error."""

from __future__ import annotations

import logging
import shutil
import socket
import wave
from pathlib import Path

import numpy as np
import pytest

from hyper_tinypw_tf.data import (
    BadFileError,
    DatasetUnavailableError,
    EmptyDataDirError,
    load,
    load_arrays,
    speech_commands,
)
from hyper_tinypw_tf.data.options import LoadOptions, default_data_dir

DATA = default_data_dir()
MITDB = DATA / "mitdb"
needs_mitdb = pytest.mark.usefixtures("shared_data")  # fails loudly if absent


def offline(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return True
    return False


def copy_record(dst: Path, rec: str) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for ext in ("hea", "dat", "atr"):
        shutil.copyfile(MITDB / f"{rec}.{ext}", dst / f"{rec}.{ext}")


def load_mitdb(d: Path, records: list[str], **kw):
    return load_arrays("mitdb_v", d, LoadOptions(download=False, cache_dir=d / "cache", **kw),
                       records=records)


@needs_mitdb
def test_truncated_dat_names_file(tmp_path: Path) -> None:
    copy_record(tmp_path, "101")
    with open(tmp_path / "101.dat", "r+b") as f:
        f.truncate(1000)
    with pytest.raises(BadFileError, match=r"101\.dat: truncated: 1000 bytes"):
        load_mitdb(tmp_path, ["101"])


@needs_mitdb
def test_header_length_disagrees_with_dat(tmp_path: Path) -> None:
    copy_record(tmp_path, "101")
    hea = tmp_path / "101.hea"
    hea.write_text(hea.read_text().replace("101 2 360 650000", "101 2 360 600000", 1))
    with pytest.raises(BadFileError, match=r"101\.hea: signal length disagrees with 101\.dat"):
        load_mitdb(tmp_path, ["101"])


@needs_mitdb
def test_missing_atr_names_file(tmp_path: Path) -> None:
    copy_record(tmp_path, "101")
    (tmp_path / "101.atr").unlink()
    with pytest.raises(BadFileError, match=r"101\.atr"):
        load_mitdb(tmp_path, ["101"])


@needs_mitdb
def test_skip_bad_skips_and_counts(tmp_path: Path, caplog) -> None:
    for rec in ("101", "106", "108", "109"):
        copy_record(tmp_path, rec)
    with open(tmp_path / "106.dat", "r+b") as f:
        f.truncate(12345)
    with caplog.at_level(logging.WARNING, logger="hyper_tinypw_tf.data"):
        arrays, info = load_mitdb(tmp_path, ["101", "106", "108", "109"], skip_bad=True)
    assert info.skipped == 1 and info.skipped_files == [str(tmp_path / "106.dat")]
    assert "106" not in {g for a in arrays.values() for g in a.groups.tolist()}
    assert any("skipped 1 bad record" in r.getMessage() for r in caplog.records)


def write_wav(path: Path, rate: int = 16000, channels: int = 1, width: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(np.zeros(rate * channels * width // 4, dtype="u1").tobytes())


@pytest.mark.parametrize("fmt", [{"rate": 8000}, {"channels": 2}, {"width": 1}])
def test_bad_wav_names_file_and_skip_bad(tmp_path: Path, fmt: dict[str, int]) -> None:
    for w in speech_commands.CORE_WORDS:
        write_wav(tmp_path / w / "abcd0123_nohash_0.wav")
    bad = tmp_path / "yes" / "ffff0000_nohash_0.wav"
    write_wav(bad, **fmt)
    with pytest.raises(BadFileError, match="ffff0000_nohash_0.wav.*expected 16 kHz mono 16-bit"):
        load("speech_commands", tmp_path)
    # One speaker cannot fill train/val/test: evaluate the folder as all-test data.
    _, info = load("speech_commands", tmp_path, LoadOptions(skip_bad=True), split="all")
    assert info.skipped == 1 and info.skipped_files == [str(bad)]
    assert sum(sum(c.values()) for c in info.counts.values()) >= 10


def test_non_wav_file_names_file(tmp_path: Path) -> None:
    p = tmp_path / "yes" / "aaaa_nohash_0.wav"
    p.parent.mkdir()
    p.write_bytes(b"not a wav at all")
    with pytest.raises(BadFileError, match="aaaa_nohash_0.wav"):
        speech_commands.check_wav(p)


def test_empty_directory_names_it(tmp_path: Path) -> None:
    with pytest.raises(EmptyDataDirError, match=str(tmp_path)):
        load_arrays("mitdb_aami", tmp_path, LoadOptions(download=False))
    with pytest.raises(EmptyDataDirError, match=str(tmp_path)):
        load("speech_commands", tmp_path, source="local")
    with pytest.raises(EmptyDataDirError, match=str(tmp_path)):
        load_arrays("ptbxl", tmp_path, LoadOptions(download=False))


@pytest.mark.skipif(not offline("physionet.org"), reason="network available: would download")
@pytest.mark.parametrize("task,db", [("mitdb_v", "mitdb"), ("apnea", "apnea-ecg"),
                                     ("ptbxl", "ptb-xl")])
def test_offline_physionet_download_is_one_clear_error(tmp_path: Path, task: str,
                                                       db: str) -> None:
    with pytest.raises(DatasetUnavailableError, match=f"Could not download {db} from .*/content/{db}/") as e:
        load_arrays(task, tmp_path / "dl", LoadOptions(cache_dir=tmp_path / "c"))
    msg = str(e.value)
    assert db in msg and f"https://physionet.org/content/{db}/" in msg
    assert "data_dir=" in msg and "\n" not in msg
    assert e.value.__cause__ is None and e.value.__suppress_context__


@pytest.mark.skipif(not offline("storage.googleapis.com"), reason="network available")
def test_offline_tfds_download_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailableError, match="Could not download speech_commands") as e:
        load("speech_commands", tmp_path, timeout=10.0)
    msg = str(e.value)
    assert "speech_commands" in msg and "download.tensorflow.org" in msg
    assert "data_dir=" in msg and "\n" not in msg
    assert e.value.__cause__ is None and e.value.__suppress_context__
