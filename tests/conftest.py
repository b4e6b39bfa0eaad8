"""Shared fixtures: the folder of real benchmark files (ALFWorld games, InterCode Bash data) that some tests
read; they are never copied into the tree, and the tests that need them skip when the folder is absent.

``$LEAP_GYM_SHARED_DATA`` names the folder (with ``alfworld/`` and ``intercode/`` inside); without it the
tests look in ``shared/data`` beside the repository checkout, a development layout that a user's checkout need
not have.
"""

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
