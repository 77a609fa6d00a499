"""Shared fixtures; plain helpers live in tests/support.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import REAL_HARS


@pytest.fixture(scope="session")
def real_hars() -> Path:
    """The shared corpus beside the checkout. It is not the project's to install, so a clone
    without it skips these tests with the reason, under CI too."""
    if not REAL_HARS.is_dir():
        pytest.skip(f"the real HAR corpus is not at {REAL_HARS} (../shared/real_hars)")
    return REAL_HARS
