"""`etagwatch analyze` gives what it gave before issue 16's speed work, byte for byte: the
terminal report, the JSON (summary, hosts, resources, findings) and the three CSV files, on the
sample captures, the real corpus (also with --ignore-param) and a synthetic store.

The former side is the real former code: the ``analysis`` package of commit FORMER (main before
the change), extracted from the repository's history with ``git archive`` into a temporary
folder and run as a child process with the same Python, on the same store.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import ingest_into

ROOT = Path(__file__).resolve().parent.parent
#: main before `analyze` was made faster (issue 16): load, detectors' frame work, JSON, CSV.
FORMER = "6dfe032"


@pytest.fixture(scope="module")
def former(tmp_path_factory) -> Path:
    """The former ``analysis`` package, from git history."""
    folder = tmp_path_factory.mktemp("former")
    try:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", FORMER, "analysis"],
                                 check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        reason = f"commit {FORMER} is not in this checkout's history ({exc})"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def _run(code: Path, args: list[str]) -> str:
    """`python -m analysis analyze ARGS` with ``code`` first on the path: its stdout."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run([sys.executable, "-m", "analysis", "analyze", *args], env=env,
                          capture_output=True, text=True, timeout=600, cwd=code)
    assert done.returncode in (0, 1), done.stderr
    return done.stdout


def _same(store: Path, former: Path, tmp: Path, *extra: str) -> dict:
    outputs = {}
    for side, code in (("former", former), ("now", ROOT)):
        out = tmp / side
        out.mkdir(parents=True)
        text = _run(code, [str(store), "--json", str(out / "report.json"), "--csv",
                           str(out / "csv"), "--limit", "40", *extra])
        outputs[side] = {"text": text, "json": (out / "report.json").read_bytes(),
                         **{name: (out / "csv" / f"{name}.csv").read_bytes()
                            for name in ("resources", "findings", "hosts")}}
    assert outputs["now"]["text"] == outputs["former"]["text"]
    for key in ("json", "resources", "findings", "hosts"):
        assert outputs["now"][key] == outputs["former"][key], key
    return outputs["now"]


def test_sample_captures(former, tmp_path):
    ingest_into(tmp_path / "s.sqlite", [ROOT / "sample_captures"])
    now = _same(tmp_path / "s.sqlite", former, tmp_path)
    assert b'"identifier"' in now["json"] and b'"churn"' in now["json"]


def test_real_corpus(former, real_hars, tmp_path):
    ingest_into(tmp_path / "s.sqlite", [real_hars])
    _same(tmp_path / "s.sqlite", former, tmp_path)
    _same(tmp_path / "s.sqlite", former, tmp_path / "ignore", "--ignore-param", "v",
          "--ignore-param", "_")


@pytest.mark.timeout(600)
def test_synthetic_store(former, tmp_path):
    """SYNTHETIC exchanges with what a real ingest stores (header lists, dates, URL parts)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from synthetic import as_stored, synthetic, write_store

    store = write_store(as_stored(synthetic(SYNTHETIC)), tmp_path / "s.sqlite")
    now = _same(store, former, tmp_path)
    assert now["json"].count(b'"verdict": "identifier"') > 10


#: Exchanges in the synthetic store (issue 16 names 100k; see the module's note in
#: BENCHMARKS.md for the time this takes).
SYNTHETIC = 100_000
