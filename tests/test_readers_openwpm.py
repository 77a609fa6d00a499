"""OpenWPM crawl databases as captures: a database made with OpenWPM's table layout (the
columns its crawler creates) by several browser profiles visiting the same site twice, read by
`etagwatch ingest` and `analyze` by content. Each browser_id is a client, so the tracker that
hands each profile its own ETag is an identifier and the load balancer's two values for one
body are churn; a broken row costs that row."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from analysis.cli import main
from analysis.ingest import ingest_paths
from analysis.readers import sniff
from analysis.store import Store, load_exchanges

#: OpenWPM's request and response tables, with the columns its schema declares.
DDL = """
CREATE TABLE site_visits (visit_id INTEGER PRIMARY KEY, browser_id INTEGER NOT NULL,
  site_url VARCHAR(500) NOT NULL, site_rank INTEGER);
CREATE TABLE http_requests (id INTEGER PRIMARY KEY AUTOINCREMENT, incognito INTEGER,
  browser_id INTEGER NOT NULL, visit_id INTEGER NOT NULL, extension_session_uuid TEXT,
  event_ordinal INTEGER, window_id INTEGER, tab_id INTEGER, frame_id INTEGER, url TEXT NOT NULL,
  top_level_url TEXT, parent_frame_id INTEGER, frame_ancestors TEXT, method TEXT NOT NULL,
  referrer TEXT NOT NULL, headers TEXT NOT NULL, request_id INTEGER NOT NULL, is_XHR INTEGER,
  is_third_party_channel INTEGER, is_third_party_to_top_window INTEGER,
  triggering_origin TEXT, loading_origin TEXT, loading_href TEXT, req_call_stack TEXT,
  resource_type TEXT NOT NULL, post_body TEXT, post_body_raw TEXT, time_stamp DATETIME NOT NULL);
CREATE TABLE http_responses (id INTEGER PRIMARY KEY AUTOINCREMENT, incognito INTEGER,
  browser_id INTEGER NOT NULL, visit_id INTEGER NOT NULL, extension_session_uuid TEXT,
  event_ordinal INTEGER, window_id INTEGER, tab_id INTEGER, frame_id INTEGER, url TEXT NOT NULL,
  method TEXT NOT NULL, response_status INTEGER, response_status_text TEXT NOT NULL,
  is_cached INTEGER NOT NULL, headers TEXT NOT NULL, request_id INTEGER NOT NULL,
  location TEXT NOT NULL, time_stamp DATETIME NOT NULL, content_hash TEXT);
