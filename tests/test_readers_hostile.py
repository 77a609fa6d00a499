"""Hostile HAR input: one bad entry costs that entry alone, memory stays bounded.

Each case failed on 7f718ff by losing every entry of its file (RecursionError, OverflowError at
insert, a 1 GiB header value held whole). Oversized entries are exercised with the size limit
lowered (``jsonstream.VALUE_LIMIT``), so the bounded path runs on small files; the subprocess
test runs the real 1 GiB gzip bomb through `etagwatch ingest` and bounds its peak RSS.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_readers_har import exchanges, make_entry, make_har, read_all, write_har

from analysis.ingest import ingest_paths
from analysis.limits import FIELD_CAP
from analysis.readers import Note, Skip, jsonstream
from analysis.store import Store


def _file_with(tmp_path: Path, bad: str, name: str = "x.har") -> Path:
    """Three good entries around one bad one (``bad`` is the bad entry's JSON text)."""
    good = [json.dumps(make_entry(f"https://a.test/{i}", resp_headers=[("ETag", f'"e{i}"')]))
            for i in range(3)]
    text = '{"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": ['
    text += ",".join([good[0], good[1], bad, good[2]]) + "]}}"
    return write_har(tmp_path / name, text.encode())


@pytest.mark.timeout(60)
def test_deep_nesting_costs_only_the_nested_part(tmp_path):
    entry = json.dumps(make_entry("https://a.test/deep"))[:-1]
    bad = entry + ', "_deep": ' + "[" * 100_000 + "]" * 100_000 + "}"
    items = read_all(_file_with(tmp_path, bad))
    urls = [e.url for e in exchanges(items)]
    assert urls == ["https://a.test/0", "https://a.test/1", "https://a.test/deep", "https://a.test/2"]
    notes = [i.message for i in items if isinstance(i, Note)]
    assert any("entry 2" in n and "nested deeper" in n for n in notes), notes


def test_integers_sqlite_cannot_hold_cost_only_their_field(tmp_path):
    entries = [make_entry(f"https://a.test/{i}") for i in range(47)]
    entries[10]["response"]["bodySize"] = 2**63
    entries[11]["response"]["content"]["size"] = -(2**70)
    entries[12]["response"]["status"] = 2**64
    path = write_har(tmp_path / "big.har", json.dumps(make_har(entries)).encode())
    with Store(tmp_path / "s.sqlite") as store:
        report = ingest_paths([path], store)
        assert report.stored == 47
        rows = dict(store.connection.execute(
            "SELECT entry_index, body_size FROM exchanges WHERE entry_index IN (10, 11)"))
        assert rows[10] is None
        status, error = store.connection.execute(
            "SELECT status, error FROM exchanges WHERE entry_index = 12").fetchone()
        assert status is None and "invalid status code" in error


def _oversized(tmp_path, monkeypatch, text: str, encoding: str | None = None):
    """An entry with a long header value and a long body, read through the bounded path."""
    monkeypatch.setattr(jsonstream, "VALUE_LIMIT", 256 * 1024)
    monkeypatch.setattr(jsonstream, "CHUNK", 64 * 1024)
    big = "v" * (FIELD_CAP * 3)
    bad = json.dumps(make_entry("https://a.test/big", resp_headers=[("X-Big", big), ("ETag", '"b"')],
                                text=text, encoding=encoding))
    return read_all(_file_with(tmp_path, bad)), big


@pytest.mark.parametrize("escaped", [False, True])
def test_oversized_entry_keeps_its_headers_cut_and_its_body_hashed(tmp_path, monkeypatch, escaped):
    body = ("line \"one\"\n\u00e9\U0001F600 " if escaped else "abcdefgh") * 200_000
    items, big = _oversized(tmp_path, monkeypatch, body)
    records = exchanges(items)
    assert len(records) == 4
    rec = records[2]
    assert rec.etag == '"b"'
    headers = dict(json.loads(rec.resp_headers))
    assert headers["x-big"].startswith("v" * 1000)
    assert f"cut at {FIELD_CAP} of {len(big)} bytes" in headers["x-big"]
    assert len(headers["x-big"]) < FIELD_CAP + 100
    expected = body.encode("utf-8", "surrogatepass")
    assert rec.content_hash == hashlib.sha256(expected).hexdigest()
    assert rec.content_size == len(expected)
    notes = [i.message for i in items if isinstance(i, Note)]
    assert any("entry 2" in n and "hashed while read" in n for n in notes), notes


def test_oversized_base64_body_is_hashed_decoded(tmp_path, monkeypatch):
    raw = bytes(range(256)) * 4000
    items, _ = _oversized(tmp_path, monkeypatch, base64.b64encode(raw).decode(), "base64")
    rec = exchanges(items)[2]
    assert rec.content_hash == hashlib.sha256(raw).hexdigest()
    assert rec.content_size == len(raw)


def test_an_entry_too_large_even_reduced_is_one_skip(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonstream, "VALUE_LIMIT", 64 * 1024)
    monkeypatch.setattr(jsonstream, "CHUNK", 16 * 1024)
    monkeypatch.setattr("analysis.readers.jsonreduce.REDUCED_MAX", 32 * 1024)
    entry = make_entry("https://a.test/many")
    entry["_many"] = [{"k": i} for i in range(20_000)]
    items = read_all(_file_with(tmp_path, json.dumps(entry)))
    assert len(exchanges(items)) == 3
    skips = [i for i in items if isinstance(i, Skip)]
    assert [s.entry_index for s in skips] == [2] and "too large" in skips[0].reason


def test_header_over_the_cap_in_a_normal_entry_is_cut_with_its_length(tmp_path):
    big = "x" * (FIELD_CAP + 100)
    path = write_har(tmp_path / "h.har", json.dumps(make_har(
        [make_entry("https://a.test/h", req_headers=[("X-Long", big)])])).encode())
    rec = exchanges(read_all(path))[0]
    value = dict(json.loads(rec.req_headers))["x-long"]
    assert value.endswith(f"cut at {FIELD_CAP} of {len(big)} bytes]")


@pytest.mark.timeout(300)
def test_gzip_bomb_with_a_1gib_header_value_keeps_every_entry_in_bounded_memory(tmp_path):
    """1 MB on disk, 1 GiB expanded in one header value: every entry stored, RSS < 512 MB."""
    path = tmp_path / "bomb.har.gz"
    pre = json.dumps(make_har([make_entry("https://a.test/0"), "X"]))
    head, tail = pre.split('"X"')
    entry = json.dumps(make_entry("https://a.test/1", resp_headers=[("ETag", '"e1"')]))
    e1, e2 = entry.split('"ETag"')
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write((head + e1 + '"X-Big", "value": "').encode())
        chunk = b"A" * (1 << 20)
        for _ in range(1024):
            fh.write(chunk)
        fh.write(('"}, {"name": "ETag"' + e2 + "," + json.dumps(make_entry("https://a.test/2"))
                  + tail).encode())
    db = tmp_path / "s.sqlite"
    # VmHWM, not ru_maxrss: Linux carries the parent's high-water mark over fork and exec into
    # ru_maxrss, so under a long pytest run the child "peaked" at pytest's own 750 MB
    code = (
        "import re, sys; from analysis.cli import main; rc = main(sys.argv[1:]); "
        "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
        "print('RSS', hwm, file=sys.stderr); sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code, "ingest", str(path), "--db", str(db)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rss_kb = int(proc.stderr.rsplit("RSS", 1)[1].split()[0])
    assert rss_kb < 512 * 1024, rss_kb
    with Store(db) as store:
        urls = [u for (u,) in store.connection.execute("SELECT url FROM exchanges ORDER BY entry_index")]
        assert urls == ["https://a.test/0", "https://a.test/1", "https://a.test/2"]
        (etag,) = store.connection.execute("SELECT etag FROM exchanges WHERE entry_index=1").fetchone()
        assert etag == '"e1"'



@pytest.mark.timeout(60)
def test_flow_file_with_a_huge_length_prefix_is_one_clear_error(tmp_path):
    """'99999999999:' made mitmproxy's reader allocate 100 GB (MemoryError on 7f718ff)."""
    path = tmp_path / "huge.flow"
    path.write_bytes(b"99999999999:" + b"x" * 100)
    with Store(tmp_path / "s.sqlite") as store:
        report = ingest_paths([path], store)
    assert report.stored == 0
    assert [e.file for e in report.errors] == [str(path)]
    assert "stopped at flow 0" in report.errors[0].message


def test_nan_and_infinity_are_read_as_null_with_a_note(tmp_path):
    # Python's json.dumps writes NaN / Infinity; before, the first one ended the file there
    entries = [make_entry(f"https://a.test/{i}", resp_headers=[("X-Doc", "NaN, -Infinity")])
               for i in range(30)]
    entries[1]["time"] = float("nan")
    entries[2]["response"]["bodySize"] = float("inf")
    entries[20]["timings"] = {"wait": float("-inf")}
    path = write_har(tmp_path / "nan.har", json.dumps(make_har(entries)).encode())
    items = read_all(path)
    assert [e.entry_index for e in exchanges(items)] == list(range(30))
    assert exchanges(items)[2].body_size is None
    assert ["x-doc", "NaN, -Infinity"] in json.loads(exchanges(items)[2].resp_headers)  # strings kept
    notes = [i.message for i in items if isinstance(i, Note)]
    assert notes == [f"entry {i}: NaN or Infinity (not JSON numbers) read as null" for i in (1, 2, 20)]


@pytest.mark.parametrize("jobs", [1, 3])
def test_an_entry_that_is_not_json_costs_that_entry_alone(tmp_path, jobs, monkeypatch):
    from analysis.readers import har

    monkeypatch.setattr(har, "PARALLEL_MIN_BYTES", 0)  # the worker path too, on a small file
    text = json.dumps(make_har([make_entry(f"https://a.test/{i}") for i in range(30)]))
    at = text.index('"https://a.test/5"')
    text = text[: at + 5] + "\x01\\q" + text[at + 5 :]  # a control byte and a broken escape
    path = write_har(tmp_path / "bad.har", text.encode())
    with Store(tmp_path / "s.sqlite") as store:
        report = ingest_paths([path], store, jobs=jobs)
    assert report.stored == 29 and not report.errors
    (skip,) = report.skipped
    assert skip.entry_index == 5 and skip.file == str(path)
    assert skip.reason.startswith("entry is not valid JSON: ") and "(at byte " in skip.reason
