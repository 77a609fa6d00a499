"""Build the responses a precondition-honouring origin sends: 304, 412, 206, 416 and 428.

Kept apart from the replay addon so each response shape can be tested on its own, and so the
304 rules of RFC 9110 15.4.5 live in one place.
"""

from __future__ import annotations

import re

from mitmproxy import http

#: Fields a 304 must carry when the 200 would have carried them (RFC 9110 15.4.5).
NOT_MODIFIED_FIELDS: tuple[str, ...] = (
    "content-location",
    "date",
    "etag",
    "vary",
    "cache-control",
    "expires",
)

#: Message-level fields that are not representation metadata and may stay on a 304.
NOT_MODIFIED_PASSTHROUGH: tuple[str, ...] = ("server", "via", "age", "set-cookie")

# possessive repeats: with plain ones, whitespace runs on both sides of an empty number
# backtrack quadratically ("bytes=" + 256 KiB of spaces took 113 s)
_RANGE = re.compile(r"^\s*+bytes\s*+=\s*+(\d*+)\s*+-\s*+(\d*+)\s*+$", re.IGNORECASE)


def _copy_fields(source: http.Headers, names: tuple[str, ...]) -> list[tuple[bytes, bytes]]:
    fields: list[tuple[bytes, bytes]] = []
    for name in names:
        for value in source.get_all(name):
            fields.append((name.encode(), value.encode("latin-1", "replace")))
    return fields


def not_modified(full: http.Response) -> http.Response:
    """A 304 for ``full``: the 15.4.5 fields, Last-Modified only when there is no ETag (it then
    guides cache updates), no body and no Content-Length, Content-Type or Transfer-Encoding, so
    no stray bytes follow the status line on the wire."""
    fields = _copy_fields(full.headers, NOT_MODIFIED_FIELDS)
    if "etag" not in full.headers and "last-modified" in full.headers:
        fields += _copy_fields(full.headers, ("last-modified",))
    fields += _copy_fields(full.headers, NOT_MODIFIED_PASSTHROUGH)
    response = http.Response.make(304, b"", fields)
    # Response.make adds Content-Length: 0; a 304 describes the 200's length, so send none.
    response.headers.pop("content-length", None)
    response.http_version = full.http_version
    return response


def explain(status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> http.Response:
    """A short plain-text answer that tells a person why (412, 416, 428, 404)."""
    headers = [(b"content-type", b"text/plain; charset=utf-8"), *(extra or [])]
    return http.Response.make(status, (text.rstrip() + "\n").encode(), headers)


def precondition_failed(reason: str, rfc: str = "") -> http.Response:
    where = f" ({rfc})" if rfc else ""
    return explain(412, f"412 Precondition Failed: {reason}{where}.")


def precondition_required(
    method: str, url: str, etag: str | None, last_modified: str | None, exists: bool = True
) -> http.Response:
    """428 (RFC 6585 section 3): say exactly which header to send so a client can fix itself."""
    if not exists:
        text = (
            f"428 Precondition Required: this server refuses a PUT that creates {url} without "
            "If-None-Match: *, since a concurrent creation would be overwritten. "
            "Repeat the request with If-None-Match: *."
        )
        return explain(428, text)
    hints = []
    if etag:
        hints.append(f"If-Match: {etag}")
    if last_modified:
        hints.append(f"If-Unmodified-Since: {last_modified}")
    if not hints:
        hints.append("If-Match: <the ETag you last read>")
    text = (
        f"428 Precondition Required: this server refuses an unconditional {method} to {url}, "
        "which could overwrite someone else's change (a lost update). "
        "GET the resource, then repeat the request with " + " or ".join(hints) + "."
    )
    return explain(428, text)


#: Positions past this are past any body held in memory; longer digit strings are read as it, so
#: ``int`` never meets a 1 MB number (Python refuses more than 4300 digits with ValueError).
_FAR = 1 << 62


def _position(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return _FAR if len(digits) > 18 else int(digits)


def parse_single_range(value: str, length: int) -> tuple[int, int] | bool | None:
    """``(first, last)`` inclusive for one satisfiable byte range, ``False`` when the range is
    valid but unsatisfiable (416), ``None`` when we do not serve it (several ranges, other units,
    bad syntax): RFC 9110 14.2 lets a server ignore Range and send the full 200."""
    match = _RANGE.match(value)
    if not match:
        return None
    first_s, last_s = match.groups()
    if not first_s and not last_s:
        return None
    if not first_s:  # suffix range: the last N bytes
        suffix = _position(last_s)
        if suffix == 0:
            return False
        return (max(0, length - suffix), length - 1) if length else False
    first = _position(first_s)
    last = _position(last_s) if last_s else length - 1
    if last_s and last < first:
        return None
    if first >= length:
        return False
    return first, min(last, length - 1)


def partial(full: http.Response, range_value: str) -> http.Response | None:
    """206 with Content-Range for one byte range of ``full``'s body, 416 when unsatisfiable,
    ``None`` when the full response should go out instead."""
    body = full.content or b""
    parsed = parse_single_range(range_value, len(body))
    if parsed is None:
        return None
    if parsed is False:
        return explain(
            416,
            f"416 Range Not Satisfiable: the representation has {len(body)} bytes.",
            [(b"content-range", f"bytes */{len(body)}".encode())],
        )
    assert isinstance(parsed, tuple)
    first, last = parsed
    response = full.copy()
    response.status_code = 206
    response.reason = "Partial Content"
    response.headers.pop("transfer-encoding", None)
    response.headers.pop("content-encoding", None)  # the slice is of the decoded bytes
    response.content = body[first : last + 1]
    response.headers["content-range"] = f"bytes {first}-{last}/{len(body)}"
    return response
