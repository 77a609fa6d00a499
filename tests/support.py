"""Helpers shared by tests in every folder (import as ``from support import ...``).

They live here, not in a conftest.py, because tests/ and tests/e2e/ each have a conftest.py and
both would be imported as the top-level module ``conftest``: which one a test got depended on
collection order.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_HARS = ROOT.parent / "shared" / "real_hars"
SAMPLE_CAPTURES = ROOT / "sample_captures"
IN_CI = bool(os.environ.get("CI"))

#: Browsing plan shared by the browser tests: enough clients and visits for every verdict
#: (identifiers need >= 2 clients, churn needs revalidations), small enough for CI.
PROFILES = 3
VISITS = 3

#: Files of the default nginx docroot of the end-to-end tests: name -> bytes.
NGINX_FILES: dict[str, bytes] = {
    "index.html": b"<!doctype html><title>lab</title><p>etagwatch lab origin</p>\n",
    "app.css": b"body { font-family: sans-serif; }\n",
    "data.json": b'{"items": [1, 2, 3]}\n',
}

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
        unavailable(f"needs {', '.join(missing)} (Debian packages; .ci/run installs them)")
    return found


def unavailable(reason: str) -> NoReturn:
    """Something a test needs is missing here: skip with the reason, but fail under CI, where
    .ci/run provides everything and a skip would hide a broken setup."""
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def sniffed_under_another_name(path: Path, folder: Path) -> str:
    """What ``analysis.readers.sniff`` makes of a copy of ``path`` with a meaningless name:
    formats are recognised by content, not by name."""
    from analysis.readers import sniff

    renamed = folder / f"renamed-{path.name}.bin"
    renamed.write_bytes(path.read_bytes())
    return sniff(renamed)


def ingest_into(db: Path, paths: list[Path]):  # type: ignore[no-untyped-def]
    """``ingest_paths`` into the store ``db``; the report."""
    from analysis.ingest import ingest_paths
    from analysis.store import Store

    with Store(db) as store:
        return ingest_paths(paths, store)


def lab_verdicts(df, lab, scheme: str = "http") -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """key -> the analysed resource row of each lab site (its ``scheme`` URL) in ``df``."""
    from analysis.detectors import run_all

    resources = run_all(df).resources
    found = {}
    for key, site in lab.sites.items():
        url = site.url_for(scheme)
        rows = resources[resources["url"] == url]
        assert len(rows) == 1, f"{url} not among the analysed resources"
        found[key] = rows.iloc[0].to_dict()
    return found


def check_lab_verdicts(found: dict[str, dict], lab) -> None:  # type: ignore[no-untyped-def]
    """Every lab site got its expected verdict, churn names both backends and its cause, the
    digest origin is explained as content-derived."""
    import json

    wrong = {
        key: (found[key]["verdict"], site.expected)
        for key, site in lab.sites.items()
        if found[key]["verdict"] != site.expected
    }
    assert not wrong, f"verdict (found, expected): {wrong}"
    for key in ("inode", "mtime"):
        evidence = found[key]["evidence"]
        evidence = json.loads(evidence) if isinstance(evidence, str) else evidence
        text = json.dumps(evidence)
        for backend in lab.sites[key].backends:
            assert backend in text, f"{key}: backend {backend} missing from the evidence"
        assert lab.sites[key].cause in str(evidence.get("cause", "")), evidence
        assert found[key]["wasted_revalidations"] > 0
    assert "content" in found["digest"]["explanation"]


def former_package(commit: str, folder: Path) -> Path:
    """``folder`` holding commit's ``analysis`` package, taken from git history, for the
    differential tests that run former code beside the current one. Without that history
    (no git, a shallow clone) the test cannot compare: a failure under CI, a skip elsewhere."""
    import subprocess
    import tarfile
    from io import BytesIO

    git = shutil.which("git")
    found = git is not None and (ROOT / ".git").exists() and subprocess.run(
        [git, "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"],
        capture_output=True).returncode == 0
    if not found:
        reason = f"commit {commit[:10]} is not in this checkout's history (no git, or shallow)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    archive = subprocess.run([git, "-C", str(ROOT), "archive", commit, "analysis"],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder
