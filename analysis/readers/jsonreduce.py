"""Read one JSON value that is too large or too deeply nested to hold, in bounded memory.

msgspec decodes a value only when all of it is in memory, and recurses once per nesting level
(RecursionError near 1000 levels). A HAR entry with a 1 GiB header value, a 500 MB body or
100,000 levels of nesting in an extension field would cost the whole file. This walks such a
value from the stream chunk by chunk and writes a *reduced* copy that msgspec can decode:

- a string longer than STRING_CAP keeps its first STRING_CAP bytes and a marker with its
  original length (analysis.limits.cut_marker); the response body text (``response.content.text``) is
  instead hashed while it streams by (sha256 of the text and, in case the entry says base64,
  of the decoded bytes), so the record still gets its content hash;
- a container nested deeper than MAX_DEPTH becomes ``null`` (counted in ``depth_dropped``);
- when the reduced copy itself would pass REDUCED_MAX (a value of millions of small parts),
  the rest is only walked to its end and ``data`` is None: the caller skips the value.

Scanning runs in C where the bytes are many: strings are matched by a possessive regex and
their pieces hashed in blocks; the Python loop runs once per bracket or string, and at most
REDUCED_MAX bytes of output are built. Memory: the stream's chunk plus one string prefix.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass, field
from typing import Protocol

import msgspec

from analysis.limits import FIELD_CAP, cut_marker

#: Longest string kept whole (bytes of JSON text): the store's field cap.
STRING_CAP = FIELD_CAP
#: Deepest container kept; deeper ones become null (a HAR entry needs 6 levels).
MAX_DEPTH = 64
#: Largest reduced copy built; beyond it the value is skipped.
REDUCED_MAX = 8 * 1024 * 1024
#: The body, relative to a HAR entry.
BODY_PATH = ("response", "content", "text")

_STRBODY = re.compile(rb'(?:[^"\\]++|\\.)*+', re.DOTALL)
_NEXT = re.compile(rb'["{}\[\]]')
_WS = b" \t\r\n"
_QUOTE, _LBRACE, _RBRACE, _LBRACKET, _RBRACKET, _COMMA = b'"{}[],'
_str = msgspec.json.Decoder(str)


class Window(Protocol):
    """What the reducer needs of a stream (analysis.readers.jsonstream.JSONStream)."""

    @property
    def offset(self) -> int: ...

    def window(self) -> tuple[bytes, int]: ...

    def seek(self, pos: int) -> None: ...

    def more(self) -> bool: ...


class ReduceError(Exception):
    """Malformed JSON met while reducing; ``offset`` is the byte offset in the file."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at byte {offset}")
        self.offset = offset


@dataclass
class StreamedText:
    """A string hashed while it streamed by (never held whole)."""

    length: int  # bytes of the decoded text as UTF-8
    sha256: str
    base64_length: int | None  # bytes decoded from it as base64; None if it is not base64
    base64_sha256: str | None


@dataclass
class Reduced:
    """A value read in bounded memory: its reduced JSON (None when too large even reduced)."""

    data: bytes | None
    size: int  # bytes of the original value
    body: StreamedText | None = None
    cut: list[tuple[str, int]] = field(default_factory=list)  # (dotted path, original bytes)
    depth_dropped: int = 0

    def notes(self) -> list[str]:
        """What was changed, one sentence each, for the reader's note on the entry."""
        out = [f"{path or 'value'} of {n} bytes cut at {STRING_CAP}" for path, n in self.cut[:5]]
        if len(self.cut) > 5:
            out.append(f"{len(self.cut) - 5} more long strings cut")
        if self.body is not None:
            out.append(f"body of {self.body.length} bytes hashed while read, not held")
        if self.depth_dropped:
            out.append(f"{self.depth_dropped} values nested deeper than {MAX_DEPTH} levels dropped")
        return out


class _Text:
    """Accumulates one long string: a prefix within STRING_CAP, and hashes when asked."""

    def __init__(self, hashed: bool) -> None:
        self.raw = 0
        self.prefix = bytearray()
        self.hashed = hashed
        self.sha = hashlib.sha256()
        self.length = 0
        self.b64 = hashlib.sha256()
        self.b64_length = 0
        self.b64_rest = b""
        self.b64_ok = True

    def feed(self, piece: bytes) -> None:
        """A piece of the JSON string's body, cut at a safe point (``_safe_cut``)."""
        self.raw += len(piece)
        room = STRING_CAP - len(self.prefix)
        if room > 0:
            self.prefix += piece[: _safe_cut(piece, 0, min(room, len(piece)), final=True)]
        if not self.hashed:
            return
        text = piece if b"\\" not in piece else _decode(piece)
        self.sha.update(text)
        self.length += len(text)
        if self.b64_ok:
            self._feed_b64(text)

    def _feed_b64(self, text: bytes) -> None:
        data = self.b64_rest + text.translate(None, _WS)
        whole = len(data) - len(data) % 4
        self.b64_rest = data[whole:]
        try:
            decoded = binascii.a2b_base64(data[:whole], strict_mode=True)
        except binascii.Error:
            self.b64_ok = False
            return
        self.b64.update(decoded)
        self.b64_length += len(decoded)

    def result(self) -> StreamedText:
        b64 = self.b64_ok and not self.b64_rest
        return StreamedText(
            self.length, self.sha.hexdigest(),
            self.b64_length if b64 else None, self.b64.hexdigest() if b64 else None,
        )


def _decode(piece: bytes) -> bytes:
    try:
        return _str.decode(b'"' + piece + b'"').encode("utf-8", "surrogatepass")
    except msgspec.DecodeError:
        return piece  # not valid JSON text: hashed as it is


