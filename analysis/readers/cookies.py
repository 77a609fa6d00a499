"""Cookie names and values from Cookie / Set-Cookie fields, for hashing, never for storing.

Parsing is deliberately loose (browsers are): split on ';', take name=value pairs, strip one pair
of surrounding double quotes from a value so ``"abc"`` compares equal to an ETag opaque ``abc``.
"""

from __future__ import annotations

from collections.abc import Iterable


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parse_cookie_header(value: str) -> list[tuple[str, str]]:
    """``a=1; b=2`` -> [('a', '1'), ('b', '2')]; a bare token is a name with an empty value."""
    out = []
    for part in value.split(";"):
        name, eq, val = part.partition("=")
        name = name.strip()
        if name or eq:
            out.append((name, _unquote(val)))
    return out


def parse_set_cookie(value: str) -> tuple[str, str] | None:
    """The name and value of one Set-Cookie field (attributes ignored), or None if empty."""
    first = value.split(";", 1)[0]
    name, eq, val = first.partition("=")
    name = name.strip()
    if not eq:  # RFC 6265 5.2: no '=' means an empty name and this as the value
        name, val = "", name
    if not name and not val.strip():
        return None
    return name, _unquote(val)


def sent_cookies(cookie_fields: Iterable[str]) -> list[tuple[str, str]]:
    """All pairs from the request's Cookie fields (HTTP/2 may split them into several)."""
    return [pair for field in cookie_fields for pair in parse_cookie_header(field)]


def set_cookies(set_cookie_fields: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs from the response's Set-Cookie fields (one cookie per field; Firefox joins them
    with newlines in HAR exports, so those are split too)."""
    out = []
    for field in set_cookie_fields:
        for line in field.split("\n"):
            pair = parse_set_cookie(line)
            if pair:
                out.append(pair)
    return out
