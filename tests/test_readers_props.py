"""Property-based: random and mutated HAR entries and files never crash a reader."""

from __future__ import annotations

import json

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_readers_har import make_entry, make_har

from analysis.exchange import Exchange
from analysis.readers import HarReader, ReadError, Skip

KEY = b"p" * 32
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
BASE = make_entry(
    "https://a.test/x?q=1",
    req_headers=[("If-None-Match", '"a"'), ("Cookie", "a=b"), (":authority", "a.test")],
    resp_headers=[("ETag", 'W/"a"'), ("Set-Cookie", "c=d"), ("Last-Modified", "x")],
    text="aGk=", encoding="base64", pageref="p",
)
PATHS = [
    ("request",), ("response",), ("request", "url"), ("request", "method"),
    ("request", "headers"), ("request", "headers", 0), ("request", "headers", 0, "value"),
    ("response", "status"), ("response", "headers"), ("response", "headers", 1, "name"),
    ("response", "content"), ("response", "content", "text"), ("response", "content", "encoding"),
    ("response", "bodySize"), ("startedDateTime",), ("serverIPAddress",), ("_fromCache",),
    ("request", "cookies"), ("response", "httpVersion"), ("pageref",),
]


def _mutate(entry: dict, path: tuple, value: object) -> dict:
    doc = json.loads(json.dumps(entry))
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return doc


def _check(reader: HarReader, entry: object) -> None:
    span = memoryview(msgspec.json.encode(entry))
    got = reader.entry(span, 7)
    assert isinstance(got, (Exchange, Skip))
    if isinstance(got, Skip):
        assert got.entry_index == 7 and got.reason
    else:
        msgspec.json.encode(got)  # storable


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PATHS), json_values), min_size=1, max_size=4))
def test_mutated_entries_never_crash(mutations):
    reader = HarReader("m.har", client="c", key=KEY)
    entry = BASE
    for path, value in mutations:
        try:
            entry = _mutate(entry, path, value)
        except (KeyError, IndexError, TypeError):
            continue
    _check(reader, entry)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_random_json_entries_never_crash(value):
    _check(HarReader("r.har", client="c", key=KEY), value)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_random_files_give_items_or_one_read_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("r") / "f.har"
    path.write_bytes(data)
    try:
        items = list(HarReader(path, client="c", key=KEY))
    except ReadError as exc:
        assert exc.message and "\n" not in exc.message
    else:
        assert all(isinstance(i, (Exchange, Skip)) or i.message for i in items)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=10**6), st.binary(min_size=1, max_size=8))
def test_damaged_real_shaped_file(tmp_path_factory, where, junk):
    data = json.dumps(make_har([BASE, BASE, BASE])).encode()
    at = where % len(data)
    path = tmp_path_factory.mktemp("d") / "d.har"
    path.write_bytes(data[:at] + junk + data[at:])
    try:
        items = list(HarReader(path, client="c", key=KEY))
    except ReadError:
        return
    assert len(items) <= 4
