"""End to end: the live verdict on every flow is the one ``etagwatch analyze`` reaches on the
same store, on every flow of the resource, once, within ``VERDICT_DELAY`` of the last flow.

A real mitmweb (the writer process judges) or mitmdump saving flows with ``-w`` (judged on the
event loop, the file rewritten at shutdown) runs the entry script in front of three origins:
a tracking pixel (a unique ETag per client, kept with 304s: identifier), nginx (one ETag for
every client: stable) and two "backends" answering in turn with their own ETags for the same
bytes (churn). Three clients (one connection each) fetch and revalidate each resource. The
flow list is read through mitmweb's API or from the saved file, then compared resource by
resource with ``etagwatch analyze STORE --json -``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mitmproxy import io
from mitmproxy.utils.emoji import emoji
from origins.buggy_origin import serve as serve_buggy

from addons.live_detectors import WORDING
from addons.live_judge import VERDICT_DELAY
from analysis.lab.mitm import ADDON, MitmDump, MitmWeb
from analysis.lab.origins.tracker import TrackerOrigin

pytestmark = pytest.mark.e2e

CLIENTS = 3
#: What each resource is, and the detector verdict ``analyze`` must reach for it.
EXPECTED = {"/p.gif": "identifier", "/index.html": "stable", "/resource.txt": "churn"}


@pytest.fixture
def churn() -> Iterator[str]:
    with serve_buggy("churn") as origin:
        yield str(origin)  # its /resource.txt


def browse(proxy: MitmDump, urls: dict[str, str], clients: int = CLIENTS) -> int:
    """Each client fetches every URL, then revalidates it twice with the ETag it holds (the
    tracker's and nginx's answer 304; the churning pair answers 200 from the other backend
    half the time); how many requests were sent."""
    sent = 0
    for _ in range(clients):
        with httpx.Client(proxy=proxy.url, timeout=10, trust_env=False) as http:
            for url in urls.values():
                tag = http.get(url).headers["etag"]
                for _ in range(2):
                    got = http.get(url, headers={"If-None-Match": tag})
                    tag = got.headers.get("etag", tag)
                sent += 3
    return sent


def shown_verdicts(comment: str) -> list[str]:
    """The detector verdicts a comment states (by the sentence each one starts with), once
    per sentence: a near-duplicate appended by a later re-run counts twice."""
    return [verdict for verdict, (_, start) in WORDING.items() for _ in range(comment.count(start))]


def analyzed(store: Path) -> dict[str, str]:
    """Path -> verdict of every resource, as ``etagwatch analyze STORE --json -`` says."""
    out = subprocess.run([sys.executable, "-m", "analysis", "analyze", str(store), "--json", "-"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return {httpx.URL(r["url"]).path: r["verdict"] for r in json.loads(out)["resources"]}


def agrees(flows: list[tuple[str, str, str]], verdicts: dict[str, str]) -> list[str]:
    """What differs between the flows' ``(path, comment, marker emoji)`` and the verdict of
    their resource (empty when they agree): one detector sentence for a verdict worth a look,
    none for the others, and the marker that goes with it."""
    problems = []
    for path, comment, marked in flows:
        verdict = verdicts.get(path)
        wanted = [verdict] if verdict in WORDING else []
        marker = {"identifier": ":eyes:", "churn": ":recycle:"}.get(verdict or "", "")
        if shown_verdicts(comment) != wanted or marked != (emoji[marker] if marker else ""):
            problems.append(f"{path} ({verdict}): {comment!r} {marked!r}")
    return problems


def web_flows(web: MitmWeb) -> list[tuple[str, str, str]]:
    with httpx.Client(trust_env=False, timeout=10) as ui:
        return [(f["request"]["path"], f["comment"], f["marked"]) for f in ui.get(web.web_url + "/flows").json()]


def warm_up(web: MitmWeb, tracker: TrackerOrigin) -> None:
    """A first identifier on another pixel, so the writer process has its detectors loaded
    (VERDICT_DELAY holds once they are; the first run imports pandas)."""
    browse(web, {"warm": tracker.url + "/warm.gif"}, clients=2)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        warm = [c for p, c, _ in web_flows(web) if p == "/warm.gif"]
        if warm and all("identifies clients" in c for c in warm):
            return
        time.sleep(0.1)
    raise AssertionError("the warm-up pixel was never judged")


def test_mitmweb_shows_on_every_flow_the_verdict_analyze_reaches(tracker, nginx_origin, churn, tmp_path):
    store = tmp_path / "web.sqlite"
    urls = {"/p.gif": tracker.url + "/p.gif", "/index.html": nginx_origin.url + "/index.html",
            "/resource.txt": churn}
    with MitmWeb(scripts=(ADDON,), db=store, options={"etagwatch_client": "connection"}) as web:
        warm_up(web, tracker)
        sent = browse(web, urls)
        last_request = time.monotonic()
        flows, changed = [], last_request
        while time.monotonic() - changed < 2 * VERDICT_DELAY:  # until nothing changes for 4 s
            shown = [f for f in web_flows(web) if f[0] in EXPECTED]
            if shown != flows:
                flows, changed = shown, time.monotonic()
            if changed - last_request > VERDICT_DELAY + 10:
                break
            time.sleep(0.05)
        delay = changed - last_request  # when the flow list took its final form
    assert len(flows) == sent == 3 * CLIENTS * len(EXPECTED)
    assert not agrees(flows, EXPECTED), agrees(flows, EXPECTED)
    print(f"every flow had its last annotation {delay:.2f} s after the last request")
    assert delay <= VERDICT_DELAY
    verdicts = analyzed(store)
    assert {p: verdicts[p] for p in EXPECTED} == EXPECTED
    assert not agrees(flows, verdicts)


def test_saved_flows_carry_the_verdict_analyze_reaches(tracker, nginx_origin, churn, tmp_path):
    """Flows streamed to a file are judged on the event loop; the file is rewritten at
    shutdown with each resource's last verdict, replacing the one a flow was saved with."""
    store, saved = tmp_path / "dump.sqlite", tmp_path / "dump.flows"
    urls = {"/p.gif": tracker.url + "/p.gif", "/index.html": nginx_origin.url + "/index.html",
            "/resource.txt": churn}
    with MitmDump(scripts=(ADDON,), db=store, flows=saved, options={"etagwatch_client": "connection"}) as proxy:
        sent = browse(proxy, urls)
    with open(saved, "rb") as fh:
        flows = [(f.request.path, f.comment, emoji.get(f.marked, f.marked)) for f in io.FlowReader(fh).stream()]
    assert len(flows) == sent
    verdicts = analyzed(store)
    assert {p: verdicts[p] for p in EXPECTED} == EXPECTED
    assert not agrees(flows, verdicts), agrees(flows, verdicts)
