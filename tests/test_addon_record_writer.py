"""The recorder's writer process: rows reach the store without a flush, survive SIGTERM of the
process group, and failures surface as errors instead of hangs."""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import time
from pathlib import Path

import msgspec
import pytest
from mitmproxy import http

from addons.flow_snapshot import RecordConfig, Snapshot
from addons.live_checks import _decide, precondition_lines
from addons.record_writer import RecordWriter, RecordWriterError
from analysis.conditional import evaluate
from analysis.exchange import Exchange
from analysis.store import Store, load_exchanges


def exchange(i: int) -> Exchange:
    return Exchange(
        source="live:mitmproxy", source_kind="live", client="127.0.0.1", method="GET",
        url=f"http://shop.test/{i}.js", host="shop.test", status=200, etag=f'"t{i}"',
    )


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "w.sqlite"
    Store(path).close()
    return path


def count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("select count(*) from exchanges").fetchone()[0]


def test_rows_are_committed_without_a_flush_and_close_ends_the_child(store_path):
    writer = RecordWriter(store_path)
    try:
        for i in range(30):
            writer.put(exchange(i))
        deadline = time.monotonic() + 10  # generous: the sender ships every 0.1 s
        while count(store_path) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert count(store_path) == 30
    finally:
        writer.close()
    assert writer._proc.poll() is not None
    assert list(load_exchanges(store_path)["etag"]) == [f'"t{i}"' for i in range(30)]


def test_sigterm_to_the_child_loses_nothing(store_path):
    """mitmdump's process group gets SIGTERM on stop; the child must wait for the last rows."""
    with RecordWriter(store_path) as writer:
        writer.put(exchange(0))
        writer.flush(timeout=30)
        os.kill(writer._proc.pid, signal.SIGTERM)
        time.sleep(0.2)
        for i in range(1, 5):
            writer.put(exchange(i))
    assert count(store_path) == 5


def test_a_store_that_cannot_be_opened_is_refused_at_start_with_the_reason(store_path):
    with sqlite3.connect(store_path) as conn:
        conn.execute("drop table exchanges")
    with pytest.raises(RecordWriterError, match="not an etagwatch store"):
        RecordWriter(store_path)


def test_the_child_creates_the_store_and_hands_back_its_key(tmp_path):
    path = tmp_path / "new.sqlite"
    writer = RecordWriter(path)
    writer.close()
    with Store(path) as store:
        assert store.key == writer.key and len(writer.key) >= 16


def test_a_failing_store_is_reported_at_flush(store_path):
    writer = RecordWriter(store_path)
    with sqlite3.connect(store_path) as conn:  # broken while the writer runs
        conn.execute("drop table exchanges")
    try:
        writer.put(exchange(0))
        with pytest.raises(RecordWriterError, match="exchanges"):
            writer.flush(timeout=30)
        with pytest.raises(RecordWriterError):
            writer.put(exchange(1))
    finally:
        with pytest.raises(RecordWriterError):
            writer.close()


def test_a_dead_child_is_an_error_not_a_hang(store_path):
    writer = RecordWriter(store_path)
    writer._proc.kill()
    writer._proc.wait()
    writer.put(exchange(0))
    with pytest.raises(RecordWriterError, match="died"):
        writer.flush(timeout=30)
    with pytest.raises(RecordWriterError):
        writer.close()


