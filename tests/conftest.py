"""Shared fixtures; plain helpers live in tests/support.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import IN_CI, REAL_HARS


@pytest.fixture(scope="session")
def real_hars() -> Path:
    if not REAL_HARS.is_dir():
        msg = f"the real HAR corpus is not at {REAL_HARS}"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return REAL_HARS
