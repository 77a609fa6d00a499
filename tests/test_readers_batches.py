"""Entries decoded in runs (JSONStream.array_batches) are exactly the entries read one by one,
whatever the formatting, chunking, odd entries or separator look-alikes inside entries."""

from __future__ import annotations

import io
import json

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_readers_har import make_entry, make_har

from analysis.readers import HarReader, jsonstream
from analysis.readers.har import _decode_run

KEY = b"b" * 32


def _read(path, *, runs: bool, chunk: int = jsonstream.CHUNK) -> list:
    """Every item of the file, with runs on, or off (item by item: the reference)."""
    init = jsonstream.JSONStream.__init__
    saved = jsonstream.MAX_RUN_FAILURES, init.__defaults__
    jsonstream.MAX_RUN_FAILURES = saved[0] if runs else 0
    init.__defaults__ = (chunk,)  # the chunk size every JSONStream is built with
    try:
        return [msgspec.to_builtins(i) for i in HarReader(path, client="c", key=KEY)]
    finally:
        jsonstream.MAX_RUN_FAILURES, init.__defaults__ = saved


def _kinds(data: bytes, chunk: int = 1 << 20) -> tuple[int, int]:
    """(items decoded in runs, items handed out one by one) of the HAR's entries array."""
    stream = jsonstream.JSONStream(io.BytesIO(data), chunk=chunk)
    counts = [0, 0]
    for key in stream.object_keys():
        for inner in stream.object_keys() if key == "log" else ():
            if inner != "entries":
                stream.skip()
                continue
            for span, run in stream.array_batches(_decode_run):
                if span is None:
                    counts[0] += len(run)
                else:
                    counts[1] += 1
        if key != "log":
            stream.skip()
    return counts[0], counts[1]


def _entries(n: int, nested_lookalike: bool = False) -> list[dict]:
    out = []
    for i in range(n):
        e = make_entry(f"https://a.test/{i}", resp_headers=[("ETag", f'"{i}"'), ("X-V", "},{")],
                       req_headers=[("Cookie", f"id={i}")])
        e = {"startedDateTime": e.pop("startedDateTime"), **e}
        if nested_lookalike and i % 3 == 0:  # the minified separator, inside an entry
            e["_extra"] = [{"startedDateTime": "x"}, {"startedDateTime": "y"}]
        out.append(e)
    return out


def test_pretty_printed_entries_are_decoded_in_runs(tmp_path):
    data = json.dumps(make_har(_entries(60)), indent=2).encode()
    in_runs, single = _kinds(data)
    assert in_runs + single == 60 and in_runs >= 40
    path = tmp_path / "p.har"
    path.write_bytes(data)
    assert _read(path, runs=True) == _read(path, runs=False)


def test_minified_entries_with_lookalike_separators_inside(tmp_path):
    data = json.dumps(make_har(_entries(60, nested_lookalike=True)), separators=(",", ":"))
    assert '},{"startedDateTime"' in data.split('"entries"')[1][:3000]  # inside entry 0
    path = tmp_path / "m.har"
    path.write_text(data)
    assert sum(_kinds(data.encode())) == 60
    assert _read(path, runs=True) == _read(path, runs=False)


def test_a_separator_that_stops_matching_is_learned_again(tmp_path, monkeypatch):
    """A file joined from two exporters: the first entries all start with one key, the rest
    with another. The separator learned with the first key stops matching; it is learned
    again instead of scanning RUN_BYTES in vain before every later entry."""
    first = _entries(20)
    rest = [{"request": e.pop("request"), **e} for e in _entries(400)]
    data = json.dumps(make_har(first + rest)).encode()
    scans = []
    real = jsonstream.JSONStream._missed

    def missed(self, pattern):
        scans.append(pattern)
        return real(self, pattern)

    monkeypatch.setattr(jsonstream.JSONStream, "_missed", missed)
    in_runs, single = _kinds(data)
    assert in_runs + single == 420
    assert in_runs >= 380  # before: the 400 later entries one by one, each after a vain scan
    assert b'"startedDateTime"' in scans[0] and len(scans) <= 3
    path = tmp_path / "j.har"
    path.write_bytes(data)
    assert _read(path, runs=True) == _read(path, runs=False)


def test_odd_entries_inside_a_run_fall_back_to_one_by_one(tmp_path):
    entries = _entries(40)
    entries[20]["response"]["status"] = "304"  # lenient path: a run holding it cannot decode
    entries[25] = [1, 2, 3]  # not an object: a skip
    path = tmp_path / "o.har"
    path.write_text(json.dumps(make_har(entries), indent=1))
    got = _read(path, runs=True)
    assert got == _read(path, runs=False)
    assert got[20]["status"] == 304 and got[25][1] == 25


FORMATS = st.sampled_from([
    {"indent": None}, {"indent": 2}, {"indent": 4}, {"indent": "\t"},
    {"separators": (",", ":")}, {"separators": (", ", ": ")}, {"indent": 1, "separators": (",", ": ")},
])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(min_value=0, max_value=40),
    fmt=FORMATS,
    chunk=st.sampled_from([64, 500, 4096, 1 << 20]),
    lookalike=st.booleans(),
    odd=st.lists(st.integers(min_value=0, max_value=39), max_size=3),
)
def test_runs_equal_one_by_one(tmp_path_factory, n, fmt, chunk, lookalike, odd):
    entries = _entries(n, lookalike)
    for i in odd:
        if i < n:
            entries[i]["response"]["headers"] = None
    path = tmp_path_factory.mktemp("r") / "r.har"
    path.write_text(json.dumps(make_har(entries), **fmt))
    got = _read(path, runs=True, chunk=chunk)
    assert len(got) == n
    assert got == _read(path, runs=False, chunk=chunk)


def test_numbers_cut_by_the_chunk_edge_are_read_whole(tmp_path):
    # '-1' and '1.5' split after '-' or '.' read as malformed JSON, not truncated: the stream
    # must read on instead of failing a valid file (this broke 64-byte chunks before)
    entries = [make_entry(f"https://a.test/{i}", timings={"dns": -1, "wait": 1.5}) for i in range(3)]
    path = tmp_path / "n.har"
    path.write_text(json.dumps(make_har(entries)))
    data = path.read_bytes()
    whole = _read(path, runs=False)
    assert len(whole) == 3
    for cut in (data.index(b"-1") + 1, data.index(b"1.5") + 2):  # first chunk ends there
        assert _read(path, runs=True, chunk=cut) == whole, cut
        assert _read(path, runs=False, chunk=cut) == whole, cut
