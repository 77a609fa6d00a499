"""A unique secret planted in every place a capture can carry one, through a HAR, a mitmproxy
flow file and a real mitmdump with the addon, is found in clear in no store file (the database,
its -wal and -shm) and in no output: analyze's text, JSON and CSV, report's HTML and executed
notebook, the addon's etagwatch.export. The keyed hashes still show an ETag equal to a query
value (``query_match``), as they show one equal to a cookie.
"""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from har_builder import Har
from mitmproxy import http, io
from mitmproxy.test import taddons, tflow

from addons.annotator import Annotator
from addons.findings import Findings
from addons.recorder import Recorder
from analysis.cli import main
from analysis.lab.mitm import ADDON, MitmDump

pytestmark = pytest.mark.e2e

PLACES = ("cookie", "set_cookie", "authorization", "proxy_auth", "api_key", "csrf", "query",
          "query2", "userinfo", "fragment", "referer", "location", "content_location", "page",
          "request_body", "response_body", "har_cookie")
#: An ETag equal to a query value: kept in clear as ETags are, so not one of the secrets.
QUERY_TAG = "q7f3a9c1e5b2d8046a1c9e7f3b5d2a8c"


@pytest.fixture(scope="module")
def planted() -> dict[str, str]:
    return {p: f"PLANTED{p.upper()}{secrets.token_hex(10)}" for p in PLACES}


def _request_headers(s: dict[str, str]) -> list[tuple[str, str]]:
    return [
        ("Cookie", f"sid={s['cookie']}; theme=dark"),
        ("Authorization", f"Bearer {s['authorization']}"),
        ("Proxy-Authorization", f"Basic {s['proxy_auth']}"),
        ("X-Api-Key", s["api_key"]),
        ("Referer", f"https://user:{s['userinfo']}@news.test/a?ref={s['referer']}#{s['fragment']}"),
    ]


def _response_headers(s: dict[str, str]) -> list[tuple[str, str]]:
    return [
        ("Set-Cookie", f"sid={s['set_cookie']}; Path=/; HttpOnly"),
        ("X-CSRF-Token", s["csrf"]),
        ("Location", f"/next?t={s['location']}"),
        ("Content-Location", f"/doc?c={s['content_location']}"),
        ("Cache-Control", "no-cache"),
    ]


def _url(s: dict[str, str], base: str) -> str:
    return f"{base}/p.gif?token={s['query']}&user={s['query2']}&id={QUERY_TAG}"


def _har(s: dict[str, str], path: Path) -> Path:
    har = Har()
    page = har.page(f"https://news.test/article?session={s['page']}", at=1_700_000_000)
    for i in range(3):
        entry = har.get(_url(s, "https://track.test") + f"#{s['fragment']}",
                        at=1_700_000_000 + i, etag=f'"{QUERY_TAG}"', page=page,
                        body=f"<p>{s['response_body']}</p>", mime="text/html",
                        headers=_response_headers(s), req_headers=_request_headers(s))
        entry["request"]["postData"] = {"mimeType": "text/plain", "text": s["request_body"]}
        entry["request"]["cookies"] = [{"name": "hc", "value": s["har_cookie"]}]
    return har.write(path)


def _raw(fields: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(n.encode(), v.encode()) for n, v in fields]


def _flows(s: dict[str, str], path: Path) -> Path:
    with path.open("wb") as fh:
        writer = io.FlowWriter(fh)
        for i in range(3):
            f = tflow.tflow()
            f.client_conn.peername = (f"10.0.0.{i}", 5000)
            f.request = http.Request.make("POST", _url(s, "http://track.test"),
                                          s["request_body"].encode(), _raw(_request_headers(s)))
            f.response = http.Response.make(
                200, f"<p>{s['response_body']}</p>".encode(),
                _raw([("ETag", f'"{QUERY_TAG}"'), *_response_headers(s)]))
            writer.add(f)
    return path


def _origin(s: dict[str, str]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"<p>{s['response_body']}</p>".encode()
            self.send_response(200)
            for name, value in [("ETag", f'"{QUERY_TAG}"'), *_response_headers(s)]:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _leaks(root: Path, s: dict[str, str]) -> dict[str, list[str]]:
    """Secret -> files under ``root`` holding it in clear (also percent-encoded or lower case)."""
    found: dict[str, list[str]] = {}
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    for f in files:
        data = f.read_bytes()
        lower = data.lower()
        for place, secret in s.items():
            if secret.encode() in data or secret.lower().encode() in lower:
                found.setdefault(place, []).append(str(f.relative_to(root)))
    return found


def _outputs(db: Path, out: Path, *, report: bool) -> dict:
    out.mkdir(exist_ok=True)
    assert main(["analyze", str(db), "--json", str(out / "a.json"), "--csv", str(out / "csv")]) == 0
    if report:
        assert main(["report", str(db), "-o", str(out / "r.html"),
                     "--notebook", str(out / "r.ipynb"), "-q"]) == 0
    return json.loads((out / "a.json").read_text())


def _text(db: Path, out: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["analyze", str(db)]) == 0
    (out / "analyze.txt").write_text(capsys.readouterr().out)


def _query_match(doc: dict) -> bool:
    return any(r["evidence"].get("query_match") for r in doc["resources"])


@pytest.mark.timeout(300)
def test_captures_leave_no_secret_in_clear(planted, tmp_path, capsys):
    db = tmp_path / "store" / "s.sqlite"
    db.parent.mkdir()
    captures = [_har(planted, tmp_path / "cap.har"), _flows(planted, tmp_path / "cap.flows")]
    assert main(["ingest", *map(str, captures), "--db", str(db), "--no-progress"]) in (0, 1)
    out = tmp_path / "out"
    doc = _outputs(db, out, report=True)
    _text(db, out, capsys)
    assert _leaks(db.parent, planted) == {}
    assert _leaks(out, planted) == {}
    assert _query_match(doc)
    assert "hmac:" in (out / "analyze.txt").read_text() or "?token=" in (out / "analyze.txt").read_text()


@pytest.mark.timeout(300)
def test_live_proxy_leaves_no_secret_in_clear(planted, tmp_path, capsys):
    db = tmp_path / "store" / "live.sqlite"
    db.parent.mkdir()
    origin = _origin(planted)
    base = f"http://127.0.0.1:{origin.server_address[1]}"
    proxy = MitmDump(scripts=(ADDON,), db=db).start()
    try:
        with httpx.Client(proxy=proxy.url, timeout=10, trust_env=False) as client:
            for _ in range(3):
                assert client.get(_url(planted, base), headers=_request_headers(planted)).status_code == 200
    finally:
        proxy.stop()
        origin.shutdown()
    out = tmp_path / "out"
    doc = _outputs(db, out, report=False)
    _text(db, out, capsys)
    # the addon's own export, over the same store
    rec, ann = Recorder(), Annotator()
    rec.subscribe(ann.observe)
    findings = Findings(rec, ann)
    with taddons.context(rec, ann, findings) as tctx:
        tctx.configure(rec, etagwatch_db=str(db))
        tctx.command(findings.export, str(out / "export.json"))
        rec.done()
    assert json.loads((out / "export.json").read_text())["resources"]
    assert _leaks(db.parent, planted) == {}
    assert _leaks(out, planted) == {}
    assert _query_match(doc)
