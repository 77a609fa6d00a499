"""`etagwatch report` on large stores: analysed in worker processes as `analyze --jobs N` does,
with only the exchanges of the identifier and churn resources loaded (by host) for the detail
sections, the report is the one a single process makes from the whole store."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support import ingest_into

from analysis.detectors.prepare import strip_query_params
from analysis.engine import processes
from analysis.reporting import data as report_data
from analysis.reporting.data import DETAIL_VERDICTS, detail_exchanges, load_report_data
from analysis.store import load_exchanges

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def hostless(tmp_path_factory) -> Path:
    """The sample captures (identifiers, churn) with a third of the exchanges stored without a
    host: those belong to their URL's host, and a host's detail rows must include them."""
    db = tmp_path_factory.mktemp("hostless") / "s.sqlite"
    ingest_into(db, [ROOT / "sample_captures"])
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE exchanges SET host = NULL WHERE id % 3 = 0")
    return db


def _detail_rows(whole: pd.DataFrame, keys: set[str]) -> pd.DataFrame:
    return whole[strip_query_params(whole["url"].astype(object), ()).isin(keys)]


def _normalised(html: str) -> str:
    """The HTML without what differs from run to run: the time it was made, cell ids."""
    html = re.sub(r"Made \d{4}-\d\d-\d\d \d\d:\d\d UTC", "Made (time)", html)
    return re.sub(r'id="cell-id=[0-9a-f]{8}"', 'id="cell-id"', html)


@pytest.mark.timeout(300)
def test_the_report_in_processes_is_the_report_of_one_process(hostless, tmp_path):
    pages = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"r{jobs}.html"
        done = subprocess.run([sys.executable, "-m", "analysis", "report", str(hostless),
                               "-o", str(out), "-q", "--jobs", jobs],
                              capture_output=True, text=True, timeout=240, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        pages[jobs] = _normalised(out.read_text())
    assert "Identifiers" in pages["1"] and "Churn" in pages["1"]
    assert "Traceback" not in pages["2"]
    assert pages["2"] == pages["1"]


def test_only_the_detail_resources_hosts_are_loaded(hostless):
    whole = load_report_data([hostless], jobs=1)
    split = load_report_data([hostless], jobs=2)
    assert split.overview and whole.overview is None  # the counts came from the workers
    detail = whole.resources[whole.resources["verdict"].isin(DETAIL_VERDICTS)]
    keys = set(detail["url"])
    assert keys
    wanted = _detail_rows(whole.exchanges, keys)
    # every exchange of those resources, host or not, and no other
    assert wanted["host"].isna().any(), "no hostless detail exchange: the fixture tests nothing"
    got = _detail_rows(split.exchanges, keys)
    assert len(got) == len(split.exchanges) == len(wanted) < len(whole.exchanges)
    assert sorted(got["id"]) == sorted(wanted["id"])
    assert split.detail is None and split.inputs == (str(hostless),)


def test_a_stores_detail_is_read_in_batches_of_whole_hosts(hostless, monkeypatch):
    whole = load_exchanges(hostless)
    hosts = sorted(set(whole["host"].dropna()))
    keys = list(dict.fromkeys(strip_query_params(whole["url"].astype(object), ()).dropna()))
    monkeypatch.setattr(processes, "GROUP_ROWS", 20)  # a batch per host or two
    readers = list(report_data._store_chunks(str(hostless), hosts))
    frames = [read() for read in readers]
    assert len(readers) > 2
    seen = [set(f["host"].dropna()) for f in frames]
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1:])  # whole hosts
    assert sum(map(len, frames)) == len(whole[whole["url"].notna()])
    frame, rows, complete = detail_exchanges([str(hostless)], keys, (), limit=1, hosts=hosts)
    assert not complete and rows == len(frame) < len(whole)


def test_a_missing_store_gives_no_detail_rows(tmp_path):
    frame, rows, complete = detail_exchanges([str(tmp_path / "gone.sqlite")], ["https://a/"], (),
                                             hosts=["a"])
    assert frame.empty and rows == 0 and complete
