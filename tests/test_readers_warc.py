"""WARC archives as captures: archives written with warcio (per-record gzip and plain), with
request records before and after their responses, server-not-modified revisits (the 304s an
archiver saw), warcinfo and metadata records, and a cut archive. Three archives are three
crawl sessions, so the tracker that hands each its own ETag is an identifier and the load
balancer's two values for one payload are churn."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

warcio = pytest.importorskip("warcio")
from support import ingest_into, sniffed_under_another_name  # noqa: E402
from warcio.statusandheaders import StatusAndHeaders  # noqa: E402
from warcio.warcwriter import WARCWriter  # noqa: E402

from analysis.cli import main  # noqa: E402
from analysis.ingest import ingest_paths  # noqa: E402
from analysis.readers import sniff  # noqa: E402
from analysis.store import Store, load_exchanges  # noqa: E402

PIXEL = "https://pixel.tracker.test/p.gif"
APP = "https://cdn.lb.test/app.js"
CSS = "https://static.test/s.css"


class Archive:
    def __init__(self, path: Path) -> None:
        self.fh = path.open("wb")
        self.w = WARCWriter(self.fh, gzip=path.name.endswith(".gz"))
        info = self.w.create_warcinfo_record(path.name, {"software": "etagwatch-test"})
        self.w.write_record(info)

    def exchange(self, url: str, status: str, resp: list, body: bytes = b"", req: list = (),
                 *, request_first: bool = True, revisit: bool = False) -> None:
        path = "/" + url.split("/", 3)[3]
        q = StatusAndHeaders(f"GET {path} HTTP/1.1", [("Host", url.split("/")[2]), *req],
                             is_http_request=True)
        r = StatusAndHeaders(status, [*resp, ("Content-Length", str(len(body)))],
                             protocol="HTTP/1.1")
        if revisit:
            rec = self.w.create_revisit_record(
                url, digest="sha1:" + "A" * 32, refers_to_uri=url,
                refers_to_date="2024-05-01T10:00:00Z", http_headers=r)
            rec.rec_headers.replace_header(
                "WARC-Profile", "http://netpreserve.org/warc/1.1/revisit/server-not-modified")
        else:
            rec = self.w.create_warc_record(url, "response", payload=io.BytesIO(body),
                                            http_headers=r)
        request = self.w.create_warc_record(url, "request", payload=io.BytesIO(b""),
                                            http_headers=q)
        request.rec_headers.add_header("WARC-Concurrent-To",
                                       rec.rec_headers.get_header("WARC-Record-ID"))
        for record in ((request, rec) if request_first else (rec, request)):
            self.w.write_record(record)

    def metadata(self) -> None:
        self.w.write_record(self.w.create_warc_record(
            "metadata://x", "metadata", payload=io.BytesIO(b"via: test"),
            warc_content_type="text/plain"))

    def close(self) -> None:
        self.fh.close()


def _session(path: Path, n: int) -> Path:
    a = Archive(path)
    tag = f'"tr{n}-8f14e45fceea167a5a36dedd4bea2543{n}"'
    a.exchange(PIXEL, "200 OK", [("ETag", tag), ("Cache-Control", "no-cache")], b"GIF89a",
               request_first=n % 2 == 0)
    a.exchange(PIXEL, "304 Not Modified", [("ETag", tag)], req=[("If-None-Match", tag)],
               revisit=True, request_first=n % 2 == 1)
    a.exchange(APP, "200 OK", [("ETag", '"5f3a-1"'), ("X-Backend", "web1")], b"x" * 900)
    a.exchange(APP, "200 OK", [("ETag", '"5f3a-2"'), ("X-Backend", "web2")], b"x" * 900,
               req=[("If-None-Match", '"5f3a-1"')])
    a.exchange(CSS, "200 OK", [("ETag", '"css-1"')], b"body{}")
    a.exchange(CSS, "304 Not Modified", [("ETag", '"css-1"')], req=[("If-None-Match", '"css-1"')],
               revisit=True)
    a.metadata()
    a.close()
    return path


@pytest.fixture
def sessions(tmp_path) -> Path:
    folder = tmp_path / "crawls"
    folder.mkdir()
    for n, name in enumerate(("a.warc.gz", "b.warc.gz", "c.warc")):
        _session(folder / name, n)
    return folder


def test_archives_are_recognised_by_content(sessions, tmp_path):
    for path in sessions.iterdir():
        assert sniff(path) == sniffed_under_another_name(path, tmp_path) == "warc"


def test_records_pair_and_revisits_are_304s(sessions, tmp_path):
    report = ingest_into(tmp_path / "s.sqlite", [sessions])
    assert report.stored == 3 * 6 and not report.errors
    assert report.exit_status == 0  # warcinfo and metadata records are no HTTP exchange
    assert report.not_http == 3 * 2
    df = load_exchanges(tmp_path / "s.sqlite")
    pixel = df[df["url"] == PIXEL]
    assert sorted(pixel["status"].tolist()) == [200, 200, 200, 304, 304, 304]
    # the request record, before or after its response, gave the 304 its If-None-Match
    assert pixel[pixel["status"] == 304]["req_if_none_match"].notna().all()
    assert set(df["source_kind"]) == {"warc"} and df["client"].nunique() == 3


def test_analyze_finds_the_identifier_and_the_churn(sessions, tmp_path):
    out = tmp_path / "a.json"
    assert main(["analyze", str(sessions), "--db", str(tmp_path / "s.sqlite"), "--json",
                 str(out), "-q"]) == 0
    verdicts = {r["url"]: r["verdict"] for r in json.loads(out.read_text())["resources"]}
    assert verdicts[PIXEL] == "identifier"
    assert verdicts[APP] == "churn"
    assert verdicts[CSS] == "stable"


@pytest.mark.parametrize("name", ["cut.warc.gz", "cut.warc"])
def test_a_cut_archive_keeps_the_records_before_the_cut(tmp_path, name):
    whole = _session(tmp_path / f"whole-{name}", 0)
    data = whole.read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: len(data) * 2 // 3])
    with Store(tmp_path / "s.sqlite") as store:
        report = ingest_paths([cut], store)
    assert 2 <= report.stored < 6
    (err,) = report.errors
    assert err.file == str(cut) and "cut short" in err.message
