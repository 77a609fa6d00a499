"""Entity-tag parsing and comparison, clause by clause (RFC 9110 8.8.3, 8.8.3.2, 13.1.1, 13.1.2)."""

from __future__ import annotations

import re

import pytest
from httplint.syntax import rfc9110

from analysis import etag as E
from analysis.etag import EntityTag, parse_etag, parse_etag_list, strong_match, weak_match

ENTITY_TAG = re.compile(rfc9110.entity_tag, re.VERBOSE)


def test_8_8_3_str_is_the_field_form() -> None:
    assert str(EntityTag("xyzzy")) == '"xyzzy"'
    assert str(EntityTag("xyzzy", weak=True)) == 'W/"xyzzy"'
    assert str(EntityTag("")) == '""'


@pytest.mark.parametrize(
    ("value", "opaque", "weak"),
    [
        ('"xyzzy"', "xyzzy", False),  # RFC 9110 8.8.3 examples
        ('W/"xyzzy"', "xyzzy", True),
        ('""', "", False),
        ('"a,b"', "a,b", False),  # ',' is an etagc
        ('"!#~"', "!#~", False),
        ('"abcdefü"', "abcdefü", False),  # obs-text
        (' \t"x"\t ', "x", False),  # OWS around the field value
    ],
)
def test_8_8_3_valid_entity_tags(value: str, opaque: str, weak: bool) -> None:
    parsed = parse_etag(value)
    assert parsed.tag == EntityTag(opaque, weak)
    assert parsed.violations == ()
    assert parsed.valid


@pytest.mark.parametrize(
    ("value", "tag", "violation"),
    [
        ("abc", EntityTag("abc"), E.UNQUOTED),
        ("W/abc", EntityTag("abc", True), E.UNQUOTED),
        ('w/"abc"', EntityTag("abc", True), E.LOWERCASE_WEAK),
        ('W/ "abc"', EntityTag("abc", True), E.SPACE_AFTER_WEAK),
        ('"a b"', EntityTag("a b"), E.BAD_CHARACTER),
        ('"abc', EntityTag("abc"), E.UNTERMINATED),
        ('"abc"-gzip', EntityTag("abc"), E.TRAILING_TEXT),
        ('"a", "b"', EntityTag("a"), E.TRAILING_TEXT),  # ETag is a single tag
        ('"a\x7fb"', EntityTag("a\x7fb"), E.BAD_CHARACTER),
        ("", None, E.EMPTY),
        ("W/", None, E.EMPTY),
        ('"', None, E.UNTERMINATED),
    ],
)
def test_8_8_3_lenient_parse_reports_violations(
    value: str, tag: EntityTag | None, violation: str
) -> None:
    parsed = parse_etag(value)
    assert parsed.tag == tag
    assert violation in parsed.violations
    assert not parsed.valid
    assert not ENTITY_TAG.fullmatch(value.strip(" \t"))  # httplint's grammar agrees: invalid


def test_8_8_3_violations_are_the_published_constants() -> None:
    published = {v for k, v in vars(E).items() if k.isupper() and isinstance(v, str)}
    for value in ("abc", 'w/ "a b', '"x"y', "", "W/"):
        assert set(parse_etag(value).violations) <= published


@pytest.mark.parametrize(
    ("a", "b", "strong", "weak"),
    [  # the table in RFC 9110 8.8.3.2
        ('W/"1"', 'W/"1"', False, True),
        ('W/"1"', 'W/"2"', False, False),
        ('W/"1"', '"1"', False, True),
        ('"1"', '"1"', True, True),
        ('"1"', '"2"', False, False),
        ('"a"', '"A"', False, False),  # opaque tags compare octet by octet
    ],
)
def test_8_8_3_2_comparison_table(a: str, b: str, strong: bool, weak: bool) -> None:
    assert strong_match(a, b) is strong
    assert strong_match(b, a) is strong
    assert weak_match(a, b) is weak
    assert strong_match(parse_etag(a).tag, parse_etag(b).tag) is strong


def test_8_8_3_2_unreadable_values_match_nothing() -> None:
    assert not weak_match("", "")
    assert not strong_match(None, '"a"')
    assert not weak_match('"a"', None)


def test_13_1_1_star_alone() -> None:
    assert parse_etag_list("*") == E.ETagListParse((), True, ())
    assert parse_etag_list(" * ").star


def test_13_1_1_list_of_tags_splits_outside_quotes() -> None:
    parsed = parse_etag_list('"a,b", W/"c" ,\t"d"')
    assert parsed.tags == (EntityTag("a,b"), EntityTag("c", True), EntityTag("d"))
    assert parsed.valid and not parsed.star


def test_13_1_1_star_with_tags_is_a_violation() -> None:
    parsed = parse_etag_list('*, "a"')
    assert parsed.star
    assert parsed.tags == (EntityTag("a"),)
    assert E.STAR_IN_LIST in parsed.violations
    assert not parsed.valid


def test_5_6_1_empty_list_elements_are_tolerated_but_reported() -> None:
    parsed = parse_etag_list(', "a",, ')
    assert parsed.tags == (EntityTag("a"),)
    assert parsed.violations == (E.EMPTY_LIST_ELEMENT,)
    assert parsed.valid


def test_13_1_2_empty_value_is_an_empty_list() -> None:
    assert parse_etag_list("") == E.ETagListParse((), False, ())


def test_13_1_2_malformed_members_are_recovered_and_reported() -> None:
    parsed = parse_etag_list('abc, w/"d", "ok"')
    assert parsed.tags == (EntityTag("abc"), EntityTag("d", True), EntityTag("ok"))
    assert E.UNQUOTED in parsed.violations and E.LOWERCASE_WEAK in parsed.violations
    assert not parsed.valid


def test_13_1_2_violations_are_not_repeated() -> None:
    assert parse_etag_list("a, b, c").violations == (E.UNQUOTED,)


def test_parsers_take_bytes_and_never_raise_on_other_types() -> None:
    assert parse_etag(b'W/"a\xff"').tag == EntityTag("a\udcff", True)  # mitmproxy's decoding
    assert parse_etag_list(b'"a", "b"').tags == (EntityTag("a"), EntityTag("b"))
    assert parse_etag(None).tag is None  # type: ignore[arg-type]
    assert parse_etag_list(42).violations  # type: ignore[arg-type]
