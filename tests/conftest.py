"""Shared fixtures: quiet TensorFlow, deterministic seeds, and the real data folder beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, read in place; tests that need it fail loudly if it is missing."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real data folder not found at {SHARED_DATA}; it must sit beside the checkout")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _seed() -> None:
    from hyper_tinypw_tf._keras import keras

    keras.utils.set_random_seed(1234)
