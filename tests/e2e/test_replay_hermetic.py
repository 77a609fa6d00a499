"""End to end: replay through a real mitmdump never reaches the network unless asked to.

A loopback origin counts every TCP connection and request. Flows recorded from it are replayed
with ``etagwatch_replay`` and with mitmproxy's own ``server_replay``, the origin still running:
first visits, revalidations (If-None-Match, If-Match), a repeat, a HEAD, an unrecorded URL and a
CONNECT to the origin all stay in the proxy (zero connections reach it); with
``etagwatch_replay_passthrough`` they do reach it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from origins.counting_origin import BODY, ETAG, CountingServer, serve

from analysis.lab.mitm import ADDON, MitmDump

pytestmark = pytest.mark.e2e


@pytest.fixture
def origin() -> Iterator[CountingServer]:
    with serve() as server:
        yield server


@pytest.fixture
def recording(origin: CountingServer, tmp_path: Path) -> Path:
    """Flows (and a HAR beside them) of GET /doc and GET /other through mitmdump; the origin's
    counters reset after."""
    flows = tmp_path / "profile-1.flows"
    proxy = MitmDump(scripts=(ADDON,), db=tmp_path / "rec.sqlite", flows=flows,
                     options={"hardump": str(tmp_path / "profile-1.har")})
    with proxy, httpx.Client(proxy=proxy.url, timeout=10, trust_env=False) as http:
        assert http.get(origin.url + "/doc").status_code == 200
        assert http.get(origin.url + "/other").status_code == 200
    assert origin.requests == ["GET /doc", "GET /other"]
    origin.connections, origin.requests = 0, []
    return flows


def visit(proxy: MitmDump, origin: CountingServer) -> dict[str, httpx.Response]:
    """The requests a privacy study replays: revisits and revalidations of what was recorded,
    plus one URL the recording lacks and one CONNECT to the origin's port."""
    doc = origin.url + "/doc"
    with httpx.Client(proxy=proxy.url, timeout=10, trust_env=False, verify=False) as http:
        got = {
            "first": http.get(doc),
            "if-none-match": http.get(doc, headers={"If-None-Match": ETAG}),
            "if-match": http.get(doc, headers={"If-Match": '"someone-elses"'}),
            "again": http.get(doc),
            "head": http.head(doc),
            "other": http.get(origin.url + "/other"),
            "missing": http.get(origin.url + "/missing"),
        }
        with contextlib.suppress(httpx.HTTPError):  # eager mode reaches the origin (no TLS)
            got["connect"] = http.get(doc.replace("http://", "https://"))
    return got


@pytest.mark.parametrize(("option", "source"), [
    ("etagwatch_replay", ".flows"), ("etagwatch_replay", ".har"), ("server_replay", ".flows"),
])
def test_replay_is_hermetic_by_default(origin, recording, tmp_path, option, source):
    replayed = str(recording.with_suffix(source))
    with MitmDump(scripts=(ADDON,), db=tmp_path / "replay.sqlite", options={option: replayed}) as proxy:
        got = visit(proxy, origin)
        log = proxy.log_path.read_text()
    assert origin.connections == 0 and origin.requests == []
    assert got["first"].status_code == 200 and got["first"].content == BODY
    assert got["if-none-match"].status_code == 304
    assert got["if-match"].status_code == 412
    assert got["again"].status_code == 200 and got["again"].content == BODY
    assert got["head"].status_code == 200 and got["head"].content == b""
    assert got["other"].status_code == 200
    missing = got["missing"]
    assert missing.status_code == 404
    assert missing.headers["x-etagwatch-replay"] == f"no recorded response for GET {origin.url}/missing"
    assert got["connect"].status_code == 404  # lazy connections: the CONNECT opened nothing
    assert f"no recorded response for GET {origin.url}/missing" in log


def test_hermetic_replay_opens_no_connection_for_a_tunnel_it_passes_through(origin, recording, tmp_path):
    """ignore_hosts makes mitmproxy relay the CONNECT tunnel as raw TCP, never seeing a request:
    the connection itself is refused."""
    options = {"etagwatch_replay": str(recording), "ignore_hosts": r"127\.0\.0\.1"}
    with MitmDump(scripts=(ADDON,), db=tmp_path / "replay.sqlite", options=options) as proxy:
        with httpx.Client(proxy=proxy.url, timeout=10, trust_env=False, verify=False) as http, \
                pytest.raises(httpx.HTTPError):
            http.get(origin.url.replace("http://", "https://") + "/doc")
        log = proxy.log_path.read_text()
    assert origin.connections == 0 and origin.requests == []
    assert f"refused a connection to 127.0.0.1:{origin.server_address[1]}" in log


def test_passthrough_sends_what_the_recording_lacks_to_the_network(origin, recording, tmp_path):
    options = {"etagwatch_replay": str(recording), "etagwatch_replay_passthrough": "true"}
    with MitmDump(scripts=(ADDON,), db=tmp_path / "replay.sqlite", options=options) as proxy:
        got = visit(proxy, origin)
    assert got["first"].status_code == 200 and got["missing"].status_code == 200
    # server replay used each recorded response once; the rest went to the origin
    assert "GET /missing" in origin.requests and "GET /doc" in origin.requests
    assert origin.connections > 0
