"""Header normalisation: the fast pseudo-header check gives what a plain scan gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.headers import normalise, split_pseudo


def _reference(pairs):
    """normalise as first written: a Python test per field."""
    fields = [(n.strip().lower(), v) for n, v in pairs]
    pseudo: dict[str, str] = {}
    if any(not n or n[0] == ":" for n, _ in fields):
        for n, v in fields:
            if n[:1] == ":":
                pseudo.setdefault(n, v)
        fields = [(n, v) for n, v in fields if n and n[0] != ":"]
        if ":authority" in pseudo and not any(n == "host" for n, _ in fields):
            fields.append(("host", pseudo[":authority"]))
    return fields, pseudo


NAMES = st.sampled_from(
    ["", " ", ":authority", ":method", ":path", "Host", "host", "ETag", "0x", "!", "#a",
     "9z", " :scheme", "\x01a", "a", "Cookie", "~"]
) | st.text(max_size=6)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.tuples(NAMES, st.text(max_size=4)), max_size=8))
def test_normalise_matches_the_plain_scan(pairs):
    assert normalise(pairs) == _reference(pairs)


def test_pseudo_headers_split_and_authority_becomes_host():
    fields, pseudo = split_pseudo([(":authority", "a.test"), ("accept", "*/*"), ("", "x")])
    assert fields == [("accept", "*/*"), ("host", "a.test")]
    assert pseudo == {":authority": "a.test"}
    plain = [("accept", "*/*"), ("0day", "1")]  # a name sorting before ':' is no pseudo-header
    assert split_pseudo(plain) == (plain, {})
