"""Replay sources: HAR files cleaned entry by entry, flow files as they are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mitmproxy import exceptions, io
from mitmproxy.test import tflow

from addons.replay_sources import load_source


def entry(url: str, status: int = 200, **extra: object) -> dict:
    e: dict = {
        "startedDateTime": "2024-01-01T00:00:00.000Z",
        "time": 10,
        "request": {"method": "GET", "url": url, "httpVersion": "HTTP/1.1", "headers": []},
        "response": {
            "status": status,
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": "ETag", "value": '"a"'}],
            "content": {"size": 2, "text": "ok", "mimeType": "text/plain"},
        },
    }
    e.update(extra)
    return e


def write_har(path: Path, entries: list) -> Path:
    path.write_text(json.dumps({"log": {"version": "1.2", "entries": entries}}))
    return path


def test_har_drops_what_mitmproxy_would_choke_on_and_keeps_the_rest(tmp_path):
    bad_post = entry("http://a.test/form")
    bad_post["request"]["method"] = "POST"
    bad_post["request"]["postData"] = {"mimeType": "application/x-www-form-urlencoded"}  # no text
    entries = [
        entry("http://a.test/1"),
        entry("http://a.test/2", _fromCache="disk"),
        entry("http://a.test/3", 304),
        entry("data:image/png;base64,AAAA"),
        entry("http://a.test/4", 0, _error="net::ERR_FAILED"),
        bad_post,
        entry("https://a.test/5"),
        "not an entry",
    ]
    path = write_har(tmp_path / "mixed.har", entries)
    # what mitmproxy's own reader does with it
    with pytest.raises(exceptions.FlowReadException), open(path, "rb") as fh:
        list(io.FlowReader(fh).stream())
    loaded = load_source(path)
    assert [f.request.url for f in loaded.flows] == ["http://a.test/1", "https://a.test/5"]
    assert sum(loaded.dropped.values()) == 6
    assert loaded.dropped["cache hits"] == 1
    assert loaded.dropped["failed requests"] == 1
    assert any(reason.startswith("rejected by mitmproxy") for reason in loaded.dropped)
    assert "6 entries dropped" in loaded.summary()


def test_flow_files_load_as_they_are(tmp_path):
    path = tmp_path / "x.flows"
    with open(path, "wb") as fh:
        w = io.FlowWriter(fh)
        for _ in range(3):
            w.add(tflow.tflow(resp=True))
    loaded = load_source(path)
    assert len(loaded.flows) == 3 and not loaded.dropped


def test_unreadable_sources_name_the_file(tmp_path):
    broken = tmp_path / "broken.har"
    broken.write_text("{ not json")
    with pytest.raises(exceptions.OptionsError, match=r"broken\.har"):
        load_source(broken)
    with pytest.raises(exceptions.OptionsError, match=r"missing\.har"):
        load_source(tmp_path / "missing.har")


def test_every_real_har_loads_without_losing_count(real_hars: Path):
    """Each entry of each real HAR is either a flow or a counted drop; nothing aborts a file."""
    checked = 0
    for path in sorted(real_hars.rglob("*.har")):
        try:
            raw = json.loads(path.read_bytes().decode("utf-8-sig"))
            entries = raw["log"]["entries"]
        except (ValueError, KeyError, TypeError):
            with pytest.raises(exceptions.OptionsError, match=path.name):
                load_source(path)
            continue
        loaded = load_source(path)
        assert len(loaded.flows) + sum(loaded.dropped.values()) == len(entries), path
        assert all(f.response is not None and f.response.status_code != 304 for f in loaded.flows)
        checked += 1
    assert checked > 100
