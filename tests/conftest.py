"""Shared fixtures; plain helpers live in tests/support.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import REAL_HARS, unavailable


@pytest.fixture(scope="session")
def real_hars() -> Path:
    if not REAL_HARS.is_dir():
        unavailable(f"the real HAR corpus is not at {REAL_HARS}")
    return REAL_HARS
