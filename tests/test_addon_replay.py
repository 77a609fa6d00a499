"""The precondition-honouring replay addon, with mitmproxy's own server replay in front of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mitmproxy import http, io
from mitmproxy.addons import serverplayback
from mitmproxy.test import taddons, tflow

from addons import replay_responses
from addons.replay import PreconditionReplay, conditional_answer
from addons.replay_state import strong_etag

URL = "http://origin.test/doc.txt"
BODY = b"0123456789abcdefghij"
ETAG = '"v1-abc"'
LAST_MODIFIED = "Tue, 14 Nov 2023 22:13:20 GMT"


def recorded_flow(url: str = URL, body: bytes = BODY, method: str = "GET", status: int = 200) -> http.HTTPFlow:
    f = tflow.tflow()
    f.request = http.Request.make(method, url)
    f.response = http.Response.make(
        status,
        body,
        {
            "ETag": ETAG,
            "Last-Modified": LAST_MODIFIED,
            "Date": "Wed, 15 Nov 2023 10:00:00 GMT",
            "Cache-Control": "no-cache",
            "Vary": "Accept-Encoding",
            "Content-Type": "text/plain",
            "Server": "nginx",
        },
    )
    return f


def live_flow(method: str = "GET", url: str = URL, headers: dict[str, str] | None = None, body: bytes = b"") -> http.HTTPFlow:
    f = tflow.tflow()
    f.request = http.Request.make(method, url, body, headers or {})
    f.response = None
    return f


@pytest.fixture
def flow_file(tmp_path: Path) -> Path:
    path = tmp_path / "recorded.flows"
    with open(path, "wb") as fh:
        writer = io.FlowWriter(fh)
        writer.add(recorded_flow())
        writer.add(recorded_flow("http://origin.test/api/item", b'{"name":"a","n":1}'))
    return path


def replay_through(tctx, sp, addon, f: http.HTTPFlow) -> http.Response:
    """Run the hooks in mitmproxy's order: scripts' request, server replay's request, response."""
    addon.request(f)
    sp.request(f)
    if f.response is not None:
        addon.response(f)
    assert f.response is not None, "server replay answered nothing"
    return f.response


@pytest.fixture
def replaying(flow_file: Path):
    sp = serverplayback.ServerPlayback()
    addon = PreconditionReplay()
    with taddons.context(sp, addon) as tctx:
        tctx.configure(addon, etagwatch_replay=[str(flow_file)], server_replay_reuse=True)
        yield tctx, sp, addon


# --- response shapes --------------------------------------------------------------------------
def test_304_keeps_the_15_4_5_fields_and_drops_body_and_length():
    full = recorded_flow().response
    full.headers["Transfer-Encoding"] = "chunked"
    nm = replay_responses.not_modified(full)
    assert nm.status_code == 304
    assert nm.raw_content == b""
    for name in ("etag", "date", "cache-control", "vary", "server"):
        assert nm.headers[name] == full.headers[name]
    for name in ("content-length", "content-type", "transfer-encoding", "last-modified"):
        assert name not in nm.headers


def test_304_without_etag_carries_last_modified():
    full = recorded_flow().response
    del full.headers["etag"]
    assert replay_responses.not_modified(full).headers["last-modified"] == LAST_MODIFIED


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes=0-4", (0, 4)),
        ("bytes=5-", (5, 19)),
        ("bytes=-3", (17, 19)),
        ("bytes=10-100", (10, 19)),
        ("bytes=20-", False),
        ("bytes=0-1,3-4", None),
        ("items=0-1", None),
        ("bytes=5-2", None),
        # numbers past Python's 4300-digit int limit are positions past any body, not a crash
        ("bytes=" + "9" * 5000 + "-", False),
        ("bytes=2-" + "9" * 5000, (2, 19)),
        ("bytes=-" + "9" * 5000, (0, 19)),
        ("bytes=" + "0" * 5000 + "1-3", (1, 3)),
    ],
)
def test_single_range_parsing(value, expected):
    assert replay_responses.parse_single_range(value, len(BODY)) == expected


