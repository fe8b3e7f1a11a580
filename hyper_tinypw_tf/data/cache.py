"""On-disk cache of preprocessed arrays (npz), keyed by options and source-file stats.

ECG windowing and label mapping cost seconds per load; the cache makes the second load a
plain ``np.load``. The key covers every option that changes the arrays plus each source
file's (name, size, mtime), so editing or replacing a file invalidates its entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

ENV_VAR = "HYPER_TINYPW_CACHE"
DEFAULT_DIR = Path("~/.cache/hyper_tinypw_tf")
_T = TypeVar("_T")


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the cache directory: argument, then ``$HYPER_TINYPW_CACHE``, then the default."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else DEFAULT_DIR.expanduser()


def fingerprint(files: Iterable[Path]) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of each file: cheap, and changes whenever a file is rewritten."""
    out = []
    for f in sorted(Path(p) for p in files):
        st = f.stat()
        out.append((f.name, st.st_size, st.st_mtime_ns))
    return out


def cache_key(namespace: str, options: dict[str, Any], files: Iterable[Path]) -> str:
    """Stable hash of the namespace, the options and the source files' fingerprints."""
    payload = json.dumps(
        {"ns": namespace, "opts": options, "files": fingerprint(files)}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def cached_arrays(
    namespace: str,
    options: dict[str, Any],
    files: Iterable[Path],
    compute: Callable[[], dict[str, np.ndarray]],
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
) -> dict[str, np.ndarray]:
    """Return ``compute()``'s arrays, from ``<cache>/<namespace>/<key>.npz`` when present.

    Writes go through a temporary file and an atomic rename so an interrupted run never
    leaves a half-written entry that a later run would trust.
    """
    if not use_cache:
        return compute()
    path = cache_root(cache_dir) / namespace / f"{cache_key(namespace, options, files)}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # corrupt entry: recompute below
    arrays = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return arrays


def progress(items: Iterable[_T], total: int | None, desc: str, quiet: bool) -> Iterator[_T]:
    """Wrap ``items`` in a tqdm bar (on stderr) unless ``quiet``; long preprocessing shows life."""
    if quiet:
        yield from items
        return
    from tqdm.auto import tqdm

    yield from tqdm(items, total=total, desc=desc, leave=False)
