"""Caps on what one exchange may hold in the store, and how a value over its cap is kept.

A hostile or broken capture can carry a header value of a gigabyte or a number that SQLite
cannot store; one such field must cost neither the file nor the memory of the machine. Every
text field is kept up to FIELD_CAP bytes with a marker that says where it was cut and how long
it was (the marker is part of the stored value, so it survives every output); integers outside
SQLite's 64-bit range and non-finite times are stored as unknown (None).
"""

from __future__ import annotations

import math

#: Bytes of one stored text field (a header value, a URL) kept whole.
FIELD_CAP = 64 * 1024
#: Room for the marker: a value already cut (by the reader) is not cut again.
MARKER_ROOM = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def cut_marker(length: int) -> str:
    """What replaces the end of a value cut at FIELD_CAP: says where and how long it was."""
    return f" [etagwatch: cut at {FIELD_CAP} of {length} bytes]"


def cap_text(value: str, cap: int = FIELD_CAP) -> str:
    """``value`` itself when within ``cap`` characters (and MARKER_ROOM), else its first
    ``cap`` and the marker."""
    if len(value) <= cap + MARKER_ROOM:
        return value
    return value[:cap] + cut_marker(len(value.encode("utf-8", "surrogatepass")))


def int64_or_none(value: object) -> int | None:
    """An integer SQLite can store, or None (bools, floats and out-of-range values)."""
    if type(value) is int and INT64_MIN <= value <= INT64_MAX:
        return value
    return None


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
