"""End to end: a real mitmdump running addons/etagwatch.py in front of a real nginx, driven by
httpx. Exchanges land in the store, annotations in the saved flows, replay answers 304, 412,
206 and 428, and a kill -9 loses at most the last second of exchanges."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from mitmproxy import io
from mitmproxy.utils.emoji import emoji

from analysis.lab.mitm import ADDON, MitmDump, MitmWeb
from analysis.privacy import sanitise_url
from analysis.store import Store, load_exchanges

pytestmark = pytest.mark.e2e


@pytest.fixture
def proxy_factory() -> Iterator[Callable[..., MitmDump]]:
    """Start mitmdump with only the etagwatch addon; every proxy is stopped at the end."""
    started: list[MitmDump] = []

    def start(**kwargs: object) -> MitmDump:
        proxy = MitmDump(scripts=(ADDON,), **kwargs)  # type: ignore[arg-type]
        started.append(proxy)
        return proxy.start()

    try:
        yield start
    finally:
        for proxy in reversed(started):
            proxy.stop()


def client(proxy: MitmDump) -> httpx.Client:
    return httpx.Client(proxy=proxy.url, timeout=10, trust_env=False)


def saved_flows(path: Path) -> list:
    with open(path, "rb") as fh:
        return list(io.FlowReader(fh).stream())


def test_exchanges_land_in_the_store_and_verdicts_in_the_saved_flows(
    nginx_origin, proxy_factory, tmp_path
):
    db, flows = tmp_path / "live.sqlite", tmp_path / "live.flows"
    proxy = proxy_factory(db=db, flows=flows)
    url = nginx_origin.url + "/index.html"
    with client(proxy) as http:
        first = http.get(url)
        etag = first.headers["etag"]
        revalidated = http.get(url, headers={"If-None-Match": etag})
        # RFC 9110: If-None-Match is present, so If-Modified-Since is ignored and the answer is
        # 304; nginx wants both to say "not modified" and resends the body.
        missed = http.get(
            url,
            headers={"If-None-Match": etag, "If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"},
        )
    assert (first.status_code, revalidated.status_code, missed.status_code) == (200, 304, 200)
    proxy.stop()  # SIGTERM: the addon's done hook flushes the writer
    df = load_exchanges(db)
    assert list(df["status"]) == [200, 304, 200]
    assert list(df["etag"]) == [etag, etag, etag]
    assert set(df["client"]) == {"127.0.0.1"} and set(df["source_kind"]) == {"live"}
    assert list(df["req_if_none_match"])[1:] == [etag, etag]
    saved = saved_flows(flows)
    assert [f.comment for f in saved[:2]] == ["", ""]
    assert "missed 304" in saved[2].comment and saved[2].marked == ":recycle:"


def test_a_mitmweb_user_sees_the_writer_processs_verdicts_in_the_flow_list(nginx_origin, tmp_path):
    """With a store and no flows streamed to a file, the writer process judges; its verdict
    reaches the flow that mitmweb shows (comment and marker, via mitmweb's own API)."""
    db = tmp_path / "web.sqlite"
    with MitmWeb(scripts=(ADDON,), db=db) as web:
        url = nginx_origin.url + "/index.html"
        with client(web) as http:
            etag = http.get(url).headers["etag"]
            missed = http.get(
                url,
                headers={"If-None-Match": etag, "If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"},
            )
            assert missed.status_code == 200  # nginx resends what RFC 9110 says is current
        shown: list[dict] = []
        with httpx.Client(trust_env=False, timeout=10) as ui:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                shown = ui.get(web.web_url + "/flows").json()
                if len(shown) == 2 and shown[1]["comment"]:
                    break
                time.sleep(0.1)
    assert [f["response"]["status_code"] for f in shown] == [200, 200]
    assert shown[0]["comment"] == "" and shown[0]["marked"] == ""
    # mitmweb's API shows markers as the emoji they name
    assert "missed 304" in shown[1]["comment"] and shown[1]["marked"] == emoji[":recycle:"]
    assert len(load_exchanges(db)) == 2


def test_kill_9_loses_at_most_the_last_second(nginx_origin, proxy_factory, tmp_path):
    """Every exchange here also draws a verdict (a missed 304) from the writer process, whose
    writes to the killed proxy fail: it must store what it got all the same."""
    db = tmp_path / "durable.sqlite"
    proxy = proxy_factory(db=db)
    answered: list[tuple[str, float]] = []
    with client(proxy) as http:
        etag = http.get(f"{nginx_origin.url}/app.css").headers["etag"]
        missed = {"If-None-Match": etag, "If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
        deadline = time.monotonic() + 3.0
        i = 0
        while time.monotonic() < deadline:
            url = f"{nginx_origin.url}/app.css?n={i}"
            assert http.get(url, headers=missed).status_code == 200
            answered.append((url, time.time()))
            i += 1
            time.sleep(0.02)
    assert proxy.process is not None
    killed_at = time.time()
    os.killpg(proxy.process.pid, signal.SIGKILL)
    proxy.process.wait(timeout=5)
    stored = set(load_exchanges(db)["url"])
    with Store(db) as store:  # query values are stored keyed-hashed: compare those
        key = store.key
    answered = [(sanitise_url(url, key)[0], t) for url, t in answered]
    old_enough = [url for url, t in answered if t < killed_at - 1.0]
    assert len(old_enough) > 20
    missing = [url for url in old_enough if url not in stored]
    assert not missing, f"{len(missing)} exchanges older than 1 s lost, first {missing[:3]}"


@pytest.fixture
def recorded(nginx_origin, proxy_factory, tmp_path) -> tuple[Path, Path, dict[str, str]]:
    """Flows and a HAR of a few GETs through mitmdump; nginx is stopped afterwards, so every
    later answer provably comes from replay."""
    flows, har = tmp_path / "rec.flows", tmp_path / "rec.har"
    proxy = proxy_factory(db=tmp_path / "rec.sqlite", flows=flows, options={"hardump": str(har)})
    etags = {}
    with client(proxy) as http:
        for name in ("index.html", "data.json"):
            r = http.get(f"{nginx_origin.url}/{name}")
            assert r.status_code == 200
            etags[name] = r.headers["etag"]
    proxy.stop()
    nginx_origin.stop()
    return flows, har, etags


def test_replay_answers_304_412_206_from_recorded_flows(
    recorded, nginx_origin, proxy_factory, tmp_path
):
    flows, _, etags = recorded
    proxy = proxy_factory(
        db=tmp_path / "replay.sqlite",
        options={
            "etagwatch_replay": str(flows),
            "server_replay_reuse": "true",
            "server_replay_extra": "404",
        },
    )
    url = nginx_origin.url + "/data.json"
    with client(proxy) as http:
        full = http.get(url)
        not_modified = http.get(url, headers={"If-None-Match": etags["data.json"]})
        failed = http.get(url, headers={"If-Match": '"not-the-current-tag"'})
        part = http.get(url, headers={"Range": "bytes=0-4"})
        stale_range = http.get(url, headers={"Range": "bytes=0-4", "If-Range": '"old"'})
    assert full.status_code == 200 and full.content == b'{"items": [1, 2, 3]}\n'
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert (
        "content-length" not in not_modified.headers
        and not_modified.headers["etag"] == etags["data.json"]
    )
    assert failed.status_code == 412
    assert part.status_code == 206 and part.content == b'{"ite'
    assert part.headers["content-range"] == f"bytes 0-4/{len(full.content)}"
    assert stale_range.status_code == 200 and stale_range.content == full.content


def test_stateful_replay_from_a_har_prevents_lost_updates(
    recorded, nginx_origin, proxy_factory, tmp_path
):
    _, har, etags = recorded
    proxy = proxy_factory(
        db=tmp_path / "stateful.sqlite",
        options={
            "etagwatch_replay": str(har),
            "etagwatch_replay_stateful": "true",
            "etagwatch_require_preconditions": "true",
            "server_replay_extra": "404",
        },
    )
    url = nginx_origin.url + "/data.json"
    tag = etags["data.json"]
    with client(proxy) as http:
        unconditional = http.put(url, content=b'{"items": []}')
        alice = http.put(url, content=b'{"items": [4]}', headers={"If-Match": tag})
        bob = http.put(url, content=b'{"items": [5]}', headers={"If-Match": tag})  # stale tag
        now = http.get(url)
        revalidate_old = http.get(url, headers={"If-None-Match": tag})
        revalidate_new = http.get(url, headers={"If-None-Match": alice.headers["etag"]})
    assert (
        unconditional.status_code == 428 and b"If-Match: " + tag.encode() in unconditional.content
    )
    assert alice.status_code == 204 and alice.headers["etag"] != tag
    assert bob.status_code == 412
    assert now.content == b'{"items": [4]}' and now.headers["etag"] == alice.headers["etag"]
    assert revalidate_old.status_code == 200
    assert revalidate_new.status_code == 304
