"""Snapshots: the row built from a flow's snapshot is the row ``exchange_from_flow`` builds,
and the light record the live checks read agrees with the full record on every field it sets."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest
from mitmproxy import http, io
from mitmproxy.test import tflow
from support import REAL_HARS

from addons.flow_snapshot import RecordConfig, Snapshot, light_exchange, take, to_exchange, to_row
from addons.replay_sources import load_har
from analysis.readers.flow_exchange import exchange_from_flow

ROOT = Path(__file__).resolve().parents[1]
KEY = os.urandom(32)


def sample_flows() -> list[http.HTTPFlow]:
    flows = []
    for path in sorted((ROOT / "sample_captures" / "flows").glob("*.flows")):
        with open(path, "rb") as fh:
            flows += [f for f in io.FlowReader(fh).stream() if isinstance(f, http.HTTPFlow)]
    return flows


def odd_flows() -> list[http.HTTPFlow]:
    """What live traffic also brings: repeated and malformed ETags, no response, gzip bodies,
    non-UTF-8 header bytes, secrets, status 0."""
    out = []
    f = tflow.tflow(resp=True)
    f.response.headers = http.Headers([(b"ETag", b'"a"'), (b"etag", b"W/b"), (b"Set-Cookie", b"sid=s3cr3t")])
    f.request.headers = http.Headers(
        [(b"If-None-Match", b'"a"'), (b"if-none-match", b'"b"'), (b"Cookie", b"sid=s3cr3t"), (b"X-Bin", b"\xff\xfe")]
    )
    out.append(f)
    f = tflow.tflow(err=True)
    out.append(f)
    f = tflow.tflow(resp=True)
    f.response.headers["content-encoding"] = "gzip"
    f.response.content = b"hello " * 100  # encodes: raw and decoded sizes differ
    f.response.headers["ETag"] = ' "padded" '
    out.append(f)
    f = tflow.tflow(resp=True)
    f.response.status_code = 0
    out.append(f)
    f = tflow.tflow(resp=True)
    f.request.http_version = f.response.http_version = "HTTP/2.0"
    f.request.authority = "example.com"
    out.append(f)
    f = tflow.tflow(resp=True)
    f.response.stream = True
    f.response.data.content = None
    out.append(f)
    return out


def all_flows() -> list[http.HTTPFlow]:
    flows = sample_flows() + odd_flows()
    # the shared corpus when it is beside the checkout (a clone without it tests the rest)
    hars = sorted(REAL_HARS.rglob("*.har"))[:6] if REAL_HARS.is_dir() else []
    for har in hars:
        flows += load_har(har).flows
    return flows


@pytest.mark.parametrize("redact", [False, True])
def test_snapshot_row_is_exchange_from_flow_row(redact):
    config = RecordConfig(source="live:mitmproxy", source_kind="live", key=KEY, redact_validators=redact)
    flows = all_flows()
    assert len(flows) > 50
    for f in flows:
        expected = exchange_from_flow(
            f, client="c1", source="live:mitmproxy", key=KEY, redact_validators=redact
        )
        snap = take(f, "c1")
        # the child gets the snapshot through msgpack: compare after the round trip
        wire = msgspec.msgpack.decode(msgspec.msgpack.encode(snap), type=Snapshot)
        assert to_row(wire, config) == msgspec.structs.astuple(expected), f.request.pretty_url
        assert to_exchange(snap, config) == expected


@pytest.mark.parametrize("redact", [False, True])
def test_light_record_agrees_with_the_full_record(redact):
    """Field for field, with validators as sent: redaction is for the store, not the checks."""
    config = RecordConfig(source="live:mitmproxy", source_kind="live", key=KEY, redact_validators=redact)
    as_sent = msgspec.structs.replace(config, redact_validators=False)
    for f in all_flows():
        snap = take(f, "c1")
        full, light = to_exchange(snap, as_sent), light_exchange(snap, config)
        for column, value in msgspec.structs.asdict(light).items():
            if value is not None:
                assert value == getattr(full, column), (column, f.request.pretty_url)
        for column in ("etag", "etag_violations", "last_modified", "status", "host", "req_if_none_match",
                       "req_if_modified_since", "req_if_match", "req_range", "req_if_range"):
            assert getattr(light, column) == getattr(full, column), column


def test_memoised_pretty_url_follows_the_host_lines_and_the_protocol():
    from addons.flow_snapshot import pretty_url

    def request(host: bytes | None, version: str = "HTTP/1.1", authority: str = "") -> http.Request:
        req = http.Request.make("GET", "http://10.0.0.1:8080/a.js")
        req.headers = http.Headers([(b"Host", host)] if host is not None else [])
        req.http_version = version
        req.authority = authority
        return req

    cases = [
        request(b"shop.test"),
        request(b"cdn.test"),
        request(b"cdn.test:8443"),
        request(None),
        request(b"shop.test", "HTTP/2.0", "h2.test"),
        request(b"shop.test", "HTTP/2.0"),
    ]
    for _ in range(2):  # the second pass answers from the memo
        assert [pretty_url(r) for r in cases] == [r.pretty_url for r in cases]
    assert len({pretty_url(r) for r in cases}) == 5
