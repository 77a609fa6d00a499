"""Bounded fuzzing of whole files through `ingest_paths` into a real store: HAR files mutated
in their JSON (types, nesting, sizes), in their bytes and in their encoding, and mitmproxy flow
files mutated in their bytes. Nothing escapes: every file ends as stored rows, skips that name
the file and entry, or one error naming the file; the store's counts agree with the report."""

from __future__ import annotations

import codecs
import gzip
import json
import sqlite3
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mitmproxy import http, io
from mitmproxy.test import tflow
from test_readers_har import make_entry, make_har
from test_readers_props import PATHS, _mutate, json_values

from analysis.ingest import ingest_paths
from analysis.store import Store

FUZZ = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
ENTRIES = [make_entry(f"https://a.test/{i}?q={i}", resp_headers=[("ETag", f'"e{i}"')],
                      req_headers=[("Cookie", "a=b")], text="aGk=", encoding="base64")
           for i in range(4)]
#: Values of odd types and sizes: huge integers, deep nesting, long strings, NaN-free floats.
odd_values = (json_values | st.integers(min_value=-(2**80), max_value=2**80)
              | st.integers(65_000, 70_000).map(lambda n: "\u00e9" * n)
              | st.integers(1, 300).map(lambda n: json.loads("[" * n + "]" * n)))


def _ingest(tmp: Path, name: str, data: bytes) -> None:
    """Ingest one file and check the accounting; any exception fails the example."""
    path = tmp / name
    path.write_bytes(data)
    db = tmp / f"{name}.sqlite"
    with Store(db) as store:
        report = ingest_paths([path], store)
    for err in report.errors:
        assert err.file == str(path) and err.message and "\n" not in err.message
    for skip in report.skipped:
        assert skip.file == str(path) and isinstance(skip.entry_index, int)
        assert skip.entry_index >= 0 and skip.reason
    with sqlite3.connect(db) as con:
        stored = con.execute("SELECT count(*) FROM exchanges").fetchone()[0]
        sources = con.execute("SELECT count(*), sum(complete) FROM sources").fetchone()
    assert stored == report.stored <= max(report.entries, 0)
    assert sources == (1, 1)  # one registration, complete: nothing half-written


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(PATHS), odd_values), max_size=4))
def test_har_with_mutated_fields_ingests(tmp_path_factory, mutations):
    entries = list(ENTRIES)
    for i, path, value in mutations:
        try:
            entries[i] = _mutate(entries[i], path, value)
        except (KeyError, IndexError, TypeError):
            continue
    _ingest(tmp_path_factory.mktemp("f"), "m.har", json.dumps(make_har(entries)).encode())


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 40), st.binary(max_size=12)),
                min_size=1, max_size=4), st.booleans())
def test_har_with_mutated_bytes_ingests(tmp_path_factory, edits, gz):
    """Spans replaced by random bytes (deleted, inserted, overwritten), then maybe gzipped."""
    data = bytearray(json.dumps(make_har(ENTRIES)).encode())
    for where, length, junk in edits:
        at = where % (len(data) + 1)
        data[at : at + length] = junk
    name = "b.har.gz" if gz else "b.har"
    _ingest(tmp_path_factory.mktemp("f"), name, gzip.compress(bytes(data)) if gz else bytes(data))


@FUZZ
@given(st.sampled_from(["utf-8-sig", "utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252"]),
       st.text(min_size=1, max_size=20))
def test_har_in_other_encodings_ingests(tmp_path_factory, encoding, text):
    entries = [make_entry(f"https://a.test/{text!r}", resp_headers=[("X-T", text)])]
    raw = json.dumps(make_har(entries), ensure_ascii=False)
    data = raw.encode(encoding, "replace")
    if encoding == "utf-8-sig":
        data = codecs.BOM_UTF8 + raw.encode()
    _ingest(tmp_path_factory.mktemp("f"), "e.har", data)


def _flow_bytes() -> bytes:
    import io as stdio

    buf = stdio.BytesIO()
    writer = io.FlowWriter(buf)
    for i in range(3):
        f = tflow.tflow(resp=True)
        f.request = http.Request.make("GET", f"http://a.test/{i}", b"", {"If-None-Match": '"x"'})
        f.response = http.Response.make(304, b"", {"ETag": '"x"'})
        writer.add(f)
    writer.add(tflow.ttcpflow())
    return buf.getvalue()


FLOWS = _flow_bytes()


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 20), st.binary(max_size=8)),
                min_size=1, max_size=3))
def test_flow_file_with_mutated_bytes_ingests(tmp_path_factory, edits):
    data = bytearray(FLOWS)
    for where, length, junk in edits:
        at = where % (len(data) + 1)
        data[at : at + length] = junk
    _ingest(tmp_path_factory.mktemp("f"), "m.flows", bytes(data))
