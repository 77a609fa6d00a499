"""HTTP-dates (RFC 9110 5.6.7): IMF-fixdate and the obsolete rfc850 and asctime forms, nothing else.

The standard library's ``email.utils.parsedate_to_datetime`` accepts any RFC 5322 date ("UTC",
numeric zones, missing weekday, lower case), so a server sending ``... UTC`` would look valid.
RFC 9110 makes a recipient ignore If-Modified-Since / If-Unmodified-Since values that are not
valid HTTP-dates, so strictness changes answers: this module parses the grammar exactly and says
why a value is not an HTTP-date. ``violations`` holds only the constant strings defined below.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime
from typing import Literal, NamedTuple

# --- violation kinds (stable strings) ------------------------------------------------------------
EMPTY_DATE = "empty date"
NOT_HTTP_DATE = (
    "not an HTTP-date: neither IMF-fixdate nor the obsolete rfc850 or asctime form (RFC 9110 5.6.7)"
)
ZONE_NOT_GMT = "time zone missing or other than 'GMT' (such as 'UTC' or '+0000'); HTTP-dates are written in GMT (RFC 9110 5.6.7)"
WRONG_CASE = "wrong letter case: HTTP-date is case-sensitive (RFC 9110 5.6.7)"
OUT_OF_RANGE = "day, hour, minute or second out of range (such as 31 Feb or 24:00:00)"
LIST_OF_DATES = "more than one date in the value (a list), where one HTTP-date is expected"
WRONG_WEEKDAY = "day-name does not match the date"
OBSOLETE_RFC850 = "obsolete rfc850-date form; senders must generate IMF-fixdate (RFC 9110 5.6.7)"
OBSOLETE_ASCTIME = "obsolete asctime-date form; senders must generate IMF-fixdate (RFC 9110 5.6.7)"

DateForm = Literal["IMF-fixdate", "rfc850", "asctime"]

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAYS_LONG = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_D = "|".join(_DAYS)
_DL = "|".join(_DAYS_LONG)
_M = "|".join(_MONTHS)
_TIME = r"([0-9]{2}):([0-9]{2}):([0-9]{2})"
_IMF = re.compile(rf"({_D}), ([0-9]{{2}}) ({_M}) ([0-9]{{4}}) {_TIME} GMT")
_RFC850 = re.compile(rf"({_DL}), ([0-9]{{2}})-({_M})-([0-9]{{2}}) {_TIME} GMT")
_ASCTIME = re.compile(rf"({_D}) ({_M}) ([0-9]{{2}}| [0-9]) {_TIME} ([0-9]{{4}})")
# Both are linear: neither starts with a repeat that a failing attempt rescans from every
# position of a long whitespace run ("x" + 30,000 spaces + "x!" took 72 s with a leading \s*).
_ZONE = re.compile(r"(?:\b[A-Za-z]{1,5}|[+-][0-9]{2}:?[0-9]{2})\Z")
_LIST_SPLIT = re.compile(rf",\s*(?=(?:{_DL}|{_D})\b)")
_OWS = " \t"


class DateParse(NamedTuple):
    """A parsed HTTP-date: epoch seconds (UTC) or None when invalid, its form, what was wrong."""

    timestamp: float | None
    form: DateForm | None
    violations: tuple[str, ...]

    @property
    def valid(self) -> bool:
        """True when the value is an HTTP-date in any of the three forms."""
        return self.timestamp is not None


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if _is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (any year, no datetime limits)."""
    year -= month <= 2
    era = year // 400  # floor division: no C-style correction needed
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (month <= 2), month, day


def _weekday(days: int) -> int:
    """0 = Monday, for days since the epoch (a Thursday)."""
    return (days + 3) % 7


