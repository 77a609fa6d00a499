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


@pytest.fixture(autouse=True)
def _addon_tests_run_in_a_temporary_folder(request, tmp_path, monkeypatch):
    """mitmproxy's test context configures an addon with its defaults first, and the
    recorder's default store is ``etagwatch.sqlite`` in the current folder: run addon tests
    elsewhere, so `make test` leaves nothing in the checkout."""
    if request.node.path.name.startswith("test_addon_"):
        monkeypatch.chdir(tmp_path)


_ROOT = Path(__file__).resolve().parent.parent
_BEFORE: set[str] = set()


def pytest_sessionstart(session: pytest.Session) -> None:
    _BEFORE.update(p.name for p in _ROOT.iterdir())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that leaves files in the checkout (a store made by a default path) fails."""
    left = sorted(p.name for p in _ROOT.iterdir()
                  if p.name not in _BEFORE and not p.name.startswith("."))
    if left and exitstatus == 0:
        print(f"\ntests left files in the checkout: {', '.join(left)}")
        session.exitstatus = 1
