"""URL -> (scheme, host, port, path, query) as the exchange record stores them, fast.

The answer is exactly what ``urllib.parse.urlsplit`` gives (scheme lower-cased, ``hostname``,
``port`` or the scheme's default, empty parts as None), but the split runs once per exchange and
captures hold hundreds of thousands of distinct URLs, which urlsplit's small cache cannot hold.
So the common shape (``http(s)://`` or ``ws(s)://``, ASCII host, no brackets, no tab or line
break) is split here with the same rules and the host/port part is memoised per netloc; every
other URL goes to urlsplit itself. tests/test_urlparts.py checks both paths agree.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import SplitResult, urlsplit

UrlParts = tuple[str | None, str | None, int | None, str | None, str | None]

DEFAULT_PORTS: dict[str, int] = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_FAST_SCHEMES = frozenset(DEFAULT_PORTS)
#: The host the detectors take from the URL of an exchange recorded without one (prepare),
#: and so the host whose partition such an exchange belongs to (the engines).
HOST_IN_URL = re.compile(r"^[a-z]+://([^/:?#]+)")


def host_in_url(url: object) -> str | None:
    """The host ``HOST_IN_URL`` finds in ``url``, None where it finds none."""
    found = HOST_IN_URL.match(url) if isinstance(url, str) else None
    return found.group(1) if found else None


@lru_cache(maxsize=8192)
def _host_port(netloc: str) -> tuple[str | None, int | None, bool]:
    """hostname, port and whether the port was unreadable, by urlsplit's own rules."""
    parts = SplitResult("", netloc, "", "", "")
    try:
        return parts.hostname, parts.port, False
    except ValueError:
        return parts.hostname, None, True


def _with_port(scheme: str | None, port: int | None, bad_port: bool) -> int | None:
    if bad_port:
        return None
    return port or DEFAULT_PORTS.get(scheme or "")


def split_url_slow(url: str) -> UrlParts:
    """The reference: urlsplit and its properties (raises ValueError as urlsplit does)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower() or None
    try:
        port = _with_port(scheme, parts.port, False)
    except ValueError:
        port = None
    return scheme, parts.hostname, port, parts.path or None, parts.query or None


def authority_end(url: str, start: int) -> int:
    """Where the authority that begins at ``start`` ends: at the first '/', '?' or '#'."""
    end = len(url)
    for c in "/?#":
        at = url.find(c, start)
        if 0 <= at < end:
            end = at
    return end


def authority_span(url: str) -> tuple[int, int] | None:
    """(start, end) of the authority of ``scheme://authority...`` or ``//authority...``;
    None for a URL without one (a path, ``data:``)."""
    if url.startswith("//"):
        start = 2
    else:
        i = url.find(":")
        if i <= 0 or url[i + 1 : i + 3] != "//" or not url[:i].replace("+", "").replace(
                "-", "").replace(".", "").isalnum():
            return None
        start = i + 3
    return start, authority_end(url, start)


def split_url(url: str) -> UrlParts:
    """(scheme, host, port, path, query) of a URL; raises ValueError where urlsplit does."""
    i = url.find(":", 0, 6)
    scheme = url[:i].lower() if i > 0 else ""
    if (
        scheme not in _FAST_SCHEMES
        or not url[:i].isascii()
        or url[i + 1 : i + 3] != "//"
        or "\t" in url
        or "\r" in url
        or "\n" in url
    ):
        return split_url_slow(url)
    start = i + 3
    end = authority_end(url, start)
    netloc = url[start:end]
    if "[" in netloc or "]" in netloc or not netloc.isascii():
        return split_url_slow(url)
    rest = url[end:]
    if "#" in rest:
        rest = rest.split("#", 1)[0]
    query = ""
    if "?" in rest:
        rest, query = rest.split("?", 1)
    host, port, bad_port = _host_port(netloc)
    return scheme, host, _with_port(scheme, port, bad_port), rest or None, query or None