# --- conditional answers over a replayed representation ------------------------------------------
@pytest.fixture
def tctx():
    with taddons.context(PreconditionReplay()) as ctx:
        yield ctx


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"If-None-Match": ETAG}, 304),
        ({"If-None-Match": 'W/"v1-abc"'}, 304),  # weak comparison for If-None-Match
        ({"If-None-Match": '"other"'}, 200),
        ({"If-Modified-Since": LAST_MODIFIED}, 304),
        ({"If-Modified-Since": "Mon, 13 Nov 2023 00:00:00 GMT"}, 200),
        ({"If-None-Match": '"other"', "If-Modified-Since": LAST_MODIFIED}, 200),  # INM wins
        ({"If-Match": '"other"'}, 412),
        ({"If-Unmodified-Since": "Mon, 13 Nov 2023 00:00:00 GMT"}, 412),
        ({"Range": "bytes=0-4"}, 206),
        ({"Range": "bytes=0-4", "If-Range": ETAG}, 206),
        ({"Range": "bytes=0-4", "If-Range": '"old"'}, 200),
        ({"Range": "bytes=50-"}, 416),
        ({}, 200),
    ],
)
def test_conditional_answer(tctx, headers, status):
    full = recorded_flow().response
    answer = conditional_answer(live_flow(headers=headers).request, full)
    assert answer.status_code == status
    if status == 200:
        assert answer.content == BODY
    if status == 206:
        assert answer.content == BODY[0:5]
        assert answer.headers["content-range"] == f"bytes 0-4/{len(BODY)}"
    if status == 412:
        assert b"412" in answer.content


# --- through mitmproxy's server replay ---------------------------------------------------------
def test_replayed_get_becomes_304_when_the_tag_matches(replaying):
    tctx, sp, addon = replaying
    first = replay_through(tctx, sp, addon, live_flow())
    assert first.status_code == 200 and first.content == BODY
    again = replay_through(tctx, sp, addon, live_flow(headers={"If-None-Match": first.headers["etag"]}))
    assert again.status_code == 304 and again.raw_content == b""


def test_replay_turns_refresh_off_so_if_modified_since_can_match(replaying):
    tctx, sp, addon = replaying
    assert tctx.options.server_replay_refresh is False
    r = replay_through(tctx, sp, addon, live_flow(headers={"If-Modified-Since": LAST_MODIFIED}))
    assert r.status_code == 304


def test_replayed_write_with_failing_if_match_gets_412(replaying, tmp_path):
    tctx, sp, addon = replaying
    put = recorded_flow("http://origin.test/api/item", b"", method="PUT", status=204)
    put.request.content = b'{"name":"b"}'
    sp.add_flows([put])
    f = live_flow("PUT", "http://origin.test/api/item", {"If-Match": '"stale"'}, b'{"name":"b"}')
    assert replay_through(tctx, sp, addon, f).status_code == 412


def test_requests_server_replay_does_not_answer_are_left_alone(replaying):
    _tctx, sp, addon = replaying
    f = live_flow(url="http://elsewhere.test/x", headers={"If-None-Match": ETAG})
    addon.request(f)
    sp.request(f)
    assert f.response is None
    f.response = http.Response.make(200, b"from origin", {"ETag": ETAG})
    addon.response(f)
    assert f.response.status_code == 200 and f.response.content == b"from origin"


def test_conditional_can_be_switched_off(replaying):
    tctx, sp, addon = replaying
    tctx.options.etagwatch_replay_conditional = False
    r = replay_through(tctx, sp, addon, live_flow(headers={"If-None-Match": ETAG}))
    assert r.status_code == 200


# --- stateful replay ---------------------------------------------------------------------------
ITEM = "http://origin.test/api/item"


