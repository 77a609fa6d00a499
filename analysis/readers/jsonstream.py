"""Walk a large JSON document in chunks, handing out the byte span of each value.

Memory stays bounded by the chunk size plus the largest single value, whatever the file size.
The scanning itself is msgspec's C code: ``decode(buffer[pos:], type=Raw)`` skips exactly one
value and reports where the trailing data starts ("trailing characters (byte N)"), which gives
the value's end without a Python loop over characters. (Measured against ijson and a regex
tokenizer in BENCHMARKS.md.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import BinaryIO, NamedTuple, TypeVar

import msgspec

from analysis.readers.jsonreduce import Reduced, ReduceError, reduce_value

CHUNK = 4 * 1024 * 1024
#: Upper bound of one run of items decoded in one call (array_batches).
RUN_BYTES = 64 * 1024
#: Items walked one by one to learn their separator; bytes of each item's start compared.
LEARN_ITEMS = 8
HEAD_BYTES = 64
#: A value larger than this is not held whole: ``bounded_value`` reduces it (jsonreduce).
VALUE_LIMIT = 32 * 1024 * 1024
#: Object keys longer than this end the file (no HAR key is longer than a few dozen bytes).
KEY_LIMIT = 1024 * 1024
#: After this many runs that could not be decoded whole, an array is walked item by item.
MAX_RUN_FAILURES = 3
#: Times a separator may be learned again after it stopped matching (entries of another
#: exporter further on: another first key), before runs stop for the array.
MAX_RELEARN = 8
_WS = b" \t\r\n"
_TRAILING = re.compile(r"trailing characters \(byte (\d+)\)")
_BYTE = re.compile(r"\(byte (\d+)\)")
#: Strings (kept) or the literals Python's json.dumps and some JavaScript exporters write for
#: non-finite numbers, which JSON has not (possessive repeats: linear on any input).
_NONFINITE = re.compile(rb'"(?:[^"\\]++|\\.)*+"|(-?Infinity|NaN)')
#: Strings (skipped) and brackets, to find where a value that msgspec refuses ends.
_BRACKETS = re.compile(rb'"(?:[^"\\]++|\\.)*+"|([\[\]{}])')
_raw = msgspec.json.Decoder(msgspec.Raw)
_str = msgspec.json.Decoder(str)
T = TypeVar("T")


class JSONStreamError(Exception):
    """Malformed or truncated JSON; ``offset`` is the byte offset in the file."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at byte {offset}")
        self.offset = offset


class Malformed(NamedTuple):
    """An array item that is not JSON but whose end its brackets show (``item_value``)."""

    message: str
    offset: int


class _TooLarge(Exception):
    """A value outgrew the limit given to ``JSONStream.value`` (the stream is at its start)."""


