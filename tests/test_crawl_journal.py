"""The crawl's plan and journal in the store: a resumed crawl skips what is done, and an
interrupted visit's exchanges are removed before it is done again."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import exchange_factory as xf
import pytest

from analysis.crawl.journal import Journal, JournalError, plan_for
from analysis.store import Store


def _plan(**changes):
    args = {"sites": ["https://a.test/", "https://b.test/"], "profiles": 2, "visits": 2,
            "links": 0, "partitioned": True, **changes}
    return plan_for(**args)


def test_the_plan_is_adopted_once_and_another_plan_is_refused(tmp_path):
    db = tmp_path / "c.sqlite"
    with Journal(db) as journal:
        assert journal.adopt(_plan()) is True
        assert journal.counts() == {"pending": 8, "started": 0, "done": 0, "failed": 0}
        assert journal.adopt(_plan()) is False  # a resume
        with pytest.raises(JournalError, match="other visits, cache"):
            journal.adopt(_plan(visits=3, partitioned=False))
    with Journal(db) as journal:
        assert [(v.site, v.visit) for v in journal.pending("crawl-1")] == [
            ("https://a.test/", 1), ("https://a.test/", 2), ("https://b.test/", 1),
            ("https://b.test/", 2)]


def test_sites_are_stored_as_exchange_urls_are_query_values_never_in_clear(tmp_path):
    db = tmp_path / "c.sqlite"
    secret = "https://a.test/welcome?token=s3cr3t-value&lang=en"
    with Journal(db) as journal:
        journal.adopt(_plan(sites=[secret]))
        stored = journal.pending("crawl-1")[0].site
        assert journal.adopt(_plan(sites=[secret])) is False  # the same plan, recognised
        with pytest.raises(JournalError):
            journal.adopt(_plan(sites=["https://a.test/welcome?token=other&lang=en"]))
    assert stored.startswith("https://a.test/welcome?token=hmac:") and "&lang=hmac:" in stored
    assert b"s3cr3t" not in db.read_bytes() and b"s3cr3t" not in _wal(db)


def _wal(db):
    wal = db.with_name(db.name + "-wal")
    return wal.read_bytes() if wal.exists() else b""


def test_recover_removes_the_interrupted_visit_and_only_it(tmp_path):
    db = tmp_path / "c.sqlite"
    with Journal(db) as journal:
        journal.adopt(_plan())
        first, second = journal.pending("crawl-1")[:2]
        t0, t1 = 1_700_000_000.0, 1_700_000_060.0  # the visits' start times, a minute apart
        journal.start(first, "load")
        journal.finish(first, 1)
        journal.start(second, "reload")
        with journal.conn:
            for visit, at in ((first, t0), (second, t1)):
                journal.conn.execute("UPDATE crawl_visits SET started = ? WHERE profile = ? "
                                     "AND site_index = ? AND visit = ?",
                                     (at, visit.profile, visit.site_index, visit.visit))
    with Store(db) as store:
        store.insert([
            xf.exchange(url="https://a.test/", client="crawl-1", started=t0 + 1),
            xf.exchange(url="https://a.test/", client="crawl-1", started=t1 + 1),
            xf.exchange(url="https://a.test/", client="crawl-2", started=t1 + 2),
        ])
    with Journal(db) as journal:
        assert journal.interrupted() == 1
        assert journal.recover() == 1  # crawl-1's exchange of the cut visit, nothing else
        assert journal.interrupted() == 0
        assert journal.counts()["done"] == 1
        assert [v.visit for v in journal.pending("crawl-1")][:1] == [2]
        assert sorted(journal.exchange_visits()) == [
            ("crawl-1", "https://a.test/", "https://a.test/", 1)]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT client FROM exchanges ORDER BY client").fetchall() == [
            ("crawl-1",), ("crawl-2",)]


def test_a_lost_recorder_reopens_the_profiles_recent_visits_for_a_redo(tmp_path):
    with Journal(tmp_path / "c.sqlite") as journal:
        journal.adopt(_plan())
        visits = journal.pending("crawl-1")
        for visit in visits[:3]:
            journal.start(visit, "load")
            journal.finish(visit, 1)
        other = journal.pending("crawl-2")[0]
        journal.start(other, "load")
        journal.finish(other, 1)
        with journal.conn:  # the first two a minute ago, the third just now
            journal.conn.execute("UPDATE crawl_visits SET finished = finished - 60 WHERE "
                                 "profile = 'crawl-1' AND site_index = 0")
        assert journal.reopen_recent("crawl-1", 5.0) == 1
        assert journal.interrupted_of("crawl-1") == 1 and journal.interrupted_of("crawl-2") == 0
        with journal.conn:  # long ago: still the last one is reopened
            journal.conn.execute("UPDATE crawl_visits SET state = 'done', finished = 1 WHERE "
                                 "profile = 'crawl-1' AND state IN ('done', 'started')")
        assert journal.reopen_recent("crawl-1", 5.0) == 3  # all finished at the last moment
        assert journal.counts()["done"] == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["nope.txt"], "nope.txt: no such file"),
    (["https://a.test/", "--profiles", "0"], "--profiles: must be 1 or more"),
    (["https://a.test/", "--upstream-ca", "missing.pem"], "--upstream-ca missing.pem: no such"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, argv, message):
    run = subprocess.run([sys.executable, "-m", "analysis", "crawl", *argv, "--db",
                          str(tmp_path / "c.sqlite")], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    assert run.returncode == 2
    assert message in run.stderr.strip().splitlines()[-1], run.stderr  # argparse: usage first
    assert "Traceback" not in run.stderr