def test_stateful_put_changes_the_representation_and_stale_writers_get_412(replaying):
    tctx, sp, addon = replaying
    tctx.options.etagwatch_replay_stateful = True
    first = replay_through(tctx, sp, addon, live_flow(url=ITEM))
    old_tag = first.headers["etag"]
    ok = replay_through(
        tctx, sp, addon,
        live_flow("PUT", ITEM, {"If-Match": old_tag, "Content-Type": "application/json"}, b'{"name":"b"}'),
    )
    assert ok.status_code == 204
    assert ok.headers["etag"] == strong_etag(b'{"name":"b"}') != old_tag
    lost = replay_through(
        tctx, sp, addon,
        live_flow("PUT", ITEM, {"If-Match": old_tag, "Content-Type": "application/json"}, b'{"name":"c"}'),
    )
    assert lost.status_code == 412
    now = replay_through(tctx, sp, addon, live_flow(url=ITEM, headers={"If-None-Match": old_tag}))
    assert now.status_code == 200 and now.content == b'{"name":"b"}'
    assert replay_through(
        tctx, sp, addon, live_flow(url=ITEM, headers={"If-None-Match": ok.headers["etag"]})
    ).status_code == 304


def test_stateful_merge_patch_and_delete(replaying):
    tctx, sp, addon = replaying
    tctx.options.etagwatch_replay_stateful = True
    tag = replay_through(tctx, sp, addon, live_flow(url=ITEM)).headers["etag"]
    patched = replay_through(
        tctx, sp, addon,
        live_flow("PATCH", ITEM, {"If-Match": tag, "Content-Type": "application/merge-patch+json"}, b'{"n":2,"name":null}'),
    )
    assert patched.status_code == 204
    assert json.loads(replay_through(tctx, sp, addon, live_flow(url=ITEM)).content) == {"n": 2}
    gone = replay_through(tctx, sp, addon, live_flow("DELETE", ITEM, {"If-Match": patched.headers["etag"]}))
    assert gone.status_code == 204
    assert replay_through(tctx, sp, addon, live_flow(url=ITEM)).status_code == 404


def test_stateful_put_creates_on_a_replayed_host(replaying):
    tctx, sp, addon = replaying
    tctx.options.etagwatch_replay_stateful = True
    created = replay_through(tctx, sp, addon, live_flow("PUT", "http://origin.test/api/new", {}, b"fresh"))
    assert created.status_code == 201
    assert replay_through(tctx, sp, addon, live_flow(url="http://origin.test/api/new")).content == b"fresh"


def test_require_preconditions_answers_428_with_what_to_send(replaying):
    tctx, sp, addon = replaying
    tctx.options.etagwatch_replay_stateful = True
    tctx.options.etagwatch_require_preconditions = True
    r = replay_through(tctx, sp, addon, live_flow("PUT", ITEM, {}, b"x"))
    assert r.status_code == 428
    assert b"If-Match: " + ETAG.encode() in r.content
    # a conditional write passes the policy
    ok = replay_through(tctx, sp, addon, live_flow("PUT", ITEM, {"If-Match": ETAG}, b"x"))
    assert ok.status_code == 204


def test_stateful_answer_survives_server_replay_overwriting_it(replaying, tmp_path):
    """Server replay's request hook runs after ours and may set its own response."""
    tctx, _sp, addon = replaying
    tctx.options.etagwatch_replay_stateful = True
    f = live_flow(url=URL, headers={"If-None-Match": ETAG})
    addon.request(f)
    assert f.response.status_code == 304
    f.response = recorded_flow().response  # what server replay would do
    addon.response(f)
    assert f.response.status_code == 304


def test_a_response_the_addon_cannot_handle_goes_out_untouched(replaying, caplog):
    """A replayed body that claims gzip but is not: slicing it for a Range fails, so the
    recorded response is sent as it is and the failure is logged once."""
    from addons import guard

    tctx, sp, addon = replaying
    broken = recorded_flow("http://origin.test/broken.gz", b"")
    broken.response.headers["Content-Encoding"] = "gzip"
    broken.response.raw_content = b"definitely not gzip"
    sp.add_flows([broken])
    guard.FAILURES.clear()
    for _ in range(2):
        r = replay_through(tctx, sp, addon, live_flow(url="http://origin.test/broken.gz", headers={"Range": "bytes=0-3"}))
        assert r.status_code == 200 and r.raw_content == b"definitely not gzip"
    assert guard.FAILURES["replay.response: ValueError"] == 2
    assert len([r for r in caplog.records if "replay.response" in r.getMessage()]) == 1
