"""kill -9 during `etagwatch ingest`, then the same command again: the store converges to one
row per entry, row for row what a clean ingest stores (on 7f718ff a 100k-entry HAR ended with
147,772 rows for 99,084 entries: the rows committed before the kill were stored again).

The victim is a real `etagwatch ingest` process, killed with SIGKILL once the store holds a
given number of its rows (none yet, mid-file, near the end), with the writer child of the
default two jobs and with one job. The clean ingest goes into a copy of the same empty store, so
both have the same key and hence the same keyed hashes.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from har_builder import Har

from analysis.exchange import COLUMNS
from analysis.store import Store

ENTRIES = 60_000
DATA_URLS = range(7, ENTRIES, 5_000)  # skipped entries: the skipped table must not repeat


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    """About 40 MB, over the size at which ingest starts its writer process."""
    har = Har()
    page = har.page("https://news.test/", at=1_700_000_000)
    for i in range(ENTRIES):
        url = f"https://cdn{i % 50}.test/asset/{i % 3000}.js?v={i % 7}"
        entry = har.get(url, at=1_700_000_000 + i * 0.01, etag=f'"e{i % 3000}-{i % 11}"',
                        last_modified=1_600_000_000 + i % 3000, page=page, body="x" * 300,
                        mime="application/javascript")
        if i in DATA_URLS:
            entry["request"]["url"] = "data:image/gif;base64,R0lGODlh"
    return har.write(tmp_path_factory.mktemp("crash") / "big.har")


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("empty") / "empty.sqlite"
    Store(path).close()
    return path


@pytest.fixture(scope="module")
def clean(capture, empty_store, tmp_path_factory) -> dict:
    db = tmp_path_factory.mktemp("clean") / "clean.sqlite"
    shutil.copy(empty_store, db)
    assert _ingest(capture, db).returncode in (0, 1)
    return _contents(db)


def _command(capture: Path, db: Path, jobs: int) -> list[str]:
    return [sys.executable, "-m", "analysis", "ingest", str(capture), "--db", str(db),
            "--no-progress", "--jobs", str(jobs)]


def _ingest(capture: Path, db: Path, jobs: int = 2) -> subprocess.CompletedProcess:
    return subprocess.run(_command(capture, db, jobs), capture_output=True, text=True, timeout=300)


def _contents(db: Path) -> dict:
    """Every exchange column but the id, in id order; sources and skips without times."""
    with sqlite3.connect(db) as con:
        rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM exchanges ORDER BY id").fetchall()
        sources = con.execute("SELECT path, kind, sha256, size, client, entries, stored, skipped,"
                              " error, complete FROM sources ORDER BY id").fetchall()
        skipped = con.execute("SELECT file, entry_index, reason FROM skipped ORDER BY id").fetchall()
    return {"rows": rows, "sources": sources, "skipped": skipped}


def _rows(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=0.05) as con:
            return con.execute("SELECT coalesce(max(id), 0) FROM exchanges").fetchone()[0]
    except sqlite3.Error:
        return 0


def _writer_children(db: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"analysis.writer_process" in cmd and str(db).encode() in cmd:
            found.append(proc.name)
    return found


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("jobs", "kill_at"), [
    (2, 0), (2, ENTRIES // 2), (2, ENTRIES - 4_000), (1, ENTRIES // 3),
])
def test_rerun_after_kill_9_stores_each_entry_once(capture, empty_store, clean, tmp_path,
                                                   jobs, kill_at):
    db = tmp_path / "victim.sqlite"
    shutil.copy(empty_store, db)
    victim = subprocess.Popen(_command(capture, db, jobs), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while victim.poll() is None and time.monotonic() < deadline:
        rows = _rows(db)
        if rows >= kill_at and (kill_at or rows == 0):
            break
        time.sleep(0.005)
    assert victim.poll() is None, "the ingest finished before it could be killed: enlarge it"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    killed_with = _rows(db)
    for _ in range(100):  # the writer child dies with its parent (PR_SET_PDEATHSIG)
        if not _writer_children(db):
            break
        time.sleep(0.05)
    assert not _writer_children(db)
    assert killed_with < ENTRIES

    again = _ingest(capture, db, jobs)
    assert again.returncode in (0, 1), again.stderr
    after = _contents(db)
    assert len(after["rows"]) == len(clean["rows"]) == ENTRIES - len(DATA_URLS)
    assert after == clean
    if killed_with:
        assert "interrupted earlier ingest" in again.stdout + again.stderr

    third = _ingest(capture, db, jobs)  # and once complete, the file is a duplicate
    assert "already ingested" in third.stdout + third.stderr
    assert _contents(db) == clean


@pytest.mark.timeout(600)
def test_the_same_file_ingested_twice_at_once_is_stored_once(capture, empty_store, clean, tmp_path):
    db = tmp_path / "shared.sqlite"
    shutil.copy(empty_store, db)
    first = subprocess.Popen(_command(capture, db, 2), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    while first.poll() is None and _rows(db) == 0:
        time.sleep(0.005)
    second = _ingest(capture, db)
    _out, err = first.communicate(timeout=300)
    assert first.returncode in (0, 1), err
    said = second.stdout + second.stderr
    # which one the second run meets depends on when it gets the write lock
    assert "being stored by another etagwatch process now" in said or "already ingested" in said
    assert _contents(db) == clean


def test_a_file_registered_by_a_live_process_is_left_alone(tmp_path):
    from analysis import liveness
    from analysis.store import SourceBusy, SourceRow

    other = subprocess.Popen(["sleep", "30"])
    try:
        with Store(tmp_path / "s.sqlite") as store:
            row = SourceRow("a.har", "har", None, 10, "a", 0, 0, 0)
            attempt = store.begin_source(row, "/x/a.har")
            store.connection.execute("UPDATE sources SET owner = ? WHERE id = ?",
                                     (liveness.token(other.pid), attempt.id))
            store.connection.commit()
            with pytest.raises(SourceBusy, match="being stored by another etagwatch process"):
                store.begin_source(row, "/x/a.har")
            other.kill()
            other.wait()
            again = store.begin_source(row, "/x/a.har")  # its owner is gone: replaced
            assert store.connection.execute("SELECT count(*) FROM sources").fetchone()[0] == 1
            owner = store.connection.execute("SELECT owner FROM sources WHERE id = ?",
                                             (again.id,)).fetchone()[0]
            assert owner == liveness.token()
    finally:
        other.kill()


@pytest.mark.timeout(600)
def test_two_ingests_of_different_files_into_one_store_at_once(capture, empty_store, tmp_path):
    other = Har()
    for i in range(20_000):
        other.get(f"https://other.test/{i % 500}.png", at=1_700_000_000 + i, etag=f'"o{i % 500}"',
                  body="y" * 200)
    second_file = other.write(tmp_path / "other.har")
    db = tmp_path / "both.sqlite"
    shutil.copy(empty_store, db)
    runs = [subprocess.Popen(_command(f, db, 2), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for f in (capture, second_file)]
    for run in runs:
        _out, err = run.communicate(timeout=300)
        assert run.returncode in (0, 1), err
    with sqlite3.connect(db) as con:
        per_source = dict(con.execute("SELECT source, count(*) FROM exchanges GROUP BY source"))
        distinct = con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT source, entry_index FROM exchanges)").fetchone()[0]
        sources = con.execute("SELECT path, stored, complete FROM sources ORDER BY path").fetchall()
    assert per_source == {str(capture): ENTRIES - len(DATA_URLS), str(second_file): 20_000}
    assert distinct == sum(per_source.values())  # no entry twice
    assert sorted(sources) == sorted([(str(capture), ENTRIES - len(DATA_URLS), 1),
                                      (str(second_file), 20_000, 1)])


def test_a_file_completed_by_a_concurrent_ingest_since_the_check_is_compared_again(tmp_path):
    """The race behind the concurrent test: ingest B checks for a file of this size (none yet),
    ingest A completes the same file, then B registers. B must see it and compare digests
    instead of storing the file a second time."""
    from analysis.store import SizeSeen, SourceRow

    with Store(tmp_path / "s.sqlite") as store:
        row = SourceRow("a.har", "har", None, 10, "a", 0, 0, 0)
        first = store.begin_source(row, "/x/a.har")
        store.finish_source(first, SourceRow("a.har", "har", "ab" * 32, 10, "a", 3, 3, 0), [])
        with pytest.raises(SizeSeen):
            store.begin_source(row, "/x/a.har", size_unseen=True)
        with pytest.raises(SizeSeen):
            store.begin_source(row, "/x/a.har", digest="ab" * 32)
        store.begin_source(row, "/x/a.har", digest="cd" * 32)  # other bytes: stored