def _rfc850_year(yy: int, now: float | None) -> int:
    """RFC 9110 5.6.7: a two-digit year more than 50 years in the future is the most recent past
    year with the same last two digits; otherwise the year within 50 years of now."""
    reference = time.time() if now is None or not math.isfinite(now) else now
    current = _civil_from_days(math.floor(reference) // 86400)[0]
    year = current - current % 100 + yy
    if year > current + 50:
        year -= 100
    elif year <= current - 50:  # a sliding window: 'appears' is read as nearest to now
        year += 100
    return year


def _strict(text: str, now: float | None) -> DateParse | None:
    """Parse exactly per the grammar; None when no form matches."""
    if m := _IMF.fullmatch(text):
        dname, dd, mon, yyyy, hh, mi, ss = m.groups()
        form: DateForm = "IMF-fixdate"
        year = int(yyyy)
        obsolete: tuple[str, ...] = ()
        weekday = _DAYS.index(dname)
    elif m := _RFC850.fullmatch(text):
        dname, dd, mon, yy, hh, mi, ss = m.groups()
        form = "rfc850"
        year = _rfc850_year(int(yy), now)
        obsolete = (OBSOLETE_RFC850,)
        weekday = _DAYS_LONG.index(dname)
    elif m := _ASCTIME.fullmatch(text):
        dname, mon, dd, hh, mi, ss, yyyy = m.groups()
        form = "asctime"
        year = int(yyyy)
        obsolete = (OBSOLETE_ASCTIME,)
        weekday = _DAYS.index(dname)
    else:
        return None
    month = _MONTHS.index(mon) + 1
    day, hour, minute, second = int(dd), int(hh), int(mi), int(ss)
    if not (
        1 <= day <= _days_in_month(year, month) and hour <= 23 and minute <= 59 and second <= 60
    ):
        return DateParse(None, None, (NOT_HTTP_DATE, OUT_OF_RANGE))
    days = _days_from_civil(year, month, day)
    timestamp = float(days * 86400 + hour * 3600 + minute * 60 + second)  # :60 = leap second
    violations = obsolete + ((WRONG_WEEKDAY,) if _weekday(days) != weekday else ())
    return DateParse(timestamp, form, violations)


def _case_fixed(text: str) -> str:
    """The value with day names, month names and the zone in the case the grammar requires."""
    names = {n.lower(): n for n in (*_DAYS_LONG, *_DAYS, *_MONTHS, "GMT")}
    return re.sub(r"[A-Za-z]+", lambda m: names.get(m.group(0).lower(), m.group(0)), text)


def _diagnose(text: str, now: float | None) -> tuple[str, ...]:
    """Why a value that is not an HTTP-date fails: the closest fix that makes it one."""
    parts = [p.rstrip() for p in _LIST_SPLIT.split(text)]
    if len(parts) > 1 and all(_strict(p, now) for p in parts):
        return (NOT_HTTP_DATE, LIST_OF_DATES)
    fixed = _case_fixed(text)
    if fixed != text and _strict(fixed, now):
        return (NOT_HTTP_DATE, WRONG_CASE)
    for candidate in (text, fixed):
        zone = _ZONE.search(candidate)
        rezoned = candidate[: zone.start()].rstrip() + " GMT" if zone else candidate
        if _strict(rezoned, now) or _strict(candidate + " GMT", now):
            return (NOT_HTTP_DATE, ZONE_NOT_GMT)
    return (NOT_HTTP_DATE,)


def _epoch(now: object) -> float | None:
    if now is None:
        return None
    if isinstance(now, datetime):
        return (now if now.tzinfo else now.replace(tzinfo=UTC)).timestamp()
    if isinstance(now, int | float) and not isinstance(now, bool):
        return float(now)
    raise TypeError(f"now must be epoch seconds (int or float), a datetime or None; got {now!r:.60}")


def parse_http_date(value: str | bytes, *, now: float | datetime | None = None) -> DateParse:
    """Parse an HTTP-date. ``now`` (epoch seconds or a datetime, naive = UTC) anchors two-digit
    rfc850 years; None means the current time.

    Any ``value`` is read, never raising: a non-text value is not an HTTP-date. Surrounding
    spaces and tabs are optional whitespace around a field value, not a violation. A wrong
    day-name is reported but, the grammar being met, the date stays valid. Raises TypeError
    (only) when ``now`` is none of the above.
    """
    now = _epoch(now)
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "surrogateescape")
    if not isinstance(value, str):
        return DateParse(None, None, (NOT_HTTP_DATE,))
    text = value.strip(_OWS)
    if not text:
        return DateParse(None, None, (NOT_HTTP_DATE, EMPTY_DATE))
    parsed = _strict(text, now)
    if parsed is not None:
        return parsed
    return DateParse(None, None, _diagnose(text, now))


def format_http_date(ts: float) -> str:
    """The IMF-fixdate for epoch seconds (fractions dropped: HTTP-dates have one-second
    resolution). Raises ValueError outside years 0000-9999, which the grammar cannot write."""
    if not math.isfinite(ts):
        raise ValueError(f"not a finite timestamp: {ts!r}")
    seconds = math.floor(ts)
    days, rest = divmod(seconds, 86400)
    year, month, day = _civil_from_days(days)
    if not 0 <= year <= 9999:
        raise ValueError(f"timestamp {ts!r} is outside the years an HTTP-date can hold")
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    return (
        f"{_DAYS[_weekday(days)]}, {day:02d} {_MONTHS[month - 1]} {year:04d} "
        f"{hour:02d}:{minute:02d}:{second:02d} GMT"
    )
