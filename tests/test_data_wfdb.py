"""hyper_tinypw_tf.data.wfdb_io: checks blame the right file (signal count: the header; short file: the .dat)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hyper_tinypw_tf.data import BadFileError, mitdb
from hyper_tinypw_tf.data.options import default_data_dir

MITDB = default_data_dir("mitdb")
needs_mitdb = pytest.mark.usefixtures("shared_data")  # fails loudly if absent


def _copy(dst: Path, record: str = "101") -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for ext in ("hea", "dat", "atr"):
        shutil.copyfile(MITDB / f"{record}.{ext}", dst / f"{record}.{ext}")
    return dst / f"{record}.hea"


@needs_mitdb
@pytest.mark.parametrize(("count", "extra_line"), [(3, True), (1, False)])
def test_wrong_signal_count_blames_the_header(tmp_path: Path, count: int, extra_line: bool) -> None:
    hea = _copy(tmp_path)
    lines = hea.read_text().splitlines()
    signals = lines[1:3]
    body = signals + [signals[1]] if extra_line else signals[:1]
    hea.write_text("\n".join([lines[0].replace("101 2 ", f"101 {count} ", 1), *body, *lines[3:]]) + "\n")
    with pytest.raises(BadFileError, match=r"101\.hea: signal (count|length) disagrees with 101\.dat"):
        mitdb.record_windows(tmp_path, "101", use_cache=False)


@needs_mitdb
def test_truncated_dat_is_still_blamed_on_the_dat(tmp_path: Path) -> None:
    _copy(tmp_path)
    with open(tmp_path / "101.dat", "r+b") as f:
        f.truncate(1001)
    with pytest.raises(BadFileError, match=r"101\.dat: truncated: 1001 bytes"):
        mitdb.record_windows(tmp_path, "101", use_cache=False)
