"""The store's privacy rules hold for every reader: a cookie, a credential header and a query
value planted in an OpenWPM crawl, a WARC archive and an HTTP Archive export are in clear in
no store file."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from support import ingest_into

SECRET = {"cookie": "PLANTEDCOOKIE7f3a9c", "token": "PLANTEDTOKEN2b8d41", "query": "PLANTEDQUERY9e1c77"}
URL = f"https://t.test/p.gif?uid={SECRET['query']}"
REQ = [("Cookie", f"sid={SECRET['cookie']}"), ("X-Auth-Token", SECRET["token"])]
RESP = [("Set-Cookie", f"sid={SECRET['cookie']}; Path=/"), ("ETag", '"v1"')]


def _openwpm(path: Path) -> None:
    from test_readers_openwpm import DDL

    conn = sqlite3.connect(path)
    conn.executescript(DDL)
    conn.execute("INSERT INTO http_requests (browser_id, visit_id, url, top_level_url, method,"
                 " referrer, headers, request_id, resource_type, time_stamp) VALUES"
                 " (1, 1, ?, ?, 'GET', '', ?, 1, 'image', '2024-05-01T10:00:00Z')",
                 (URL, f"https://news.test/?s={SECRET['query']}", json.dumps(REQ)))
    conn.execute("INSERT INTO http_responses (browser_id, visit_id, url, method, response_status,"
                 " response_status_text, is_cached, headers, request_id, location, time_stamp)"
                 " VALUES (1, 1, ?, 'GET', 200, 'OK', 0, ?, 1, '', '2024-05-01T10:00:01Z')",
                 (URL, json.dumps(RESP)))
    conn.commit()
    conn.close()


def _warc(path: Path) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with path.open("wb") as fh:
        w = WARCWriter(fh, gzip=True)
        resp = StatusAndHeaders("200 OK", [*RESP, ("Content-Length", "2")], protocol="HTTP/1.1")
        rec = w.create_warc_record(URL, "response", payload=io.BytesIO(b"ok"), http_headers=resp)
        req = StatusAndHeaders(f"GET /p.gif?uid={SECRET['query']} HTTP/1.1",
                               [("Host", "t.test"), *REQ], is_http_request=True)
        q = w.create_warc_record(URL, "request", payload=io.BytesIO(b""), http_headers=req)
        q.rec_headers.add_header("WARC-Concurrent-To", rec.rec_headers.get_header("WARC-Record-ID"))
        w.write_record(q)
        w.write_record(rec)


def _httparchive(path: Path) -> None:
    row = {"date": "2024-05-01", "client": "desktop", "page": "https://news.test/", "url": URL,
           "request_headers": [{"name": n, "value": v} for n, v in REQ],
           "response_headers": [{"name": n, "value": v} for n, v in RESP],
           "summary": {"status": 200, "method": "GET"}}
    path.write_text(json.dumps(row) + "\n")


@pytest.mark.parametrize(("name", "make"), [("crawl-data.sqlite", _openwpm), ("a.warc.gz", _warc),
                                            ("r.jsonl", _httparchive)])
def test_no_planted_secret_reaches_the_store(tmp_path, name, make):
    if make is _warc:
        pytest.importorskip("warcio")
    capture = tmp_path / "in" / name
    capture.parent.mkdir()
    make(capture)
    store = tmp_path / "store"
    store.mkdir()
    report = ingest_into(store / "s.sqlite", [capture])
    assert report.stored == 1, report
    for f in store.iterdir():
        data = f.read_bytes()
        for place, secret in SECRET.items():
            assert secret.encode() not in data, (place, f.name)
