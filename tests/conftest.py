"""Shared fixtures: the path to ../shared/data (real benchmark files, never copied into the tree)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import leap_gym  # noqa: F401  (registers the envs)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LEAP_GYM_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real benchmark data not found at {SHARED_DATA} (set LEAP_GYM_SHARED_DATA)")
    return SHARED_DATA
