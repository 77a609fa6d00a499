"""End to end: an origin that hangs up mid-response, behind a real mitmdump running
addons/etagwatch.py. Every flow the proxy saw is one row of the store, with its error and the
status and headers that did arrive: a body cut short (Content-Length or chunked, buffered or
streamed), no response at all, a refused connection, a whole answer for contrast, and exchanges
still in flight when the proxy shuts down."""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path

import httpx
import pandas as pd
import pytest
from origins.cut_origin import ETAG, serve
from support import free_port

from addons.recorder import UNFINISHED
from analysis.lab.mitm import ADDON, MitmDump
from analysis.store import load_exchanges

pytestmark = pytest.mark.e2e

PATHS = ("/whole", "/cut-length", "/cut-chunked", "/cut-headers")


def browse(db: Path, urls: list[str], options: dict[str, str] | None = None) -> list[object]:
    """GET each URL through a fresh mitmdump, then stop it cleanly (SIGTERM: the addon's done
    hook stores the rest); the status each request got, or the exception it raised."""
    proxy = MitmDump(scripts=(ADDON,), db=db, options=options).start()
    got: list[object] = []
    try:
        with httpx.Client(proxy=proxy.url, timeout=10, trust_env=False) as http:
            for url in urls:
                try:
                    got.append(http.get(url).status_code)
                except httpx.HTTPError as exc:  # a streamed answer breaks off at the client
                    got.append(type(exc))
    finally:
        proxy.stop()
    return got


def one_row_per_url(db: Path, urls: list[str]) -> dict[str, pd.Series]:
    df = load_exchanges(db)
    counts = df["url"].value_counts().to_dict()
    assert counts == dict.fromkeys(urls, 1), counts
    return {row["url"]: row for _, row in df.iterrows()}


def resp_header(row: pd.Series, name: str) -> str | None:
    return next((v for n, v in json.loads(row["resp_headers"]) if n == name), None)


def test_a_response_cut_short_is_stored_once_with_its_error_status_and_headers(tmp_path):
    db = tmp_path / "cut.sqlite"
    refused = f"http://127.0.0.1:{free_port()}/refused"
    with serve() as running:
        origin = running.url
        urls = [origin + p for p in PATHS] + [refused]
        got = browse(db, urls)
    assert got == [200, 502, 502, 502, 502]  # the client learns only that the gateway failed
    rows = one_row_per_url(db, urls)

    whole = rows[origin + "/whole"]
    assert whole["status"] == 200 and pd.isna(whole["error"]) and whole["body_size"] == 1000

    cut = rows[origin + "/cut-length"]
    assert cut["status"] == 200 and cut["etag"] == ETAG
    assert resp_header(cut, "content-length") == "1000"
    assert resp_header(cut, "x-backend") == "cut-origin"
    assert "received 100 bytes, expected 1000" in cut["error"]  # what arrived, in mitmproxy's words
    assert pd.isna(cut["body_size"]) and pd.isna(cut["content_hash"])  # never a partial body's hash

    chunked = rows[origin + "/cut-chunked"]
    assert chunked["status"] == 200 and chunked["etag"] == ETAG
    assert resp_header(chunked, "transfer-encoding") == "chunked"
    assert "incomplete chunked read" in chunked["error"]
    assert pd.isna(chunked["body_size"]) and pd.isna(chunked["content_hash"])

    for url in (origin + "/cut-headers", refused):  # no response: stored as before
        assert pd.isna(rows[url]["status"]) and rows[url]["error"], url
        assert pd.isna(rows[url]["resp_headers"]) or rows[url]["resp_headers"] == "[]", url


def test_a_streamed_response_cut_short_is_stored_once(tmp_path):
    """With stream_large_bodies the client already has the 200 and part of the body when the
    origin hangs up; the flow still ends in mitmproxy's error hook, never in its response hook."""
    db = tmp_path / "streamed.sqlite"
    with serve() as origin:
        urls = [origin.url + p for p in ("/whole", "/cut-length")]
        got = browse(db, urls, options={"stream_large_bodies": "500"})
    assert got[0] == 200 and isinstance(got[1], type) and issubclass(got[1], httpx.HTTPError)
    rows = one_row_per_url(db, urls)
    assert pd.isna(rows[urls[0]]["error"]) and rows[urls[0]]["status"] == 200
    cut = rows[urls[1]]
    assert cut["status"] == 200 and cut["etag"] == ETAG
    assert "received 100 bytes, expected 1000" in cut["error"]


def test_exchanges_in_flight_when_the_proxy_stops_are_stored_once(tmp_path):
    """SIGTERM while one answer has sent its headers and part of its body and another has sent
    nothing: mitmproxy tears both down without a response or error hook."""
    db = tmp_path / "stopped.sqlite"
    with serve() as origin:
        urls = [origin.url + "/whole", origin.url + "/stall", origin.url + "/silent"]
        proxy = MitmDump(scripts=(ADDON,), db=db).start()
        try:
            with httpx.Client(proxy=proxy.url, timeout=20, trust_env=False) as http:
                assert http.get(urls[0]).status_code == 200
            waiting = [threading.Thread(target=_get_through, args=(proxy.url, url)) for url in urls[1:]]
            for thread in waiting:
                thread.start()
            for _ in waiting:  # both requests reached the origin, which now holds them
                assert origin.stalled.acquire(timeout=10)
        finally:
            proxy.stop()
        for thread in waiting:
            thread.join(timeout=10)
    rows = one_row_per_url(db, urls)
    assert pd.isna(rows[urls[0]]["error"])
    stalled, silent = rows[urls[1]], rows[urls[2]]
    assert stalled["status"] == 200 and stalled["etag"] == ETAG and stalled["error"] == UNFINISHED
    assert pd.isna(stalled["body_size"])
    assert pd.isna(silent["status"]) and silent["error"] == UNFINISHED


def _get_through(proxy: str, url: str) -> None:
    """One GET whose answer never comes in full (the proxy is stopped under it)."""
    with httpx.Client(proxy=proxy, timeout=20, trust_env=False) as http, contextlib.suppress(
        httpx.HTTPError
    ):
        http.get(url)
