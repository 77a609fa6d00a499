"""HTTP Archive request rows as captures: JSON lines (plain and gzipped) in the shape of its
BigQuery export, with header arrays and a summary, and legacy summary rows with
req_if_none_match / resp_etag / resp_last_modified. Each (date, client) pair is one client,
across files; a broken row costs that row; and with no revalidation in the data, a tracker
that hands each crawl its own value is never called an identifier (nothing proves it)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from support import ingest_into, sniffed_under_another_name

from analysis.cli import main
from analysis.ingest import ingest_paths
from analysis.readers import sniff
from analysis.store import Store, load_exchanges

PIXEL = "https://pixel.tracker.test/p.gif"
CSS = "https://static.test/s.css"
PAGE = "https://news.test/"


def _row(date: str, client: str, url: str, etag: str, status: int = 200) -> dict:
    return {
        "date": date, "client": client, "page": PAGE, "url": url,
        "request_headers": [{"name": "User-Agent", "value": "Chrome"}],
        "response_headers": [{"name": "ETag", "value": etag},
                             {"name": "Cache-Control", "value": "max-age=0"}],
        "summary": json.dumps({"status": status, "method": "GET", "respBodySize": 43,
                               "startedDateTime": 1_714_550_400}),
    }


def _rows() -> list[dict]:
    out = []
    for date in ("2024-05-01", "2024-06-01"):
        for client in ("desktop", "mobile"):
            out.append(_row(date, client, PIXEL, f'"{date}-{client}-8f14e45fceea167a"'))
            out.append(_row(date, client, CSS, '"css-1"'))
    return out


@pytest.fixture
def export(tmp_path) -> Path:
    folder = tmp_path / "ha"
    folder.mkdir()
    rows = _rows()
    lines = [json.dumps(r) for r in rows[:4]]
    (folder / "part-0.jsonl").write_text("\n".join([*lines, "{not json", ""]))
    legacy = {"url": PIXEL, "page": PAGE, "date": "2024-07-01", "client": "desktop",
              "status": 200, "resp_etag": '"legacy-1"', "resp_last_modified":
              "Wed, 01 May 2024 00:00:00 GMT", "req_if_none_match": None}
    body = "\n".join(json.dumps(r) for r in [*rows[4:], legacy]) + "\n"
    (folder / "part-1.jsonl.gz").write_bytes(gzip.compress(body.encode()))
    return folder


def test_rows_are_recognised_by_content(export, tmp_path):
    for path in export.iterdir():
        assert sniff(path) == sniffed_under_another_name(path, tmp_path) == "httparchive"


def test_each_crawl_date_and_client_is_one_client_across_files(export, tmp_path):
    report = ingest_into(tmp_path / "s.sqlite", [export])
    assert report.stored == 9
    (skip,) = report.skipped
    assert skip.entry_index == 4 and skip.reason.startswith("row 4: not JSON")
    df = load_exchanges(tmp_path / "s.sqlite")
    assert df["client"].nunique() == 5  # 2 dates x 2 clients + the legacy row's crawl
    assert set(df["first_party"].dropna()) == {"news.test"}
    legacy = df[df["etag"] == '"legacy-1"'].iloc[0]
    assert legacy["last_modified_ts"] == 1_714_521_600.0 and legacy["status"] == 200


def test_analyze_never_accuses_without_revalidations(export, tmp_path):
    out = tmp_path / "a.json"
    assert main(["analyze", str(export), "--db", str(tmp_path / "s.sqlite"), "--json", str(out),
                 "-q"]) == 0
    verdicts = {r["url"]: r["verdict"] for r in json.loads(out.read_text())["resources"]}
    assert verdicts[PIXEL] not in ("identifier", "likely-identifier")
    assert verdicts[CSS] == "stable"


def test_parquet_rows(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = _rows()
    path = tmp_path / "requests.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    assert sniff(path) == "httparchive"
    with Store(tmp_path / "s.sqlite") as store:
        assert ingest_paths([path], store).stored == len(rows)


def _revisiting(date: str, client: str, url: str, etag: str, status: int, inm: str | None,
                t: int, backend: str | None = None) -> dict:
    row = _row(date, client, url, etag, status)
    if inm:
        row["request_headers"].append({"name": "If-None-Match", "value": inm})
    if backend:
        row["response_headers"].append({"name": "X-Backend", "value": backend})
    row["response_headers"][1]["value"] = "no-cache"
    row["summary"] = json.dumps({"status": status, "method": "GET", "startedDateTime": t,
                                 "respBodySize": 0 if status == 304 else 900})
    return row


def test_an_export_with_repeat_views_shows_the_identifier_and_the_churn(tmp_path):
    """Rows that do revalidate (repeat views of a page load) carry the evidence the verdicts
    need: the reader passes it through like any other source."""
    app = "https://cdn.lb.test/app.js"
    rows = []
    for d, date in enumerate(("2024-05-01", "2024-06-01", "2024-07-01")):
        for client in ("desktop", "mobile"):
            tag = f'"{date}-{client}-8f14e45fceea167a5a36dedd"'
            t = 1_714_550_400 + d * 100
            rows += [_revisiting(date, client, PIXEL, tag, 200, None, t),
                     _revisiting(date, client, PIXEL, tag, 304, tag, t + 5),
                     _revisiting(date, client, app, '"5f3a-1"', 200, None, t + 1, "web1"),
                     _revisiting(date, client, app, '"5f3a-2"', 200, '"5f3a-1"', t + 6, "web2")]
    path = tmp_path / "repeat.jsonl"
    path.write_text("\n".join(map(json.dumps, rows)) + "\n")
    out = tmp_path / "a.json"
    assert main(["analyze", str(path), "--db", str(tmp_path / "s.sqlite"), "--json", str(out),
                 "-q"]) == 0
    verdicts = {r["url"]: r["verdict"] for r in json.loads(out.read_text())["resources"]}
    assert verdicts == {PIXEL: "identifier", app: "churn"}
