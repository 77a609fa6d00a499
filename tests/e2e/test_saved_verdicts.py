"""End to end: flows saved with ``mitmdump -w`` carry the verdicts found after they were saved.

Three clients each get their own ETag from a tracking pixel and revalidate it twice (9 flows):
only the later flows show that the ETag identifies clients, so the verdict comes from a
detector run after most flows are in the file. Read back with mitmproxy's own FlowReader,
every pixel flow carries it (comment and marker) and a shared, stable resource does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mitmproxy import io
from origins.counting_origin import CountingServer, serve

from analysis.lab.mitm import ADDON, MitmDump

pytestmark = pytest.mark.e2e


@pytest.fixture
def plain() -> Iterator[CountingServer]:
    with serve() as server:
        yield server


def test_saved_flows_carry_the_identifier_verdict(tracker, plain, tmp_path: Path) -> None:
    saved = tmp_path / "session.flows"
    proxy = MitmDump(scripts=(ADDON,), db=tmp_path / "s.sqlite", flows=saved,
                     options={"etagwatch_client": "connection"})
    with proxy:
        for _ in range(3):  # three clients: one connection each
            with httpx.Client(proxy=proxy.url, timeout=10, trust_env=False) as http:
                tag = http.get(tracker.url + "/p.gif").headers["etag"]
                for _ in range(2):
                    assert http.get(tracker.url + "/p.gif", headers={"If-None-Match": tag}).status_code == 304
                assert http.get(plain.url + "/doc").status_code == 200
    # stopped with SIGTERM right after the last request, before any periodic detector run
    with open(saved, "rb") as fh:
        flows = list(io.FlowReader(fh).stream())
    pixel = [f for f in flows if f.request.path == "/p.gif"]
    doc = [f for f in flows if f.request.path == "/doc"]
    assert len(pixel) == 9 and len(doc) == 3 and len({f.id for f in flows}) == 12
    for f in pixel:
        assert "ETag identifies clients" in f.comment and f.marked == ":eyes:", f.comment
    assert not any("identifies" in f.comment for f in doc)
