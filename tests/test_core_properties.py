"""Property-based tests: the parsers and evaluate never raise, and agree with httplint's grammar."""

from __future__ import annotations

import re

from httplint.syntax import rfc9110
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.conditional import evaluate
from analysis.etag import EntityTag, parse_etag, parse_etag_list, strong_match, weak_match
from analysis.httpdate import format_http_date, parse_http_date

ENTITY_TAG = re.compile(rfc9110.entity_tag, re.VERBOSE)
HTTP_DATE = re.compile(rfc9110.HTTP_date, re.VERBOSE)

# Texts rich in the characters that matter to the grammar, plus arbitrary octets as latin-1.
tricky = st.text(alphabet='W/w" ,\t*!#a1\x7f\x80\xff\\', max_size=14)
octets = st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=30)
anything = st.one_of(tricky, octets, st.text(max_size=40))
etagc = st.characters(
    codec="latin-1", exclude_characters='"\x7f', exclude_categories=("Cc", "Zs")
).filter(lambda c: c == "!" or "\x23" <= c <= "\x7e" or c >= "\x80")
dates = st.integers(min_value=-62_167_219_200, max_value=253_402_300_799)
date_like = st.one_of(
    dates.map(format_http_date),
    dates.map(lambda t: format_http_date(t).replace("GMT", "UTC")),
    anything,
)
methods = st.one_of(
    st.sampled_from(
        ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "get"]
    ),
    st.text(max_size=8),
)
names = st.sampled_from(
    [
        "If-Match",
        "If-None-Match",
        "If-Modified-Since",
        "If-Unmodified-Since",
        "If-Range",
        "Range",
        "if-match",
        "X-Other",
    ]
)
values = st.one_of(st.sampled_from(['"v1"', 'W/"v1"', "*", '"v0", "v1"', "bytes=0-1"]), date_like)
headers = st.lists(st.tuples(names, values), max_size=6)


@given(anything)
def test_parse_etag_never_raises_and_valid_means_the_grammar(value: str) -> None:
    parsed = parse_etag(value)
    stripped = value.strip(" \t")
    if all(c <= "\xff" for c in value):
        assert parsed.valid == bool(ENTITY_TAG.fullmatch(stripped))
    if parsed.valid:
        assert str(parsed.tag) == stripped


@given(st.text(alphabet=etagc, max_size=20), st.booleans())
def test_entity_tag_round_trips(opaque: str, weak: bool) -> None:
    tag = EntityTag(opaque, weak)
    assert parse_etag(str(tag)) == (tag, ())
    assert parse_etag_list(f" {tag} , {tag}").tags == (tag, tag)
    assert weak_match(tag, str(tag))
    assert strong_match(tag, tag) is not weak


@given(anything)
def test_parse_etag_list_never_raises(value: str) -> None:
    parsed = parse_etag_list(value)
    assert isinstance(parsed.tags, tuple)
    if parsed.valid and not parsed.star:
        assert all(ENTITY_TAG.fullmatch(str(t)) for t in parsed.tags)


@given(date_like)
def test_parse_http_date_never_raises_and_valid_dates_meet_the_grammar(value: str) -> None:
    parsed = parse_http_date(value)
    if parsed.valid:
        assert HTTP_DATE.fullmatch(value.strip(" \t"))
        assert parsed.form in ("IMF-fixdate", "rfc850", "asctime")


@given(dates)
def test_format_then_parse_round_trips(ts: int) -> None:
    text = format_http_date(ts)
    assert parse_http_date(text) == (float(ts), "IMF-fixdate", ())


@settings(max_examples=300)
@given(
    methods, headers, st.one_of(st.none(), values), st.one_of(st.none(), date_like), st.booleans()
)
def test_evaluate_never_raises_and_keeps_its_promises(
    method: str, pairs: list[tuple[str, str]], etag: str | None, lm: str | None, exists: bool
) -> None:
    decision = evaluate(method, pairs, etag=etag, last_modified=lm, exists=exists)
    assert decision.status in (200, 206, 304, 412)
    assert decision.reason and decision.rfc.startswith("RFC 9110")
    upper = method.strip().upper()
    if upper in ("OPTIONS", "TRACE", "CONNECT"):
        assert decision.status == 200
    if decision.status == 304:
        assert upper in ("GET", "HEAD")
    if decision.status == 206:
        assert upper == "GET" and any(n.lower() == "range" for n, _ in pairs)
    if not pairs:
        assert decision.status == 200


@given(methods, headers, st.one_of(st.none(), values), anything)
def test_an_invalid_if_modified_since_changes_nothing(
    method: str, pairs: list[tuple[str, str]], etag: str | None, junk: str
) -> None:
    """RFC 9110 13.1.3: a value that is not a valid HTTP-date is ignored."""
    pairs = [(n, v) for n, v in pairs if n.lower() != "if-modified-since"]
    if parse_http_date(junk).valid:
        return
    lm = "Sun, 21 Oct 2007 23:21:47 GMT"
    plain = evaluate(method, pairs, etag=etag, last_modified=lm)
    with_junk = evaluate(method, [*pairs, ("If-Modified-Since", junk)], etag=etag, last_modified=lm)
    assert with_junk.status == plain.status
