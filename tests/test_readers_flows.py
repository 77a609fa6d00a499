"""mitmproxy flow files, written with mitmproxy's own FlowWriter, read back as exchanges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mitmproxy import io
from mitmproxy.test import tflow

from analysis.exchange import Exchange
from analysis.readers import ReadError, Skip, open_capture, sniff
from analysis.readers.flow_exchange import exchange_from_flow

KEY = b"f" * 32


def _flow(path: str = "/app.js", etag: str | None = '"v1"', cookie: str | None = None):
    f = tflow.tflow(resp=True)
    f.request.host = "shop.example.com"
    f.request.port = 443
    f.request.scheme = "https"
    f.request.path = path
    f.request.headers["If-None-Match"] = '"v0"'
    if cookie:
        f.request.headers["Cookie"] = cookie
    f.response.status_code = 200
    if etag:
        f.response.headers["ETag"] = etag
    f.response.headers["X-Served-By"] = "cache-fra1"
    f.response.headers["content-encoding"] = "gzip"
    f.response.content = b"console.log(1)" * 50  # stored gzip-encoded on the wire
    return f


def _write(path: Path, flows) -> Path:
    with path.open("wb") as fh:
        writer = io.FlowWriter(fh)
        for f in flows:
            writer.add(f)
    return path


def test_flow_file_round_trip(tmp_path):
    path = _write(tmp_path / "dump.flow", [_flow(), tflow.ttcpflow(), _flow("/b", etag=None)])
    assert sniff(path) == "flow"
    items = list(open_capture(path, client="proxy", key=KEY))
    assert isinstance(items[1], Skip) and "TCPFlow" in items[1].reason
    first, second = items[0], items[2]
    assert isinstance(first, Exchange) and first.source_kind == "flow"
    assert first.url == "https://shop.example.com/app.js" and first.port == 443
    assert first.req_if_none_match == '"v0"' and first.etag_opaque == "v1"
    assert json.loads(first.backend)["x-served-by"] == "cache-fra1"
    # body_size is what went over the wire (gzip), content_size the decoded body
    assert first.content_size == 14 * 50 and 0 < first.body_size < first.content_size
    assert first.flow_id and [first.entry_index, second.entry_index] == [0, 2]
    assert second.etag is None and second.etag_count == 0


def test_corrupted_flow_file_keeps_flows_before_the_damage(tmp_path):
    good = _write(tmp_path / "good.flow", [_flow("/1"), _flow("/2"), _flow("/3")]).read_bytes()
    one = len(_write(tmp_path / "one.flow", [_flow("/1")]).read_bytes())
    bad = tmp_path / "bad.flow"
    bad.write_bytes(good[: one + 40] + b"#garbage#")
    got = []
    with pytest.raises(ReadError) as err:
        got.extend(open_capture(bad, client="c", key=KEY))
    assert len(got) == 1 and got[0].path == "/1"
    assert "bad.flow" in str(err.value) and "stopped at flow 1" in err.value.message


def test_exchange_from_flow_live_defaults_and_privacy():
    f = _flow(cookie="sid=s3cr3t-value; theme=dark")
    f.request.headers["Authorization"] = "Bearer tok-123"
    f.response.headers["Set-Cookie"] = "uid=u-999; Path=/"
    ex = exchange_from_flow(f, client="10.0.0.7", source="live:127.0.0.1:8080", key=KEY)
    assert ex.source_kind == "live" and ex.client == "10.0.0.7"
    assert json.loads(ex.cookies_sent) == ["sid", "theme"] and json.loads(ex.cookies_set) == ["uid"]
    text = json.dumps([ex.req_headers, ex.resp_headers, ex.cookie_hashes])
    for secret in ("s3cr3t-value", "tok-123", "u-999", "dark"):
        assert secret not in text
    assert len(json.loads(ex.cookie_hashes)) == 3


def test_flow_without_response_is_kept_with_its_error():
    f = tflow.tflow(err=True)
    ex = exchange_from_flow(f, client="c", source="live", key=KEY)
    assert ex.status is None and ex.error and ex.body_size is None
