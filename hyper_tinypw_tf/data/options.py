"""What every loader shares: one options object and the one default data directory.

The MIT-BIH, Apnea-ECG, PTB-XL and Speech Commands loaders take the same trailing settings
(download, bad-file policy, cache, progress output); they travel as one frozen
:class:`LoadOptions` so each setting has one name and one default, and the task-specific
parameters (``records``, ``split``, ``rr_features``, ...) stay separate keyword arguments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_ENV = "HYPER_TINYPW_DATA"
"""Environment variable that overrides :func:`default_data_dir` (a data copy elsewhere)."""


@dataclass(frozen=True)
class LoadOptions:
    """Settings common to every dataset loader; frozen so a shared default cannot be mutated.

    ``download`` fetches a missing dataset into ``data_dir``; ``skip_bad`` skips (and lists in
    ``info.skipped_files``) files that fail validation instead of raising; ``cache_dir``/``use_cache``
    control the preprocessed-array cache (``None`` = the user cache folder); ``quiet`` hides the
    progress bars on stderr (the default, so library calls and logs stay clean).
    """

    download: bool = True
    skip_bad: bool = False
    cache_dir: str | Path | None = None
    use_cache: bool = True
    quiet: bool = True


DEFAULT_OPTIONS = LoadOptions()


def default_data_dir(dataset: str | None = None) -> Path:
    """The shared real-data folder (``$HYPER_TINYPW_DATA``, else ``../shared/data`` beside the checkout).

    ``dataset`` names a sub-folder (``"mitdb"``, ``"speech_commands"``, ...). This is the one place
    that knows where the shared copy lives; the CLI, tests and benchmarks all ask it.
    """
    env = os.environ.get(DATA_ENV)
    root = Path(env).expanduser() if env else Path(__file__).resolve().parents[3] / "shared" / "data"
    return root / dataset if dataset else root
