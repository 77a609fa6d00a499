"""The recorder addon: flows become exchange records in the store, whatever the flow is."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sqlite3
import weakref
from pathlib import Path

import pandas as pd
import pytest
from mitmproxy import http
from mitmproxy.addons import anticache
from mitmproxy.test import taddons, tflow

from addons import guard, option_checks
from addons.recorder import UNFINISHED, Recorder
from analysis.readers.flow_exchange import exchange_from_flow
from analysis.store import Store, load_exchanges


def validator_flow(url: str = "http://shop.test/a.js", etag: str = '"abc"', **req_headers: str) -> http.HTTPFlow:
    f = tflow.tflow(resp=True)
    f.request = http.Request.make("GET", url, b"", {k.replace("_", "-"): v for k, v in req_headers.items()})
    f.response = http.Response.make(
        200,
        b"console.log(1)",
        {"ETag": etag, "Last-Modified": "Tue, 14 Nov 2023 22:13:20 GMT", "Content-Type": "text/javascript"},
    )
    return f


@pytest.fixture
def recording(tmp_path: Path):
    rec = Recorder()
    db = tmp_path / "live.sqlite"
    with taddons.context(rec) as tctx:
        tctx.configure(rec, etagwatch_db=str(db))
        yield tctx, rec, db
        rec.done()


def rows(rec: Recorder, db: Path):
    rec.flush()
    return load_exchanges(db)


def test_each_response_becomes_the_same_record_the_flow_reader_makes(recording):
    _tctx, rec, db = recording
    flows = [validator_flow(f"http://shop.test/{i}.js", f'"t{i}"') for i in range(5)]
    for f in flows:
        rec.response(f)
    df = rows(rec, db)
    assert list(df["etag"]) == [f'"t{i}"' for i in range(5)]
    assert set(df["source_kind"]) == {"live"}
    assert set(df["client"]) == {flows[0].client_conn.peername[0]}
    with Store(db) as store:
        expected = exchange_from_flow(
            flows[0], client=df["client"][0], source="live:mitmproxy", key=store.key
        )
    got = df.iloc[0]
    for column in ("url", "etag", "etag_opaque", "etag_hash", "last_modified_ts", "content_hash", "status"):
        assert got[column] == getattr(expected, column), column


def test_secrets_never_reach_the_store_in_clear(recording):
    _tctx, rec, db = recording
    f = validator_flow(cookie="sid=SECRETCOOKIEVALUE", authorization="Bearer SECRETTOKEN")
    f.response.headers["Set-Cookie"] = "sid=SECRETSETCOOKIE; Path=/"
    rec.response(f)
    rec.flush()
    rec.done()
    raw = b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))
    for secret in (b"SECRETCOOKIEVALUE", b"SECRETTOKEN", b"SECRETSETCOOKIE", b"console.log"):
        assert secret not in raw


def test_error_killed_websocket_streamed_and_http2_flows_are_recorded_once(recording):
    _tctx, rec, db = recording
    failed = tflow.tflow(err=True)  # no response, an error
    rec.error(failed)
    killed = validator_flow("http://shop.test/killed")
    killed.kill()
    rec.response(killed)
    rec.error(killed)  # error after the response: not a second exchange
    ws = tflow.twebsocketflow()
    rec.response(ws)
    rec.error(ws)
    streamed = validator_flow("http://shop.test/stream")
    streamed.response.stream = True
    streamed.response.data.content = None
    rec.response(streamed)
    h2 = validator_flow("https://shop.test/h2")
    h2.request.http_version = h2.response.http_version = "HTTP/2.0"
    rec.response(h2)
    df = rows(rec, db)
    assert len(df) == 5
    by_url = df.set_index("url")
    assert by_url.loc[failed.request.pretty_url, "error"] == failed.error.msg
    assert pd.isna(by_url.loc["http://shop.test/stream", "body_size"])  # never buffered
    assert by_url.loc["https://shop.test/h2", "http_version"] == "HTTP/2"


def test_a_response_cut_short_ends_in_the_error_hook_and_is_recorded_once(recording):
    """mitmproxy's flow when the origin hangs up mid-body: response headers, no body, an error,
    and only the error hook (tests/e2e/test_proxy_upstream_cut.py has the real thing)."""
    _tctx, rec, db = recording
    cut = validator_flow("http://shop.test/cut")
    cut.response.data.content = None
    cut.error = tflow.terr("peer closed connection (received 3 bytes, expected 14)")
    rec.error(cut)
    rec.error(cut)  # a hook more for the same flow is still one exchange
    df = rows(rec, db)
    assert len(df) == 1
    got = df.iloc[0]
    assert (got["status"], got["etag"], got["error"]) == (200, '"abc"', cut.error.msg)
    assert pd.isna(got["body_size"]) and got["content_hash"] is None


def test_flows_in_flight_when_the_recorder_stops_are_stored_once_with_why(recording):
    _tctx, rec, db = recording
    ended, headers_only, waiting = validator_flow("http://shop.test/ended"), validator_flow(
        "http://shop.test/half"), tflow.tflow()
    headers_only.response.data.content = None
    for f in (ended, headers_only, waiting):
        rec.requestheaders(f)
    rec.response(ended)
    rec.done()
    rec.error(waiting)  # a hook after the stop: the flow is stored already
    by_url = load_exchanges(db).set_index("url")
    assert sorted(by_url.index) == sorted(f.request.pretty_url for f in (ended, headers_only, waiting))
    assert pd.isna(by_url.loc["http://shop.test/ended", "error"])
    assert by_url.loc["http://shop.test/half", "status"] == 200
    assert by_url.loc["http://shop.test/half", "error"] == UNFINISHED
    assert by_url.loc[waiting.request.pretty_url, "error"] == UNFINISHED


def test_a_failing_flow_passes_untouched_and_is_logged_once(recording, caplog):
    _tctx, rec, db = recording
    guard.FAILURES.clear()
    caplog.set_level(logging.WARNING)
    broken = [validator_flow(f"http://shop.test/b{i}") for i in range(3)]
    for f in broken:
        f.request.headers = None  # what no reader can turn into a record
        before = f.response.get_state()
        rec.response(f)  # must not raise
        assert f.response.get_state() == before
    rec.response(validator_flow("http://shop.test/fine"))
    assert sum(guard.FAILURES.values()) == 3
    assert len([r for r in caplog.records if "recorder.response" in r.getMessage()]) == 1
    assert list(rows(rec, db)["url"]) == ["http://shop.test/fine"]


def test_client_modes(recording):
    tctx, rec, db = recording
    a, b = validator_flow("http://shop.test/1"), validator_flow("http://shop.test/2")
    tctx.options.etagwatch_client = "connection"
    rec.response(a)
    tctx.options.etagwatch_client = "profile-7"
    rec.response(b)
    assert list(rows(rec, db)["client"]) == [a.client_conn.id, "profile-7"]


def test_redaction_keeps_validators_out_of_the_store(recording):
    tctx, rec, db = recording
    tctx.options.etagwatch_redact_validators = True
    rec.response(validator_flow(etag='"user-12345-tracking-id"', if_none_match='"user-12345-tracking-id"'))
    rec.done()
    raw = b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))
    assert b"user-12345-tracking-id" not in raw


def test_done_commits_everything(tmp_path):
    rec = Recorder()
    db = tmp_path / "done.sqlite"
    with taddons.context(rec) as tctx:
        tctx.configure(rec, etagwatch_db=str(db))
        for i in range(50):
            rec.response(validator_flow(f"http://shop.test/{i}"))
        rec.done()
    assert sqlite3.connect(db).execute("select count(*) from exchanges").fetchone()[0] == 50


def test_empty_db_records_nothing_but_still_feeds_subscribers(tmp_path):
    rec = Recorder()
    seen = []
    rec.subscribe(lambda flow, ex: seen.append(ex.url))
    with taddons.context(rec) as tctx:
        tctx.configure(rec, etagwatch_db="")
        rec.response(validator_flow())
        assert rec.writer is None and seen == ["http://shop.test/a.js"]
    assert not list(tmp_path.iterdir())


def test_anticache_warns_at_start(tmp_path, caplog):
    rec = Recorder()
    caplog.set_level(logging.WARNING)
    with taddons.context(anticache.AntiCache(), rec) as tctx:
        tctx.configure(rec, etagwatch_db="", anticache=True)
    assert any("anticache" in r.getMessage() and "If-None-Match" in r.getMessage() for r in caplog.records)


def test_unopenable_store_at_startup_is_one_error_line_and_no_recording(tmp_path, caplog):
    rec = Recorder()
    bad = tmp_path / "not-a-store.sqlite"
    bad.write_text("this is not sqlite" * 100)
    with taddons.context(rec) as tctx, caplog.at_level(logging.ERROR):
        tctx.configure(rec, etagwatch_db=str(bad))
        assert rec.store_path is None and rec.writer is None
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"etagwatch: etagwatch_db={bad}: not an etagwatch store (file is not a database); nothing is recorded"]


def test_a_store_that_cannot_be_opened_is_an_option_error_naming_it(tmp_path: Path, monkeypatch) -> None:
    from mitmproxy import exceptions

    monkeypatch.chdir(tmp_path)  # mitmproxy rolls the option back to the default store, here
    bad = tmp_path / "notes.sqlite"
    bad.write_text("these are notes, not a database\n" * 100)
    rec = Recorder()
    with taddons.context(rec) as tctx:
        option_checks.started()  # a running proxy: mitmproxy rolls the option back
        with pytest.raises(exceptions.OptionsError, match=r"notes\.sqlite.*not a database"):
            tctx.options.update(etagwatch_db=str(bad))
        assert tctx.options.etagwatch_db == "etagwatch.sqlite"
        assert rec.store_path == str(tmp_path / "etagwatch.sqlite")
        rec.done()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")
def test_the_proxy_process_never_opens_the_store_itself(recording) -> None:
    """The writer child owns SQLite: the proxy's process holds no handle on the store files."""
    _, rec, db = recording
    rec.response(validator_flow())
    rec.flush()
    opened = {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}
    store_files = {str(db.resolve()), f"{db.resolve()}-wal", f"{db.resolve()}-shm"}
    assert not opened & store_files
    assert len(load_exchanges(db)) == 1


