"""HTTP-date parsing and formatting (RFC 9110 5.6.7)."""

from __future__ import annotations

import calendar
import email.utils
import re

import pytest
from httplint.syntax import rfc9110

from analysis import httpdate as H
from analysis.httpdate import format_http_date, parse_http_date

HTTP_DATE = re.compile(rfc9110.HTTP_date, re.VERBOSE)
SUNDAY = calendar.timegm((1994, 11, 6, 8, 49, 37))  # the RFC's example instant
NOW_2025 = calendar.timegm((2025, 6, 1, 0, 0, 0))


@pytest.mark.parametrize(
    ("value", "form", "obsolete"),
    [  # the three examples of RFC 9110 5.6.7
        ("Sun, 06 Nov 1994 08:49:37 GMT", "IMF-fixdate", None),
        ("Sunday, 06-Nov-94 08:49:37 GMT", "rfc850", H.OBSOLETE_RFC850),
        ("Sun Nov  6 08:49:37 1994", "asctime", H.OBSOLETE_ASCTIME),
        ("Sun Nov 06 08:49:37 1994", "asctime", H.OBSOLETE_ASCTIME),  # date3 allows 2DIGIT
    ],
)
def test_5_6_7_three_forms_give_the_same_instant(
    value: str, form: str, obsolete: str | None
) -> None:
    parsed = parse_http_date(value, now=NOW_2025)
    assert parsed.timestamp == SUNDAY
    assert parsed.form == form
    assert parsed.violations == ((obsolete,) if obsolete else ())
    assert HTTP_DATE.fullmatch(value)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("Sun, 06 Nov 1994 08:49:37 UTC", H.ZONE_NOT_GMT),
        ("Sun, 06 Nov 1994 08:49:37 +0000", H.ZONE_NOT_GMT),
        ("Sun, 06 Nov 1994 08:49:37", H.ZONE_NOT_GMT),
        ("Sun, 06 Nov 1994 08:49:37 gmt", H.WRONG_CASE),
        ("sun, 06 nov 1994 08:49:37 GMT", H.WRONG_CASE),
        ("SUNDAY, 06-NOV-94 08:49:37 GMT", H.WRONG_CASE),
        ("Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT", H.LIST_OF_DATES),
        ("Sun, 31 Feb 1994 08:49:37 GMT", H.OUT_OF_RANGE),
        ("Sun, 06 Nov 1994 24:00:00 GMT", H.OUT_OF_RANGE),
        ("Sun, 06 Nov 1994 08:60:00 GMT", H.OUT_OF_RANGE),
        ("Tue, 29 Feb 2100 00:00:00 GMT", H.OUT_OF_RANGE),  # 2100 is not a leap year
        ("", H.EMPTY_DATE),
    ],
)
def test_5_6_7_other_dates_are_invalid_and_say_why(value: str, why: str) -> None:
    parsed = parse_http_date(value, now=NOW_2025)
    assert parsed.timestamp is None and parsed.form is None and not parsed.valid
    assert parsed.violations[0] == H.NOT_HTTP_DATE
    assert why in parsed.violations


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 6 Nov 1994 08:49:37 GMT",  # day needs 2 digits
        "Sun,06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994  08:49:37 GMT",
        "1994-11-06T08:49:37Z",
        "784111777",
        "Sun, 06 Nov 94 08:49:37 GMT",  # two-digit year is only for rfc850
        "Sun, ٠٦ Nov 1994 08:49:37 GMT",  # non-ASCII digits
        "06 Nov 1994 08:49:37 GMT",
    ],
)
def test_5_6_7_not_http_dates(value: str) -> None:
    parsed = parse_http_date(value)
    assert not parsed.valid
    assert H.NOT_HTTP_DATE in parsed.violations
    assert not HTTP_DATE.fullmatch(value)  # httplint's grammar agrees


def test_5_6_7_wrong_day_name_is_reported_but_valid() -> None:
    parsed = parse_http_date("Mon, 06 Nov 1994 08:49:37 GMT")
    assert parsed.timestamp == SUNDAY
    assert parsed.violations == (H.WRONG_WEEKDAY,)


def test_5_6_7_leap_second_and_leap_day() -> None:
    assert parse_http_date("Wed, 31 Dec 2008 23:59:60 GMT").timestamp == calendar.timegm(
        (2009, 1, 1, 0, 0, 0)
    )
    assert parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT").valid


@pytest.mark.parametrize(
    ("yy", "now_year", "year"),
    [
        ("94", 2025, 1994),
        ("25", 2025, 2025),
        ("70", 2025, 2070),
        ("76", 2025, 1976),
        ("10", 2095, 2110),
    ],
)
def test_5_6_7_rfc850_two_digit_year_within_50_years(yy: str, now_year: int, year: int) -> None:
    """RFC 9110 5.6.7: a two-digit year more than 50 years in the future is in the past century."""
    now = calendar.timegm((now_year, 6, 1, 0, 0, 0))
    parsed = parse_http_date(f"Monday, 01-Jan-{yy} 00:00:00 GMT", now=now)
    assert parsed.timestamp == calendar.timegm((year, 1, 1, 0, 0, 0))


def test_5_6_7_ows_around_the_value_is_not_a_violation() -> None:
    assert parse_http_date(" \tSun, 06 Nov 1994 08:49:37 GMT\t ").violations == ()


@pytest.mark.parametrize("ts", [0, SUNDAY, 1_700_000_000.9, 951_782_400, 2**31, 253_402_300_799])
def test_5_6_7_format_is_imf_fixdate_like_the_stdlib(ts: float) -> None:
    text = format_http_date(ts)
    assert text == email.utils.formatdate(int(ts), usegmt=True)
    assert parse_http_date(text) == H.DateParse(float(int(ts)), "IMF-fixdate", ())


def test_format_before_the_epoch_and_out_of_range() -> None:
    assert format_http_date(-1) == "Wed, 31 Dec 1969 23:59:59 GMT"
    with pytest.raises(ValueError, match="outside"):
        format_http_date(253_402_300_800)  # year 10000
    with pytest.raises(ValueError, match="finite"):
        format_http_date(float("nan"))


def test_parse_takes_bytes_and_never_raises_on_other_types() -> None:
    assert parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT").timestamp == SUNDAY
    assert parse_http_date(None).violations == (H.NOT_HTTP_DATE,)  # type: ignore[arg-type]


def test_now_may_be_a_number_or_a_datetime_and_nothing_else():
    from datetime import UTC, datetime

    value = "Sunday, 06-Nov-94 08:49:37 GMT"
    in_1990 = parse_http_date(value, now=631152000).timestamp
    assert in_1990 == parse_http_date(value, now=datetime(1990, 1, 1, tzinfo=UTC)).timestamp
    assert in_1990 == parse_http_date(value, now=datetime(1990, 1, 1)).timestamp  # naive = UTC
    assert parse_http_date(value, now=datetime(2080, 1, 1)).timestamp != in_1990  # 2094
    for bad in ("x", [1], True):
        with pytest.raises(TypeError, match="now must be epoch seconds"):
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", now=bad)
