"""Shared fixtures: quiet TensorFlow, deterministic seeds, and the real data folder beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import pytest  # noqa: E402

from hyper_tinypw_tf.data.options import default_data_dir

SHARED_DATA = default_data_dir()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder (``data.default_data_dir``), read in place; tests needing it fail loudly if absent."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real data folder not found at {SHARED_DATA}; put it beside the checkout or set HYPER_TINYPW_DATA")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _seed() -> None:
    from hyper_tinypw_tf._keras import keras

    keras.utils.set_random_seed(1234)
