"""Atomic outputs: every file the package writes appears complete or not at all.

A killed run (training checkpoint, saved model, exported file, scores) must never leave a truncated
file that a resumed run would trust. Each output is written under a temporary name in its own folder
and renamed over the target (``os.replace`` is atomic within one filesystem). The temporary name keeps
the target's suffixes, because Keras and numpy pick the format from them (``x.weights.h5`` is not ``x.h5``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path


def temporary_sibling(path: str | os.PathLike[str]) -> Path:
    """A hidden name beside ``path``, unique to this process, ending in all of ``path``'s suffixes."""
    path = Path(path)
    suffixes = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffixes)] if suffixes else path.name
    return path.with_name(f".{stem}.{os.getpid()}.partial{suffixes}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on an exception it is removed.

    A folder (a SavedModel) that already exists is removed just before the rename, which ``os.replace``
    cannot do over a non-empty folder: only that last step is not atomic.
    """
    tmp = temporary_sibling(path)
    try:
        yield tmp
        if tmp.is_dir() and Path(path).is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp)
        elif tmp.exists():
            tmp.unlink()


def write_all(outputs: Mapping[Path, bytes | str]) -> None:
    """Write several files so that either all appear complete or none is touched (each synced before the renames)."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in outputs.items():
            tmp = temporary_sibling(path)
            staged.append((tmp, Path(path)))
            with open(tmp, "wb") as out:
                out.write(data.encode() if isinstance(data, str) else data)
                out.flush()
                os.fsync(out.fileno())
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            if tmp.exists():
                tmp.unlink()