def test_writer_verdicts_reach_live_flows_only_and_old_flows_are_forgotten(tmp_path: Path, monkeypatch):
    """Verdicts from the writer process find their flow by id while it is alive; the map of
    recent flows stays bounded (newest kept) and never keeps a flow alive."""
    from addons import recorder as recorder_module

    monkeypatch.setattr(recorder_module, "RECENT_FLOWS", 10)
    rec, got = Recorder(), []
    rec.subscribe(lambda flow, ex: None, verdicts=got.extend)  # a judge: the writer replaces it
    loop = asyncio.new_event_loop()
    try:
        with taddons.context(rec) as tctx:
            tctx.configure(rec, etagwatch_db=str(tmp_path / "v.sqlite"))
            assert rec.judged_in_writer

            async def start() -> None:
                rec.running()

            loop.run_until_complete(start())
            kept = validator_flow("http://shop.test/kept.js", etag="unquoted")  # a syntax error
            rec.response(kept)
            dropped = validator_flow("http://shop.test/dropped.js", etag="unquoted-too")
            rec.response(dropped)
            dropped_ref = weakref.ref(dropped)
            del dropped
            gc.collect()
            assert dropped_ref() is None  # the recorder keeps no flow alive
            rec.flush()
            loop.run_until_complete(asyncio.sleep(0.01))
            alive = [validator_flow(f"http://shop.test/{i}.js") for i in range(25)]
            for f in alive:
                rec.response(f)
            assert len(rec._recent) <= 10 and alive[-1].id in rec._recent
            rec.done()
    finally:
        loop.close()
    assert [flow for flow, _ in got] == [kept]
    assert "ETag unquoted breaks RFC 9110" in got[0][1].own[0].sentence