class JSONStream:
    """A cursor over a binary file: skip whitespace, read punctuation, strings and values."""

    def __init__(self, fileobj: BinaryIO, chunk: int | None = None) -> None:
        self._file = fileobj
        self._chunk = CHUNK if chunk is None else chunk
        self._buf = b""
        self._pos = 0
        self._base = 0  # file offset of _buf[0]
        self._eof = False
        #: values read with NaN / Infinity / -Infinity taken as null (``value``)
        self.nonfinite = 0
        self._fill()
        if self._buf.startswith(b"\xef\xbb\xbf"):  # UTF-8 BOM (Fiddler, Edge)
            self._pos = 3

    @property
    def offset(self) -> int:
        return self._base + self._pos

    def _fill(self, need: int = 1) -> bool:
        """Read more data, keeping the unread part; False at end of file."""
        if self._eof:
            return False
        grow = max(self._chunk, need)
        data = self._file.read(grow)
        if not data:
            self._eof = True
            return False
        self._base += self._pos
        self._buf = self._buf[self._pos :] + data
        self._pos = 0
        return True

    def peek(self) -> bytes:
        """The next non-whitespace byte (b'' at end of file), without consuming it."""
        while True:
            buf, pos = self._buf, self._pos
            n = len(buf)
            while pos < n and buf[pos] in _WS:
                pos += 1
            self._pos = pos
            if pos < n:
                return buf[pos : pos + 1]
            if not self._fill():
                return b""

    def expect(self, chars: bytes) -> bytes:
        """Consume one of ``chars`` (after whitespace) and return it."""
        got = self.peek()
        if not got or got not in chars:
            found = repr(got.decode("latin-1")) if got else "end of file"
            wanted = " or ".join(repr(c) for c in chars.decode())
            raise JSONStreamError(f"expected {wanted}, found {found}", self.offset)
        self._pos += 1
        return got

    # --- the reducer's view (analysis.readers.jsonreduce.Window) -----------------------------
    def window(self) -> tuple[bytes, int]:
        """The buffer and the position in it (valid until ``more``)."""
        return self._buf, self._pos

    def seek(self, pos: int) -> None:
        """Move within the current window."""
        self._pos = pos

    def more(self) -> bool:
        """Drop what is before the position and read another chunk; False at end of file."""
        return self._fill()

    def bounded_value(self, limit: int | None = None) -> memoryview | Reduced:
        """The next value as ``value`` gives it, or, when it is larger than ``limit`` or nested
        too deeply for msgspec, its reduced copy (analysis.readers.jsonreduce), read in
        bounded memory."""
        limit = VALUE_LIMIT if limit is None else limit
        self.peek()
        try:
            return self.value(limit=limit)
        except (_TooLarge, RecursionError):
            pass
        if self.peek() not in (b"{", b"[", b'"'):
            raise JSONStreamError(f"a value larger than {limit} bytes that is not an object, "
                                  "array or string", self.offset)
        try:
            return reduce_value(self)
        except ReduceError as exc:
            raise JSONStreamError(str(exc).rsplit(" at byte ", 1)[0], exc.offset) from None

    def item_value(self) -> memoryview | Reduced | Malformed:
        """An array item as ``bounded_value`` gives it; an object item that is not JSON (a
        stray byte, a broken escape) but whose brackets close before the next ',' or ']' is
        stepped over and comes back as ``Malformed``, so it costs that item alone. Anything
        else (a file cut short, brackets that never close) still ends the array."""
        try:
            return self.bounded_value()
        except JSONStreamError as exc:
            if self.peek() != b"{":
                raise
            at = self.offset
            while (end := _value_end(self._buf, self._pos)) is None:
                size = len(self._buf) - self._pos
                if size > VALUE_LIMIT or not self._fill(need=size):
                    raise exc from None
            rest = self._buf[end : end + 64].lstrip(_WS)
            if rest[:1] not in (b",", b"]"):
                raise
            self._pos = end
            message = str(exc).rsplit(" at byte ", 1)[0]
            where = _BYTE.search(message)  # msgspec counts from the item's start
            if where:
                message = (message[: where.start()] + message[where.end() :]).strip()
                at += int(where.group(1))
            return Malformed(message, at)

    def value(self, limit: int | None = None) -> memoryview:
        """The next complete JSON value as a view of its bytes (valid until the next call).

        With ``limit``, raises _TooLarge (the stream left at the value) rather than hold more;
        msgspec's RecursionError (about 1000 levels of nesting) leaves the stream there too."""
        self.peek()
        while True:
            view = memoryview(self._buf)[self._pos :]
            try:
                _raw.decode(view)
            except msgspec.DecodeError as exc:
                msg = str(exc)
                m = _TRAILING.search(msg)
                if m:
                    end = self._pos + int(m.group(1)) - 1
                    span = memoryview(self._buf)[self._pos : end]
                    self._pos = end
                    return span
                if "truncated" in msg or _at_end(msg, len(view)):
                    if limit is not None and 2 * len(view) > limit:
                        raise _TooLarge from None
                    # read at least as much again as the partial value: geometric in the
                    # size of one value, never in the size of the file
                    if self._fill(need=len(self._buf) - self._pos):
                        continue
                    raise JSONStreamError("file ends inside a JSON value", self.offset) from None
                repaired = self._nonfinite_as_null(limit)
                if repaired is not None:
                    return repaired
                raise JSONStreamError(_short(msg), self.offset) from None
            # The value runs to the end of the buffer: it may continue (a number, say).
            if not self._fill():
                span = memoryview(self._buf)[self._pos :]
                self._pos = len(self._buf)
                return span

    def _nonfinite_as_null(self, limit: int | None) -> memoryview | None:
        """The next object or array with NaN / Infinity / -Infinity (outside strings) read as
        null, when those literals are all that keeps it from being JSON; else None. One such
        field (Python-made HARs write ``"time": NaN``) must not cost the rest of the file."""
        if self.peek() not in (b"{", b"["):
            return None
        while True:
            end = _value_end(self._buf, self._pos)
            if end is not None:
                break
            size = len(self._buf) - self._pos
            if (limit is not None and size > limit) or not self._fill(need=size):
                return None
        original = self._buf[self._pos : end]
        found = []
        fixed = _NONFINITE.sub(lambda m: found.append(1) or b"null" if m.group(1) else m.group(0),
                               original)
        if not found:
            return None
        try:
            _raw.decode(fixed)
        except msgspec.DecodeError:
            return None
        self._pos = end
        self.nonfinite += 1
        return memoryview(fixed)

    def string(self) -> str:
        """The next value, which must be a JSON string (an object key, say)."""
        at = self.offset
        if self.peek() != b'"':
            raise JSONStreamError("expected a string", at)
        try:
            return _str.decode(self.value(limit=KEY_LIMIT))
        except _TooLarge:
            raise JSONStreamError(f"a string (an object key) longer than {KEY_LIMIT} bytes", at) from None
        except msgspec.DecodeError as exc:
            raise JSONStreamError(_short(str(exc)), at) from None

    def skip(self) -> None:
        """Step over the next value, in bounded memory whatever its size."""
        self.bounded_value()

    def object_keys(self):
        """Iterate an object's keys; the caller must consume each key's value."""
        self.expect(b"{")
        if self.peek() == b"}":
            self._pos += 1
            return
        while True:
            key = self.string()
            self.expect(b":")
            yield key
            if self.expect(b",}") == b"}":
                return

    def array_items(self):
        """Iterate an array; yields before each item, which the caller must consume."""
        self.expect(b"[")
        if self.peek() == b"]":
            self._pos += 1
            return
        while True:
            yield
            if self.expect(b",]") == b"]":
                return


    def array_batches(
        self, decode_run: Callable[[bytes], T | None]
    ) -> Iterator[tuple[memoryview | Reduced | Malformed, None] | tuple[None, T]]:
        """Iterate an array of objects as (span, None) for one item or (None, run) for a
        run of items decoded at once, in order. An item too large or too deep to hold comes
        as its ``Reduced`` copy instead of a span.

        Scanning each item for its end and then decoding it costs two passes and two calls
        per item. Once the separator between items is known (learned from the first items,
        such as ``},\n    {`` or ``},{"startedDateTime"``), a run of items up to the last
        separator within RUN_BYTES is handed to ``decode_run`` as ``b"[" + run + b"]"``: one
        call decodes them all. That is safe because the run starts at a real item start: if
        the cut were not a real item boundary (the separator text inside an item), the run's
        last object would be unclosed and the decode would fail. When ``decode_run`` returns
        None (a wrong cut, or an item its types do not fit) the same bytes are walked item by
        item, so the caller sees every item exactly once, in a run or as a span.
        """
        self.expect(b"[")
        if self.peek() == b"]":
            self._pos += 1
            return
        learner = _SeparatorLearner()
        failures = relearned = 0
        while True:
            buf, pos = self._buf, self._pos
            pattern = learner.pattern if failures < MAX_RUN_FAILURES else None
            cut = buf.rfind(pattern, pos, pos + RUN_BYTES) if pattern else -1
            # A whole item and the separator after it were in view, yet the pattern was not:
            # its first key is not the next items' (a file joined from several exports).
            # Learned again from the items after this one; else every later item would cost a
            # fruitless scan of RUN_BYTES.
            stale = pattern is not None and cut < 0 and self._missed(pattern)
            if cut > pos:
                run = decode_run(b"[" + buf[pos : cut + 1] + b"]")
                if run is not None:
                    self._pos = cut + 1
                    yield None, run
                    if self.expect(b",]") == b"]":
                        return
                    self.peek()
                    continue
                failures += 1
                stop = self._base + cut + 1  # walk item by item up to the failed cut
            else:
                stop = self.offset + 1  # one item
            while self.offset < stop:
                buf, start = self._buf, self._pos
                span = self.item_value()
                end = self._pos
                yield span, None
                if self.expect(b",]") == b"]":
                    return
                self.peek()
                if self._buf is buf:  # no refill meanwhile: item and separator are in view
                    learner.add(buf[end - 1 : self._pos + 1], buf[start : start + HEAD_BYTES])
            if stale:
                learner = _SeparatorLearner()
                relearned += 1
                if relearned > MAX_RELEARN:  # items keep changing: walk them one by one
                    failures = MAX_RUN_FAILURES

    def _missed(self, pattern: bytes) -> bool:
        """Whether the next item and the separator after it lie in the window ``rfind`` just
        searched (so a right ``pattern`` would have been found there). msgspec skips the item
        (a bracket scan in Python would cost far more on long bodies full of escaped quotes);
        only called when the pattern was not found."""
        buf, start = self._buf, self._pos
        window = min(len(buf), start + RUN_BYTES) - len(pattern)
        try:
            _raw.decode(memoryview(buf)[start:window])
        except msgspec.DecodeError as exc:
            m = _TRAILING.search(str(exc))
            if m is None:
                return False  # a large item (cut by the window) or not JSON: no run here
            end = start + int(m.group(1)) - 1
            return buf[end:window].lstrip(_WS)[:1] == b","
        return False  # the item fills the window


