"""Bulk ingest's fast path: store rows built directly (no record object), a writer process
that never stalls the reader (frames queued while its pipe is full, WAL checkpointed by a
thread of its own), and what it stores is what the record path stores."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time

import msgspec
import pytest
from test_readers_har import make_entry, make_har, write_har

from analysis.exchange import COLUMNS
from analysis.readers import open_capture
from analysis.readers.har import HarReader
from analysis.readers.record import HOST, build_exchange, build_row
from analysis.store import Store, connect
from analysis.writer_process import BUFFER_BYTES, PIPE_BYTES, Checkpointer, WriterProcess

KEY = b"k" * 32


@pytest.mark.parametrize("redact", [False, True])
def test_rows_are_the_records_fields_in_column_order(real_hars, redact):
    """Every real HAR: the rows the ingest stores equal the records' fields, skips and notes
    alike, so no reader of the store can tell which path built them."""
    files = sorted(real_hars.rglob("*.har"))
    assert len(files) > 50
    rows_seen = 0
    for path in files:
        try:
            records = list(open_capture(path, client="c", key=KEY, redact_validators=redact))
            rows = list(open_capture(path, client="c", key=KEY, redact_validators=redact,
                                     rows=True))
        except Exception as exc:  # a file that is not a HAR fails both ways alike
            with pytest.raises(type(exc)):
                list(open_capture(path, client="c", key=KEY, rows=True))
            continue
        assert len(rows) == len(records), path
        for row, record in zip(rows, records, strict=True):
            if type(row) is tuple:
                assert row == msgspec.structs.astuple(record), path
                assert [type(v) for v in row] == [
                    type(v) for v in msgspec.structs.astuple(record)
                ], path
                rows_seen += 1
            else:
                assert row == record, path
    assert rows_seen > 3000


def test_build_row_follows_columns_and_hides_secrets():
    parts = dict(
        source="s", source_kind="har", client="c", key=KEY, method="GET",
        url="https://a.example/x?q=1",
        req_headers=[("cookie", "sid=SECRET1"), ("if-none-match", '"v1"')],
        resp_headers=[("etag", 'W/"v1"'), ("set-cookie", "t=SECRET2; Path=/"),
                      ("date", "Wed, 01 May 2024 10:00:00 GMT"), ("server", "nginx")],
        status=200, body=b"hello", entry_index=3,
    )
    row = build_row(**parts)
    assert len(row) == len(COLUMNS)
    fields = dict(zip(COLUMNS, row, strict=True))
    assert fields["host"] == row[HOST] == "a.example"
    assert (fields["etag_weak"], fields["etag_opaque"], fields["etag_count"]) == (True, "v1", 1)
    assert fields["req_if_none_match"] == '"v1"' and fields["server"] == "nginx"
    assert fields["date_ts"] == 1714557600.0 and fields["content_size"] == 5
    assert json.loads(fields["cookies_sent"]) == ["sid"]
    assert "SECRET" not in repr(row)
    assert row == msgspec.structs.astuple(build_exchange(**parts))


def _run(entries: list[dict]) -> bytes:
    return b"[" + b",".join(json.dumps(e).encode() for e in entries) + b"]"


def test_a_stalled_writer_does_not_stall_the_reader(tmp_path):
    """While the child is stopped (starting up, checkpointing), frames beyond what its pipe
    holds wait in the reader's process instead of blocking it; all arrive in order."""
    store = tmp_path / "s.sqlite"
    Store(store).close()
    har = write_har(tmp_path / "x.har", make_har([make_entry()]))
    reader = HarReader(har, client="c", key=KEY, rows=True)
    body = "x" * 20_000
    entries = [make_entry(f"https://a.test/{i}", text=body) for i in range(100)]
    data = _run(entries)
    assert PIPE_BYTES < 3 * len(data) < BUFFER_BYTES
    with WriterProcess(store, offload_share=1.0) as writer:
        writer.insert_rows([])  # the child is up and idle
        os.kill(writer._proc.pid, signal.SIGSTOP)
        resume = threading.Timer(10, os.kill, (writer._proc.pid, signal.SIGCONT))
        resume.start()  # a reader that blocked would wait this long, then fail below
        try:
            start = time.monotonic()
            for n in range(3):
                writer.take(reader, data, n * len(entries), len(entries))
            handed_over = time.monotonic() - start
            assert writer.wants_run() is False  # it is behind: the reader keeps the next run
        finally:
            resume.cancel()
            os.kill(writer._proc.pid, signal.SIGCONT)
        assert writer.insert_rows([]) == 3 * len(entries)
        assert writer.runs.entries == 3 * len(entries)
    assert handed_over < 5  # a blocking write would wait for SIGCONT forever
    with Store(store) as s:
        urls = [r[0] for r in s.connection.execute("SELECT url FROM exchanges ORDER BY id")]
    assert urls == [f"https://a.test/{i}" for i in range(100)] * 3


def test_checkpointer_moves_committed_pages_into_the_store(tmp_path):
    """With the inserting connection never checkpointing, the thread still copies its
    commits into the store file (so no single commit pays for a large checkpoint)."""
    path = tmp_path / "c.sqlite"
    Store(path).close()
    conn = connect(path)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    before = os.path.getsize(path)
    checkpoints = Checkpointer(str(path))
    try:
        with conn:
            conn.executemany(
                "INSERT INTO skipped (file, entry_index, reason) VALUES (?, ?, ?)",
                [("f", i, "r" * 500) for i in range(2000)],
            )
        deadline = time.monotonic() + 10
        while os.path.getsize(path) <= before + 500_000 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        checkpoints.stop()
    assert os.path.getsize(path) > before + 500_000
    conn.close()
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT count(*) FROM skipped").fetchone()[0] == 2000
    raw.close()
