"""Safe WFDB record access: validate files before wfdb parses them, and download.

wfdb happily reads a truncated ``.dat`` (returning short or garbage signals) or fails
with an error that does not name the file. Checking sizes against the header first turns
both into one :class:`BadFileError` naming the file at fault.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import wfdb

from hyper_tinypw_tf.data.errors import BadFileError, DatasetUnavailableError

log = logging.getLogger("hyper_tinypw_tf.data")

# Bits per stored sample for the WFDB formats we can size-check.
_BITS = {"8": 8, "16": 16, "24": 24, "32": 32, "61": 16, "80": 8, "160": 16, "212": 12,
         "310": 32 / 3, "311": 32 / 3}


def _side(base: Path, ext: str) -> Path:
    return base.parent / f"{base.name}.{ext}"


def list_records(data_dir: Path) -> list[str]:
    """Record names (header stems) present in ``data_dir``."""
    return sorted(p.stem for p in Path(data_dir).glob("*.hea"))


def check_record(base: Path, annotation: str | None = None) -> wfdb.Record:
    """Validate a record's files and return its parsed header.

    Raises :class:`BadFileError` naming the file when the header is missing or unreadable,
    a signal file is missing or its size disagrees with the header, or the requested
    annotation file is missing.
    """
    base = Path(base)
    hea = _side(base, "hea")
    if not hea.is_file():
        raise BadFileError(hea, "header file missing")
    try:
        header = wfdb.rdheader(str(base))
    except Exception as e:  # wfdb raises assorted types for malformed headers
        raise BadFileError(hea, f"unreadable WFDB header ({type(e).__name__}: {e})") from None
    if header.sig_len is not None and header.file_name:
        per_file: dict[str, list[int]] = {}
        for i, name in enumerate(header.file_name):
            per_file.setdefault(name, []).append(i)
        for name, idx in per_file.items():
            _check_dat(hea, base.parent / name, header, idx)
    if annotation is not None:
        ann = _side(base, annotation)
        if not ann.is_file():
            raise BadFileError(ann, f"annotation file (.{annotation}) of {base.name} missing")
    return header


def _check_dat(hea: Path, dat: Path, header: wfdb.Record, idx: list[int]) -> None:
    if not dat.is_file():
        raise BadFileError(dat, f"signal file named in {hea.name} is missing")
    fmt = str(header.fmt[idx[0]])
    if fmt not in _BITS:
        return
    spf = sum(int((header.samps_per_frame or [1] * header.n_sig)[i] or 1) for i in idx)
    offsets = header.byte_offset or [None] * header.n_sig
    offset = int(offsets[idx[0]] or 0)
    expected = offset + math.ceil(header.sig_len * spf * _BITS[fmt] / 8)
    size = dat.stat().st_size
    declared = (f"{hea.name} declares {header.sig_len} samples x {spf} signal(s) in format "
                f"{fmt} = {expected} bytes")
    fitting = [k for k in range(1, 2 * spf + 9) if offset + math.ceil(header.sig_len * k * _BITS[fmt] / 8) == size]
    if size != expected and fitting and fitting[0] != spf:
        # The file is whole for another signal count: the header's count is what is wrong.
        raise BadFileError(
            hea, f"signal count disagrees with {dat.name}: {declared}, but its {size} bytes hold exactly "
            f"{fitting[0]} signal(s) of {header.sig_len} samples"
        )
    if size < expected:
        raise BadFileError(dat, f"truncated: {size} bytes but {declared}")
    if size > expected:
        raise BadFileError(
            hea, f"signal length disagrees with {dat.name}: {declared}, file has {size} bytes"
        )


def find_channel(base: Path, header: wfdb.Record, names: Sequence[str]) -> int:
    """Index of the first signal whose name is in ``names`` (case-insensitive)."""
    wanted = [n.upper() for n in names]
    sig = [str(s).upper() for s in (header.sig_name or [])]
    for w in wanted:
        if w in sig:
            return sig.index(w)
    raise BadFileError(
        _side(Path(base), "hea"),
        f"no signal named {'/'.join(names)} (signals: {', '.join(header.sig_name or [])})",
    )


def read_channel(base: Path, channel: int) -> np.ndarray:
    """One channel in physical units as float32; invalid samples (NaN) become 0."""
    try:
        rec = wfdb.rdrecord(str(base), channels=[channel], physical=True)
    except Exception as e:
        raise BadFileError(_side(Path(base), "dat"), f"unreadable signal ({e})") from None
    return np.nan_to_num(rec.p_signal[:, 0]).astype(np.float32)


def read_annotation(base: Path, extension: str) -> tuple[np.ndarray, list[str]]:
    """(sample indices, symbols) of an annotation file, errors naming the file."""
    try:
        ann = wfdb.rdann(str(base), extension)
    except Exception as e:
        raise BadFileError(_side(Path(base), extension), f"unreadable annotations ({e})") from None
    return np.asarray(ann.sample, dtype=np.int64), list(ann.symbol)


@contextlib.contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    """Temporarily bound every socket operation so an offline download cannot hang."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def require_reachable(url: str, timeout: float) -> None:
    """Fail fast (one TCP connect) when a download host cannot be reached.

    Some clients (TFDS) retry with back-off for minutes before giving up; a connect that
    fails within ``timeout`` seconds already says the download cannot happen.
    """
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with socket.create_connection((parts.hostname, port), timeout=timeout):
        pass


def physionet_address(db: str) -> str:
    """The PhysioNet address wfdb downloads ``db`` from."""
    from wfdb.io import download

    return f"{download.PN_CONTENT_URL}{db}/"


def download_physionet(
    db: str,
    dl_dir: Path,
    task: str,
    records: Sequence[str] | str = "all",
    annotators: Sequence[str] | str | None = "all",
    extra_files: Sequence[str] = (),
    timeout: float = 20.0,
) -> None:
    """``wfdb.dl_database`` (+ ``dl_files`` for non-WFDB files such as CSV indexes) with a
    socket timeout; any failure becomes one clear :class:`DatasetUnavailableError`.

    Says where it downloads from and to before it starts; a folder it made for a download that
    failed is removed again, so a mistyped ``data_dir`` leaves nothing behind.
    """
    dl_dir = Path(dl_dir)
    made = not dl_dir.exists()
    log.warning("%s: no local copy in %s%s; downloading it from %s (pass data_dir to use a local copy)",
                db, dl_dir, " (a new folder)" if made else "", physionet_address(db))
    dl_dir.mkdir(parents=True, exist_ok=True)
    try:
        with socket_timeout(timeout):
            if extra_files:
                wfdb.dl_files(db, str(dl_dir), list(extra_files))
            wfdb.dl_database(db, str(dl_dir), records=records, annotators=annotators)
    except Exception as e:  # requests/urllib/OSError variants: all mean "not downloadable now"
        if made and not any(dl_dir.iterdir()):
            dl_dir.rmdir()
        raise DatasetUnavailableError(db, physionet_address(db), e, task) from None