class _SeparatorLearner:
    """Learns the bytes between array items (from the closing '}' to the opening '{' and the
    first key, when all items agree on them) from the first LEARN_ITEMS items."""

    __slots__ = ("heads", "pattern", "seps")

    def __init__(self) -> None:
        self.seps: set[bytes] = set()
        self.heads: list[bytes] = []
        self.pattern: bytes | None = None

    def add(self, sep: bytes, head: bytes) -> None:
        if len(self.heads) >= LEARN_ITEMS:
            return
        self.seps.add(sep)
        self.heads.append(head)
        if len(self.heads) < LEARN_ITEMS:
            return
        (sep, *others) = self.seps
        if others or not (sep.startswith(b"}") and sep.endswith(b"{")):
            return  # items disagree, or are not objects: no runs for this array
        head = _common_prefix(self.heads)
        key_end = head.find(b'":')  # the first key, when every item starts with the same one
        self.pattern = sep + (head[1 : key_end + 2] if key_end > 0 else b"")


def _value_end(buf: bytes, pos: int) -> int | None:
    """End of the object or array starting at ``pos`` by its brackets (strings skipped, the
    rest unchecked), or None when it does not end within ``buf``."""
    depth = 0
    for m in _BRACKETS.finditer(buf, pos):
        bracket = m.group(1)
        if bracket is None:
            continue
        depth += 1 if bracket in b"[{" else -1
        if depth == 0:
            return m.end()
    return None


def _at_end(msg: str, size: int) -> bool:
    """Whether an error points at the very end of the input: a number cut by the chunk edge
    (``1.``, ``-``) reads as malformed, not truncated, yet is only incomplete."""
    m = _BYTE.search(msg)
    return m is not None and int(m.group(1)) >= size


def _common_prefix(items: list[bytes]) -> bytes:
    first, last = min(items), max(items)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def _short(msg: str) -> str:
    return msg.replace("JSON is malformed: ", "malformed JSON: ")
