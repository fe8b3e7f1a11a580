"""Exceptions raised by the dataset loaders.

Each names the file or dataset at fault so a user sees one actionable line instead of a
traceback from deep inside wfdb, TFDS or the WAV decoder.
"""

from __future__ import annotations

from pathlib import Path


class DataError(Exception):
    """Base class for every data-loading error of this package."""


class BadFileError(DataError, ValueError):
    """A source file is missing, truncated or in an unexpected format.

    ``path`` is kept as an attribute so ``skip_bad=True`` can report which file was skipped.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class EmptyDataDirError(BadFileError):
    """The data directory holds no usable files (and downloading was not requested)."""


class MissingRecordsError(DataError, FileNotFoundError):
    """A protocol needs records that the data directory does not hold."""

    def __init__(
        self, dataset: str, data_dir: str | Path, missing: list[str], hint: str = ""
    ) -> None:
        self.missing = list(missing)
        msg = (
            f"{dataset}: {len(self.missing)} record(s) needed by this protocol are missing from "
            f"{data_dir}: {' '.join(self.missing)}"
        )
        super().__init__(msg + (f". {hint}" if hint else ""))


class DatasetUnavailableError(DataError, RuntimeError):
    """Downloading a dataset failed (typically: no network).

    The message names the dataset, the address tried and how to use a local copy instead.
    """

    def __init__(self, dataset: str, address: str, cause: BaseException | str, task: str) -> None:
        self.dataset = dataset
        self.address = address
        cause_text = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
        super().__init__(
            f"Could not download {dataset} from {address} ({cause_text.splitlines()[0][:300]}). "
            f"If you have a local copy, pass its directory: "
            f"load({task!r}, data_dir='/path/to/{dataset}')."
        )
