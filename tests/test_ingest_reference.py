"""Ingest stores exactly what the code before the speed work (issue 16) stored.

The reference is that code itself: ``analysis/`` of REFERENCE taken from the repository's
history (``git archive``) and run as `etagwatch ingest` in a child process, into a store that
shares its key with ours, so keyed hashes compare. Every column but ``id`` must be equal, row for
row, on the sample captures, the whole real corpus and a corpus-shaped file of many hosts and
clients (bench/ingest.py's builder), through one process and through the writer process.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT, former_package

from analysis import ingest as ingest_module
from analysis.exchange import COLUMNS
from analysis.ingest import ingest_paths
from analysis.store import Store

#: The commit issue 16 measured: the last one before ingest was made faster.
REFERENCE = "6dfe03238587e6784fd4623bf0e2493f6b7b4391"
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM exchanges ORDER BY id"


@pytest.fixture(scope="module")
def reference_code(tmp_path_factory) -> Path:
    """A folder holding REFERENCE's ``analysis`` package, importable on its own."""
    return former_package(REFERENCE, tmp_path_factory.mktemp("reference"))


def _reference(code: Path, *args: str) -> subprocess.CompletedProcess:
    """``python *args`` with the reference code as ``analysis`` (checked, not the checkout's)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    where = subprocess.run([sys.executable, "-c", "import analysis; print(analysis.__file__)"],
                           cwd=code, env=env, capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(code)
    return subprocess.run([sys.executable, *args], cwd=code, env=env, capture_output=True,
                          text=True)


def _reference_store(code: Path, db: Path) -> None:
    """An empty store made by the reference code: at its schema version, which the current
    code migrates on open (a store made by newer code the reference would refuse)."""
    made = _reference(code, "-c", f"from analysis.store import Store; Store({str(db)!r}).close()")
    assert made.returncode == 0, made.stderr


def _reference_ingest(code: Path, db: Path, inputs: list[Path]) -> None:
    done = _reference(code, "-m", "analysis.cli", "ingest", *map(str, inputs), "--db", str(db),
                      "--no-progress", "--jobs", "1")
    assert done.returncode in (0, 1), done.stderr


def _rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(_SELECT).fetchall()


def _corpus_shaped(real_hars: Path, path: Path) -> Path:
    """A small corpus-shaped HAR (many hosts and clients, indented) from bench/ingest.py."""
    spec = importlib.util.spec_from_file_location("bench_ingest", ROOT / "bench" / "ingest.py")
    bench = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    assert real_hars == bench.CORPUS
    bench.build_corpus_har(path, 3)
    return path


@pytest.mark.parametrize("jobs", [1, 2])
def test_rows_equal_the_reference_codes(reference_code, real_hars, tmp_path, monkeypatch, jobs):
    inputs = [ROOT / "sample_captures", real_hars,
              _corpus_shaped(real_hars, tmp_path / "shaped.har")]
    ours, theirs = tmp_path / "ours.sqlite", tmp_path / "theirs.sqlite"
    _reference_store(reference_code, theirs)
    shutil.copy(theirs, ours)  # one key: keyed hashes compare
    _reference_ingest(reference_code, theirs, inputs)
    if jobs == 2:  # the writer process, converting runs of entries too, even for small files
        monkeypatch.setattr(ingest_module, "PARALLEL_MIN_BYTES", 0)
    with Store(ours) as store:
        report = ingest_paths(inputs, store, jobs=jobs)
    assert report.stored > 5000
    expected, got = _rows(theirs), _rows(ours)
    assert len(got) == len(expected) == report.stored
    hosts = {row[COLUMNS.index("host")] for row in got}
    assert len(hosts) > 500  # the shaped file's hosts besides the corpus's
    for i, (a, b) in enumerate(zip(expected, got, strict=True)):
        if a != b:
            diff = {c: (x, y) for c, x, y in zip(COLUMNS, a, b, strict=True) if x != y}
            pytest.fail(f"row {i} differs from the reference: {diff}")
    for table in ("sources", "skipped"):
        cols = "path, kind, sha256, size, client, entries, stored, skipped, error" \
            if table == "sources" else "file, entry_index, reason"
        with sqlite3.connect(theirs) as a, sqlite3.connect(ours) as b:
            q = f"SELECT {cols} FROM {table} ORDER BY id"
            assert a.execute(q).fetchall() == b.execute(q).fetchall()