def _safe_cut(buf: bytes, start: int, end: int, *, final: bool = False) -> int:
    """The largest cut <= end that splits neither an escape (a surrogate pair included) nor
    a UTF-8 character. ``final``: ``end`` may sit inside an escape that continues past it."""
    cut = end
    back = buf.rfind(b"\\", max(start, cut - 12), cut)
    # an escape near the end may be incomplete: keep it for the next piece
    if back >= 0 and (back + 6 > cut or buf[back + 1 : back + 2] == b"u" or final):
        cut = back
        high = buf[cut - 4 : cut - 2].lower() in (b"d8", b"d9", b"da", b"db")
        if cut - 6 >= start and buf[cut - 6 : cut - 4] == b"\\u" and high:
            cut -= 6  # the high half of a surrogate pair stays with its low half
    while cut > start and cut < len(buf) and buf[cut] & 0xC0 == 0x80:
        cut -= 1  # never start the next piece on a UTF-8 continuation byte
    return cut


def reduce_value(stream: Window, *, body_path: tuple[str, ...] = BODY_PATH) -> Reduced:
    """Read the value at the stream's position (which must start with '{', '[' or '"') and
    leave the stream after it. Raises ReduceError for malformed or truncated JSON."""
    return _Reducer(stream, body_path).run()


class _Reducer:
    def __init__(self, stream: Window, body_path: tuple[str, ...]) -> None:
        self.stream = stream
        self.body_path = body_path
        self.out: bytearray | None = bytearray()
        self.result = Reduced(None, 0)
        self.stack: list[int] = []
        self.keys: list[str | None] = []
        self.drop_at: int | None = None  # depth where a too-deep container started
        self.start = stream.offset

    def _emit(self, data: bytes) -> None:
        out = self.out
        if out is None or self.drop_at is not None:
            return
        out += data
        if len(out) > REDUCED_MAX:
            self.out = None  # too large even reduced: walk to the end, then skip

    def run(self) -> Reduced:
        stream = self.stream
        last = 0  # the last significant byte: tells a key from a value
        while True:
            buf, pos = stream.window()
            m = _NEXT.search(buf, pos)
            end = m.start() if m else len(buf)
            if end > pos:
                literal = buf[pos:end]
                if not self.stack:
                    raise ReduceError("expected an object, array or string", stream.offset)
                self._emit(literal)
                sig = literal.rstrip(_WS)
                if sig:
                    last = sig[-1]
            if m is None:
                stream.seek(end)
                if not stream.more():
                    raise ReduceError("file ends inside a JSON value", stream.offset)
                continue
            c = buf[end]
            stream.seek(end)
            if c == _QUOTE:
                is_key = bool(self.stack) and self.stack[-1] == _LBRACE and last in (_LBRACE, _COMMA)
                self._string(is_key)
                last = _QUOTE
                if not self.stack:
                    return self._finish()
                continue
            stream.seek(end + 1)
            if c in (_LBRACE, _LBRACKET):
                self.stack.append(c)
                self.keys.append(None)
                if self.drop_at is None and len(self.stack) > MAX_DEPTH:
                    self._emit(b"null")
                    self.drop_at = len(self.stack) - 1
                    self.result.depth_dropped += 1
                else:
                    self._emit(bytes((c,)))
            else:
                if not self.stack or (self.stack[-1] == _LBRACE) != (c == _RBRACE):
                    raise ReduceError("unbalanced brackets", stream.offset - 1)
                self.stack.pop()
                self.keys.pop()
                if self.drop_at is not None and len(self.stack) == self.drop_at:
                    self.drop_at = None
                else:
                    self._emit(bytes((c,)))
                if not self.stack:
                    return self._finish()
            last = c

    def _finish(self) -> Reduced:
        self.result.size = self.stream.offset - self.start
        self.result.data = bytes(self.out) if self.out is not None else None
        return self.result

    def _string(self, is_key: bool) -> None:
        """The string at the stream's position: kept, cut, or hashed (the body)."""
        stream = self.stream
        buf, q = stream.window()
        while True:
            e = _STRBODY.match(buf, q + 1).end()
            if e < len(buf) and buf[e] == _QUOTE:  # complete in the window
                if e - q - 1 <= STRING_CAP:
                    self._emit(buf[q : e + 1])
                    if is_key:
                        try:
                            self.keys[-1] = _str.decode(buf[q : e + 1])
                        except msgspec.DecodeError:
                            self.keys[-1] = None
                    stream.seek(e + 1)
                    return
                break
            if e - q - 1 > STRING_CAP:
                break
            stream.seek(q)  # short so far: read on and match again
            if not stream.more():
                raise ReduceError("file ends inside a string", stream.offset)
            buf, q = stream.window()
        path = self._path()
        body = not is_key and path == self.body_path
        text = _Text(hashed=body)
        pos = q + 1
        while True:
            e = _STRBODY.match(buf, pos).end()
            if e < len(buf) and buf[e] == _QUOTE:
                text.feed(buf[pos:e])
                stream.seek(e + 1)
                break
            cut = _safe_cut(buf, pos, max(pos, min(e, len(buf) - 4)))
            text.feed(buf[pos:cut])
            stream.seek(cut)
            if not stream.more():
                raise ReduceError("file ends inside a string", stream.offset)
            buf, pos = stream.window()
        if is_key:
            self.keys[-1] = None
        if body:
            self.result.body = text.result()
            self._emit(b'""')
            return
        self.result.cut.append((".".join(k or "?" for k in path), text.raw))
        marker = cut_marker(text.raw).encode()
        self._emit(b'"' + bytes(text.prefix) + marker + b'"')

    def _path(self) -> tuple[str, ...]:
        """Keys from the value's root to the string (None for array members)."""
        return tuple(k if k is not None else "[]" for k in self.keys)
