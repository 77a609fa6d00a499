"""`etagwatch analyze` gives what it gave before issue 16's speed work, byte for byte: the
terminal report, the JSON (summary, hosts, resources, findings) and the three CSV files, on the
sample captures, the real corpus (also with --ignore-param) and a synthetic store; in one
process and with the hosts split between two (``--jobs 2``).

The former side is the real former code: the ``analysis`` package of commit FORMER (main before
the change), extracted from the repository's history with ``git archive`` into a temporary
folder and run as a child process with the same Python, on a copy of the same store.

Since then the store gained schema 3 (``probe_outcomes``, `etagwatch probe --candidates`) and the
outputs gained what a probe settles (``settled`` and ``verdict_before`` on every resource, the
summary's ``settled`` counts). The former code refuses a newer store, so its copy is put back to
schema 2 (the table dropped: these stores hold no outcomes, so nothing is lost), and those
additions are taken out of the new side before the comparison: the JSON is compared as parsed
values with key order kept, the CSVs without the two columns, the text byte for byte.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from support import former_package, ingest_into

ROOT = Path(__file__).resolve().parent.parent
#: main before `analyze` was made faster (issue 16): load, detectors' frame work, JSON, CSV.
FORMER = "6dfe032"


@pytest.fixture(scope="module")
def former(tmp_path_factory) -> Path:
    """The former ``analysis`` package, from git history."""
    return former_package(FORMER, tmp_path_factory.mktemp("former"))


def _run(code: Path, args: list[str]) -> str:
    """`python -m analysis analyze ARGS` with ``code`` first on the path: its stdout."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run([sys.executable, "-m", "analysis", "analyze", *args], env=env,
                          capture_output=True, text=True, timeout=600, cwd=code)
    assert done.returncode in (0, 1), done.stderr
    return done.stdout


#: What the probe's settling step added to every output (docs/verdicts.md, "Settled by probe").
PROBE_COLUMNS = ("settled", "verdict_before")


def _schema_2(store: Path, copy: Path) -> Path:
    """A copy of ``store`` the former code reads: schema 2, without the (empty) probe table."""
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{store}{suffix}").exists():
            shutil.copy(f"{store}{suffix}", f"{copy}{suffix}")
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT count(*) FROM probe_outcomes").fetchone()[0] == 0
        conn.execute("DROP TABLE probe_outcomes")
        conn.execute("UPDATE meta SET value='2' WHERE name='schema_version'")
    return copy


def _pairs(data: bytes) -> list:
    """The JSON as nested (key, value) lists: key order counts, as it does in the bytes."""
    return json.loads(data, object_pairs_hook=lambda kv: [(k, v) for k, v in kv])


def _without_probe(report: list) -> list:
    out = []
    for key, value in report:
        if key == "summary":
            value = [(k, v) for k, v in value if k != "settled"]
        elif key == "resources":
            value = [[(k, v) for k, v in row if k not in PROBE_COLUMNS] for row in value]
        out.append((key, value))
    return out


def _csv_without_probe(data: bytes) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(data.decode())))
    if not rows:
        return rows
    keep = [i for i, name in enumerate(rows[0]) if name not in PROBE_COLUMNS]
    return [[row[i] for i in keep] for row in rows]


def _same(store: Path, former: Path, tmp: Path, *extra: str) -> dict:
    """The former code's outputs equal ours, in one process and in two (``--jobs 2``: the
    store's hosts split between two worker processes, analysis.engine.processes)."""
    outputs = {}
    tmp.mkdir(parents=True, exist_ok=True)
    old_store = _schema_2(store, tmp / "former.sqlite")
    for side, code, db, jobs in (("former", former, old_store, []),
                                 ("now", ROOT, store, ["--jobs", "1"]),
                                 ("now-2", ROOT, store, ["--jobs", "2"])):
        out = tmp / side
        out.mkdir(parents=True)
        text = _run(code, [str(db), "--json", str(out / "report.json"), "--csv",
                           str(out / "csv"), "--limit", "40", *jobs, *extra])
        outputs[side] = {"text": text, "json": (out / "report.json").read_bytes(),
                         **{name: (out / "csv" / f"{name}.csv").read_bytes()
                            for name in ("resources", "findings", "hosts")}}
    assert outputs["now-2"] == outputs["now"]
    now, old = outputs["now"], outputs["former"]
    assert now["text"] == old["text"]
    assert _without_probe(_pairs(now["json"])) == _pairs(old["json"])
    assert _csv_without_probe(now["resources"]) == _csv_without_probe(old["resources"])
    for key in ("findings", "hosts"):
        assert now[key] == old[key], key
    return now


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