"""
TOP = "https://news.test/"
PIXEL = "https://pixel.tracker.test/p.gif"
APP = "https://cdn.lb.test/app.js"
CSS = "https://static.test/s.css"


class Crawl:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)
        self.conn.executescript(DDL)
        self.request_id = 0

    def visit(self, browser: int, visit: int) -> None:
        self.conn.execute("INSERT INTO site_visits VALUES (?,?,?,?)", (visit, browser, TOP, 1))

    def fetch(self, browser: int, visit: int, url: str, second: float, status: int | None,
              req: list, resp: list | str = (), content_hash: str | None = None,
              cached: int = 0) -> None:
        self.request_id += 1
        stamp = f"2024-05-01T10:00:{second:06.3f}Z"
        self.conn.execute(
            "INSERT INTO http_requests (browser_id, visit_id, url, top_level_url, method, "
            "referrer, headers, request_id, resource_type, time_stamp) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (browser, visit, url, TOP, "GET", TOP, json.dumps(req), self.request_id, "image", stamp))
        if status is None:
            return
        self.conn.execute(
            "INSERT INTO http_responses (browser_id, visit_id, url, method, response_status, "
            "response_status_text, is_cached, headers, request_id, location, time_stamp, "
            "content_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (browser, visit, url, "GET", status, "OK", cached,
             resp if isinstance(resp, str) else json.dumps(resp), self.request_id, "", stamp,
             content_hash))

    def close(self) -> None:
        self.conn.commit()
        self.conn.close()


@pytest.fixture
def crawl(tmp_path) -> Path:
    path = tmp_path / "crawl-data.sqlite"
    c = Crawl(path)
    for browser in (1, 2, 3):
        tag = f'"tr{browser}-8f14e45fceea167a5a36dedd4bea2543{browser}"'
        for visit in (1, 2):
            vid = browser * 10 + visit
            c.visit(browser, vid)
            t = browser * 10 + visit * 3
            first = visit == 1
            c.fetch(browser, vid, PIXEL, t, 200 if first else 304,
                    [["User-Agent", "Firefox"]] + ([] if first else [["If-None-Match", tag]]),
                    [["ETag", tag], ["Cache-Control", "no-cache"]],
                    "11" * 32 if first else None)
            mine, other = ('"5f3a-1"', '"5f3a-2"') if first else ('"5f3a-2"', '"5f3a-1"')
            c.fetch(browser, vid, APP, t + 0.5, 200,
                    [] if first else [["If-None-Match", other]],
                    [["ETag", mine], ["X-Backend", "web1" if first else "web2"],
                     ["Content-Length", "900"]], "22" * 32)
            c.fetch(browser, vid, CSS, t + 1, 200 if first else 304,
                    [] if first else [["If-None-Match", '"css-1"']], [["ETag", '"css-1"']],
                    "33" * 32 if first else None)
    c.fetch(1, 11, "https://a.test/broken", 40, 200, [], "this is not JSON")
    c.fetch(2, 21, "https://a.test/blocked", 41, None, [["User-Agent", "Firefox"]])
    c.close()
    return path


def test_a_crawl_database_is_recognised_by_content(crawl, tmp_path):
    assert sniff(crawl) == "openwpm"
    renamed = tmp_path / "anything.bin"
    renamed.write_bytes(crawl.read_bytes())
    assert sniff(renamed) == "openwpm"


def test_rows_keep_clients_pages_and_one_skip_for_the_broken_row(crawl, tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        report = ingest_paths([crawl], store)
    assert report.stored == 3 * 2 * 3 + 1  # the unanswered request is an exchange without response
    (skip,) = report.skipped
    assert skip.file == str(crawl) and skip.reason.startswith("http_responses row ")
    df = load_exchanges(tmp_path / "s.sqlite")
    assert {c.rsplit("/", 1)[1] for c in df["client"]} == {"browser-1", "browser-2", "browser-3"}
    assert set(df["page_url"].dropna()) == {TOP} and df["third_party"].fillna(False).any()
    blocked = df[df["url"] == "https://a.test/blocked"].iloc[0]
    assert pd_isna(blocked["status"]) and blocked["error"] == "no response recorded by the crawler"
    assert set(df["source_kind"]) == {"openwpm"}


def pd_isna(value) -> bool:  # type: ignore[no-untyped-def]
    import pandas as pd

    return bool(pd.isna(value))


def test_analyze_finds_the_identifier_and_the_churn(crawl, tmp_path, capsys):
    out = tmp_path / "a.json"
    assert main(["analyze", str(crawl), "--db", str(tmp_path / "s.sqlite"), "--json", str(out),
                 "-q"]) == 0
    verdicts = {r["url"]: r["verdict"] for r in json.loads(out.read_text())["resources"]}
    assert verdicts[PIXEL] == "identifier"
    assert verdicts[APP] == "churn"
    assert verdicts[CSS] == "stable"


def test_a_folder_with_a_crawl_and_a_store_reads_the_crawl(crawl, tmp_path):
    Store(tmp_path / "other.sqlite").close()  # an etagwatch store beside it is not a capture
    with Store(tmp_path / "s2.sqlite") as store:
        report = ingest_paths([tmp_path], store)
    assert report.files == 1 and report.stored == 19


def test_the_parquet_layout_reads_as_the_database_does(crawl, tmp_path):
    """OpenWPM's Parquet storage: a folder per table. The same crawl written that way gives
    the same rows and verdicts as its SQLite database; the folder is one capture, once."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    root = tmp_path / "datadir" / "crawl"
    conn = sqlite3.connect(crawl)
    for table in ("http_requests", "http_responses"):
        cur = conn.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in cur.description]
        (root / table).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in cur]),
                       root / table / "part-0.parquet")
    conn.close()
    with Store(tmp_path / "p.sqlite") as store:
        report = ingest_paths([tmp_path / "datadir"], store)
    assert report.files == 1 and report.stored == 19 and len(report.skipped) == 1
    out = tmp_path / "a.json"
    assert main(["analyze", str(tmp_path / "p.sqlite"), "--json", str(out), "-q"]) == 0
    verdicts = {r["url"]: r["verdict"] for r in json.loads(out.read_text())["resources"]}
    assert verdicts[PIXEL] == "identifier" and verdicts[APP] == "churn"
    with Store(tmp_path / "p.sqlite") as store:  # the same folder again: already ingested
        assert ingest_paths([root], store).duplicates


@pytest.mark.timeout(30)
def test_a_large_crawl_is_joined_in_linear_time(tmp_path):
    """The crawl file is read-only, so the join runs over indexed temporary key tables: 50,000
    responses took 88 s before (a scan of http_requests per response), 1.2 s after."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from readers import build_openwpm

    path = tmp_path / "big.sqlite"
    build_openwpm(path, 40_000)
    with Store(tmp_path / "s.sqlite") as store:
        report = ingest_paths([path], store)
    assert report.stored == 40_000 and not report.skipped