@pytest.mark.parametrize(
    "headers",
    [
        [("If-None-Match", '"a"')],
        [("if-none-match", '"b"'), ("Accept", "*/*")],
        [("If-None-Match", '"x"'), ("If-None-Match", '"a"')],  # repeated lines combine
        [("If-None-Match", '"b"'), ("If-Modified-Since", "Tue, 14 Nov 2023 22:13:20 GMT")],
        [("If-Modified-Since", "Tue, 14 Nov 2023 22:13:20 GMT")],
        [("If-Modified-Since", "Mon, 13 Nov 2023 00:00:00 GMT")],
        [("If-Match", '"b"'), ("If-None-Match", '"a"')],
        [("If-Unmodified-Since", "Mon, 13 Nov 2023 00:00:00 GMT"), ("If-None-Match", "*")],
        [("Range", "bytes=0-1"), ("If-Range", '"a"'), ("If-None-Match", '"z"')],
        [("Cookie", "a=1"), ("If-None-Match", 'W/"a"')],
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_memoised_decision_is_evaluates_decision(headers, method):
    """The live check keeps only the precondition lines; the decision must not change."""
    fields = [(n.encode(), v.encode()) for n, v in headers]
    request = http.Request.make(method, "http://shop.test/a.js", b"", http.Headers(fields))
    validators = {"etag": '"a"', "last_modified": "Tue, 14 Nov 2023 22:13:20 GMT"}
    expected = evaluate(method, request.headers, **validators)
    got = _decide(method, precondition_lines(request.headers.fields), validators["etag"], validators["last_modified"])
    assert (got.status, got.reason, got.rfc) == (expected.status, expected.reason, expected.rfc)


def snapshot(flow_id: str, status: int, req: list[tuple[bytes, bytes]]) -> Snapshot:
    """A flow of http://shop.test/a.js whose response carries ETag "v2"."""
    return Snapshot(
        flow_id, "127.0.0.1", 1.7e9, "GET", "http://shop.test/a.js", "HTTP/1.1",
        [(b"host", b"shop.test"), *req], None, [(b"etag", b'"v2"')], status, None, 0, 0, None, None,
    )


def test_the_child_judges_when_configured_and_sends_verdicts_before_the_flush_answer(store_path):

    got: list[list] = []
    with RecordWriter(store_path, on_verdicts=got.extend) as writer:
        config = RecordConfig(source="live:mitmproxy", source_kind="live", key=writer.key)
        writer.configure(config)
        writer.put_snapshot(snapshot("f1", 304, []))  # stored, not judged
        writer.flush()
        assert got == []
        writer.configure(msgspec.structs.replace(config, judge=True))
        writer.put_snapshot(snapshot("f2", 200, []))
        writer.put_snapshot(snapshot("f3", 304, [(b"if-none-match", b'"v1"')]))  # v2 is current
        writer.flush()
        assert [(flow_id, [sev for sev, _ in own], resource) for flow_id, own, resource in got] == [
            ("f3", ["error"], None)]  # no detector verdict yet: the resource part is unchanged
        assert "304 although If-None-Match" in got[0][1][0][1]
        assert writer.host_counters["shop.test"]["exchanges"] == 2  # judged ones only
    assert count(store_path) == 3


def test_a_proxy_that_stopped_reading_costs_no_rows(store_path):
    """After a kill -9 of the proxy the child's verdict writes fail; it stores what it got."""
    from addons.record_writer import CONFIG, SNAPSHOTS, serve
    from analysis.framing import write_frame

    class DeadProxy(io.BytesIO):
        def write(self, data: bytes) -> int:
            if self.getbuffer().nbytes:  # the first frame (OPENED) got through
                raise BrokenPipeError(32, "Broken pipe")
            return super().write(data)

    encode = msgspec.msgpack.encode
    key = Store(store_path).key
    wire = io.BytesIO()
    write_frame(wire, CONFIG, encode(RecordConfig(source="live:mitmproxy", source_kind="live", key=key, judge=True)))
    stale = [(b"if-none-match", b'"v1"')]  # each 304 below draws a verdict
    write_frame(wire, SNAPSHOTS, encode([snapshot("a", 304, stale), snapshot("b", 304, stale)]))
    write_frame(wire, SNAPSHOTS, encode([snapshot("c", 304, stale)]))
    wire.seek(0)
    serve(str(store_path), wire, DeadProxy())
    assert list(load_exchanges(store_path)["flow_id"]) == ["a", "b", "c"]
