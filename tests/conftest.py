"""Shared test fixtures: paths to the real HAR corpus and a gate for system programs."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_HARS = ROOT.parent / "shared" / "real_hars"
SAMPLE_CAPTURES = ROOT / "sample_captures"
IN_CI = bool(os.environ.get("CI"))


def need_program(*names: str) -> dict[str, str]:
    """Paths of system programs a test needs. Missing ones skip the test with the reason,
    except under CI (CI set), where .ci/run installs them and a missing one is a failure."""
    found: dict[str, str] = {}
    missing = []
    for name in names:
        path = shutil.which(name) or next(
            (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
        )
        if path:
            found[name] = path
        else:
            missing.append(name)
    if missing:
        msg = f"needs {', '.join(missing)} (Debian packages; .ci/run installs them)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def real_hars() -> Path:
    if not REAL_HARS.is_dir():
        msg = f"the real HAR corpus is not at {REAL_HARS}"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return REAL_HARS
