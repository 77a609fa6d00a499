"""HAR 1.2 reader, tolerant of what Chrome, Firefox, Safari, mitmproxy, Charles, Fiddler and
hand-written test files actually contain, and streaming: each entry is decoded on its own from
its byte span (analysis.readers.jsonstream), so memory does not grow with the file.

Decisions (see docs/schema.md, "HAR reading"):
- a bad entry is skipped with its reason and index; a file that is not a HAR raises ReadError;
- a bare entry object at the top level (no ``log``) is read as one entry, with a note;
- requests whose fields sit inside ``postData`` (haralyzer test derivatives) are skipped;
- ``data:``, ``blob:``, ``about:`` URLs are skipped: no HTTP exchange happened;
- a 304 never counts a body on the wire (body_size 0), but Chrome's cached body, when listed,
  is the selected representation's body and is hashed into content_hash;
- ``pages`` listed after ``entries`` are not used for page context (Referer / Origin are).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol

import msgspec

from analysis.exchange import DEFAULT_BACKEND_HEADERS, Exchange
from analysis.headers import split_pseudo
from analysis.privacy import DEFAULT_PRIVACY, Privacy
from analysis.readers.jsonreduce import Reduced, StreamedText
from analysis.readers.jsonstream import JSONStream, JSONStreamError, Malformed
from analysis.readers.model import Entry, NameValue, Page
from analysis.readers.record import Row, build_exchange, build_row
from analysis.readers.result import Note, ReadError, Skip

_entry = msgspec.json.Decoder(Entry)
_entry_run = msgspec.json.Decoder(list[Entry])
_raw_run = msgspec.json.Decoder(list[msgspec.Raw])
_pages = msgspec.json.Decoder(list[Page])
_any = msgspec.json.Decoder()
_str = msgspec.json.Decoder(str)

HTTP_SCHEMES = frozenset({"http", "https", "ws", "wss"})
#: ``log.creator.name`` prefixes of browsers' own exports (lower case).
_BROWSERS = ("webinspector", "chrome", "chromium", "firefox", "firebug", "edge", "internet explorer",
             "ie", "f12", "safari", "webkit", "opera", "brave")
#: Files at least this large (on disk) are converted by worker processes when workers > 1.
PARALLEL_MIN_BYTES = 16 * 1024 * 1024
#: Bare-entry files are decoded whole; larger ones are not plausible as a single entry.
BARE_ENTRY_LIMIT = 64 * 1024 * 1024


class _Counting(io.RawIOBase):
    """Passes reads through and reports how many (compressed) bytes were read, for progress."""

    def __init__(self, raw: BinaryIO, on_read: Callable[[int], None]) -> None:
        self._raw = raw
        self._on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        n = self._raw.readinto(b)
        if n:
            self._on_read(n)
        return n or 0

    def close(self) -> None:
        self._raw.close()
        super().close()


_JSON_KINDS = {b"{": "an object", b'"': "a string", b"n": "null", b"t": "a boolean",
               b"f": "a boolean"}


class _TolerantGzip(io.RawIOBase):
    """gunzipped bytes that end where the compressed data does: ``GzipFile.read`` raises
    EOFError on a truncated stream and drops what it had decompressed in that call, so a cut
    ``.har.gz`` lost the entries before the cut (a cut ``.har`` keeps them). Reading in small
    pieces keeps all but the last piece; ``truncated`` says it happened."""

    PIECE = 256 * 1024

    def __init__(self, fileobj: BinaryIO) -> None:
        self._gz = gzip.GzipFile(fileobj=fileobj, mode="rb")
        self.truncated = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        if self.truncated:
            return 0
        view = memoryview(buffer).cast("B")
        try:
            data = self._gz.read1(min(len(view), self.PIECE))
        except EOFError:
            self.truncated = True
            return 0
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._gz.close()
        super().close()


def open_maybe_gzip(path: Path, on_read: Callable[[int], None] | None = None) -> BinaryIO:
    """A binary file object, transparently gunzipping (gzip magic, whatever the name)."""
    raw: BinaryIO = path.open("rb")
    gz = raw.read(2) == b"\x1f\x8b"
    raw.seek(0)
    if on_read is not None:
        raw = io.BufferedReader(_Counting(raw, on_read), buffer_size=1 << 20)  # type: ignore[assignment]
    if gz:
        return io.BufferedReader(_TolerantGzip(raw), buffer_size=1 << 20)  # type: ignore[return-value]
    return raw


class Offloaded(NamedTuple):
    """A run of entries (``b"[...]"``) left to another process to convert."""

    data: bytes
    count: int


class RunOffload(Protocol):
    """Takes some runs of entries off the reader (analysis.writer_process.WriterProcess
    converts them in the writer process, keeping file order)."""

    def wants_run(self) -> bool: ...

    def take(self, reader: HarReader, data: bytes, first_index: int, count: int) -> None: ...


class HarReader:
    """Turns one HAR file into exchanges (or store rows, with ``rows``), skips and notes
    (a generator per file)."""

    def __init__(
        self,
        path: str | Path,
        *,
        client: str,
        key: bytes,
        source: str | None = None,
        backend_headers: Sequence[str] = DEFAULT_BACKEND_HEADERS,
        redact_validators: bool = False,
        privacy: Privacy = DEFAULT_PRIVACY,
        on_read: Callable[[int], None] | None = None,
        workers: int = 1,
        offload: RunOffload | None = None,
        rows: bool = False,
    ) -> None:
        self.path = Path(path)
        #: yield store rows (``build_row`` tuples) instead of Exchange records: bulk ingest
        #: stores them as they are
        self.rows = rows
        self._build = build_row if rows else build_exchange
        self.on_read = on_read
        self.offload = offload
        self.workers = workers
        self.source = source or str(path)
        self.client = client
        self.key = key
        self.backend_headers = backend_headers
        self.redact_validators = redact_validators
        self.privacy = privacy
        self.pages: dict[str, str | None] = {}
        self.creator = ""
        self.entries_seen = 0

    def __iter__(self) -> Iterator[Exchange | Row | Skip | Note]:
        try:
            with open_maybe_gzip(self.path, self.on_read) as fh:
                try:
                    yield from self._walk(JSONStream(fh))
                except JSONStreamError as exc:
                    if getattr(getattr(fh, "raw", None), "truncated", False):
                        raise ReadError(self.source, "the gzip data ends early (cut short?); "
                                        f"entries before the cut were read ({exc})") from None
                    raise
        except JSONStreamError as exc:
            raise ReadError(self.source, f"not valid JSON: {exc}") from None
        except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
            raise ReadError(self.source, f"cannot read: {exc}") from None

    def _walk(self, stream: JSONStream) -> Iterator[Exchange | Row | Skip | Note]:
        first = stream.peek()
        if first != b"{":
            what = "an empty file" if not first else f"JSON starting with {first!r}"
            raise ReadError(self.source, f"not a HAR file: {what}, expected an object with 'log'")
        root_keys = []
        found_log = False
        for key in stream.object_keys():
            root_keys.append(key)
            if key == "log" and stream.peek() == b"{":
                found_log = True
                yield from self._log(stream)
            else:
                stream.skip()
        if stream.peek():
            raise JSONStreamError("trailing data after the HAR object", stream.offset)
        if not found_log:
            if {"request", "response"} <= set(root_keys):
                yield from self._bare_entry()
                return
            keys = ", ".join(repr(k) for k in root_keys[:5]) or "none"
            raise ReadError(self.source, f"not a HAR file: no 'log' object (top-level keys: {keys})")

    def _log(self, stream: JSONStream) -> Iterator[Exchange | Row | Skip | Note]:
        saw_entries = False
        odd_entries = ""
        for key in stream.object_keys():
            if key == "entries" and stream.peek() != b"[":
                odd_entries = _JSON_KINDS.get(stream.peek(), "not a list")
                stream.skip()
            elif key == "entries":
                saw_entries = True
                if self.workers > 1 and self._size() >= PARALLEL_MIN_BYTES:
                    yield from convert_in_workers(self, stream, self.workers)
                    continue
                yield from self._entries(stream)
            elif key == "pages" and not saw_entries:
                self._read_pages(_whole(stream.bounded_value()))
            elif key == "creator":
                span = _whole(stream.bounded_value())
                try:
                    creator = _any.decode(span) if span is not None else None
                    self.creator = str(creator.get("name", "")) if isinstance(creator, dict) else ""
                except (msgspec.DecodeError, RecursionError):
                    pass
            else:
                stream.skip()
        if not saw_entries:  # a malformed shape, as a top-level array is: an error
            what = f"log.entries is {odd_entries}" if odd_entries else "log has no 'entries'"
            raise ReadError(self.source, f"not a HAR file: {what}, expected a list of entries")

    def _entries(self, stream: JSONStream) -> Iterator[Exchange | Row | Skip | Note]:
        """The entries array: runs decoded at once (or handed to ``offload``), odd entries
        one by one (see JSONStream.array_batches), oversized ones reduced."""
        index = 0
        nonfinite = stream.nonfinite
        for span, run in stream.array_batches(self._run_decoder()):
            if isinstance(span, Reduced):
                yield from self.reduced_entry(span, index)
                index += 1
            elif isinstance(span, Malformed):
                yield Skip(self.source, index, f"entry is not valid JSON: {span.message} "
                                               f"(at byte {span.offset})")
                index += 1
            elif span is not None:
                if stream.nonfinite != nonfinite:
                    nonfinite = stream.nonfinite
                    yield Note(self.source, f"entry {index}: NaN or Infinity (not JSON numbers) "
                                            "read as null")
                yield from self._entry_or_reduced(span, index)
                index += 1
            elif isinstance(run, Offloaded):
                self.offload.take(self, run.data, index, run.count)  # type: ignore[union-attr]
                index += run.count
            else:
                for entry in run:  # type: ignore[union-attr]
                    yield self._convert(entry, index)
                    index += 1
            self.entries_seen = index

    def _run_decoder(self) -> Callable[[bytes], list[Entry] | Offloaded | None]:
        offload = self.offload
        if offload is None:
            return _decode_run

        def decode(data: bytes) -> list[Entry] | Offloaded | None:
            if not offload.wants_run():
                return _decode_run(data)
            try:  # only counted here (a cheap skip-parse), decoded where it is converted
                return Offloaded(data, len(_raw_run.decode(data)))
            except (msgspec.DecodeError, RecursionError):
                return None

        return decode

    def convert_run(self, data: bytes, first_index: int) -> list[Exchange | Row | Skip]:
        """A run of entries (``b"[" + entries + b"]"``, as handed to ``offload``) converted
        exactly as ``_entries`` would have: typed in one call, else entry by entry."""
        entries = _decode_run(data)
        if entries is not None:
            return [self._convert(e, first_index + i) for i, e in enumerate(entries)]
        spans = _raw_run.decode(data)
        return [self.entry(memoryview(span), first_index + i) for i, span in enumerate(spans)]

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def config(self) -> dict:
        """What a worker process needs to convert this file's entries (``from_config``)."""
        return dict(
            path=str(self.path), source=self.source, client=self.client, key=self.key,
            backend_headers=tuple(self.backend_headers),
            redact_validators=self.redact_validators, pages=self.pages, creator=self.creator,
            rows=self.rows, privacy=msgspec.structs.asdict(self.privacy),
        )

    def _read_pages(self, span: memoryview | bytes | None) -> None:
        if span is None:
            return
        try:
            pages = _pages.decode(span)
        except (msgspec.DecodeError, RecursionError):
            try:
                raw = _any.decode(span)
                pages = msgspec.convert(
                    [p for p in raw if isinstance(p, dict)] if isinstance(raw, list) else [],
                    list[Page], strict=False,
                )
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
                return
        for page in pages:
            if page.id is not None:
                title = page.title if isinstance(page.title, str) else None
                url = title if title and title.lower().startswith(("http://", "https://")) else None
                self.pages[str(page.id)] = url

    def _bare_entry(self) -> Iterator[Exchange | Row | Skip | Note]:
        with open_maybe_gzip(self.path) as fh:
            data = fh.read(BARE_ENTRY_LIMIT + 1)
        if len(data) > BARE_ENTRY_LIMIT:
            raise ReadError(self.source, "not a HAR file: no 'log' object")
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        yield Note(self.source, "a bare HAR entry without 'log': read as one entry (index 0)")
        self.entries_seen = 1
        yield from self._entry_or_reduced(memoryview(data), 0)

    # --- one entry --------------------------------------------------------------------------
    def entry(self, span: memoryview | bytes, index: int) -> Exchange | Row | Skip:
        """One entry's span -> exchange, or a Skip saying why not. Never raises. (Notes on
        what was cut from an oversized entry come only from ``_entry_or_reduced``.)"""
        *_, last = self._entry_or_reduced(span, index)
        return last  # type: ignore[return-value]

    def _decode_entry(self, span: memoryview | bytes, index: int) -> Exchange | Row | Skip:
        """``entry`` without the fallback: RecursionError for nesting msgspec cannot follow."""
        try:
            entry = _entry.decode(span)
        except (msgspec.ValidationError, msgspec.DecodeError):
            entry = self._lenient(span)
            if isinstance(entry, str):
                return Skip(self.source, index, entry)
        return self._convert(entry, index)

    def _entry_or_reduced(self, span: memoryview, index: int) -> Iterator[Exchange | Row | Skip | Note]:
        """``entry``, or for an entry nested too deeply for msgspec its reduced copy."""
        try:
            yield self._decode_entry(span, index)
        except RecursionError:
            try:
                reduced = JSONStream(io.BytesIO(bytes(span))).bounded_value(limit=0)
            except JSONStreamError as exc:
                yield Skip(self.source, index, f"entry is not valid JSON: {exc}")
                return
            yield from self.reduced_entry(reduced, index)  # type: ignore[arg-type]

    def reduced_entry(self, reduced: Reduced, index: int) -> Iterator[Exchange | Row | Skip | Note]:
        """An entry read in bounded memory (jsonreduce): converted from its reduced copy, with
        a note on what was cut, or skipped when even that was too large."""
        if reduced.data is None:
            yield Skip(self.source, index, f"entry of {reduced.size} bytes is too large to read, "
                       "even with long values cut")
            return
        notes = reduced.notes()
        if notes:
            yield Note(self.source, f"entry {index}: " + "; ".join(notes))
        try:
            entry = _entry.decode(reduced.data)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            entry = self._lenient(reduced.data)
            if isinstance(entry, str):
                yield Skip(self.source, index, entry)
                return
        yield self._convert(entry, index, reduced.body)

    def _convert(
        self, entry: Entry, index: int, streamed: StreamedText | None = None
    ) -> Exchange | Row | Skip:
        """A decoded entry -> exchange, or a Skip saying why not. Never raises."""
        try:
            return self._exchange(entry, index, streamed)
        except _Unusable as exc:
            return Skip(self.source, index, str(exc))
        except (ValueError, TypeError, UnicodeError, OverflowError) as exc:
            return Skip(self.source, index, f"unusable entry: {exc}")

    def _lenient(self, span: memoryview | bytes) -> Entry | str:
        """Second chance for entries with odd types (numbers as strings, null headers)."""
        try:
            raw = _any.decode(span)
        except msgspec.DecodeError as exc:
            return f"entry is not valid JSON: {exc}"
        except RecursionError:
            return "entry is nested too deeply to read"
        if not isinstance(raw, dict):
            return f"entry is a JSON {type(raw).__name__}, not an object"
        try:
            return msgspec.convert(_sanitise(raw), Entry, strict=False)
        except msgspec.ValidationError as exc:
            return f"entry does not fit HAR 1.2: {exc}"

    def _no_network(self, e: Entry) -> bool:
        """A browser's entry whose timings show no network at all (no send, no wait, nothing
        received, no time): IE / Edge and old Chrome list cache hits so. Hand-written files and
        replay tools (Polly.JS) write zero timings for real exchanges, so only browsers count."""
        t = e.timings
        if t is None or not self.creator.lower().startswith(_BROWSERS):
            return False
        phases = (t.send, t.wait, t.receive)
        return all(p is not None and p <= 0 for p in phases) and (e.time or 0) <= 0

    def _exchange(self, e: Entry, index: int, streamed: StreamedText | None = None) -> Exchange | Row:
        req, resp = e.request, e.response
        if req is None:
            raise _Unusable("entry has no request")
        if not req.url:
            nested = isinstance(req.postData, dict) and "url" in req.postData
            raise _Unusable(
                "request has no url (its fields are nested in request.postData; not HAR 1.2)"
                if nested
                else "request.url is empty"
            )
        scheme = req.url.split(":", 1)[0].lower() if ":" in req.url else ""
        if scheme == "data":
            raise _Unusable("data: URL, no HTTP exchange")
        req_fields, pseudo = split_pseudo(_lowered(req.headers))
        method = req.method or pseudo.get(":method", "")
        url = req.url
        if scheme not in HTTP_SCHEMES:
            if method.upper() == "CONNECT" or "://" not in url:
                url = f"{pseudo.get(':scheme', 'https')}://{url.split('://')[-1]}"
            else:
                raise _Unusable(f"{scheme}: URL, no HTTP exchange")
        if not method:
            raise _Unusable("request.method is empty")
        resp_fields = split_pseudo(_lowered(resp.headers))[0] if resp else []
        status = resp.status if resp else None
        version = (resp.httpVersion if resp and resp.httpVersion else None) or req.httpVersion

        from_cache, cache_kind = False, None
        if e.fromCache:
            from_cache, cache_kind = True, e.fromCache.lower()
        elif e.fetchType and "cache" in e.fetchType.lower():
            from_cache, cache_kind = True, e.fetchType.lower().replace(" cache", "")
        elif resp and status and not resp.headers and not resp.httpVersion:
            # Firefox / Firebug list cache hits as a 200 without headers or version
            from_cache = True
            cache_kind = "firefox-cache" if self.creator.startswith("Firefox") else "headerless"
        elif resp and status in (200, 203, 304) and self._no_network(e):
            from_cache, cache_kind = True, "no-network"

        body = _body(resp.content) if resp and resp.content else None
        content_size = resp.content.size if resp and resp.content else None
        body_digest = None
        if streamed is not None and resp and resp.content:  # the body was hashed as it was read
            body = None
            if (resp.content.encoding or "").lower() == "base64":
                if streamed.base64_sha256 is not None:
                    body_digest = (streamed.base64_sha256, streamed.base64_length)
            else:
                body_digest = (streamed.sha256, streamed.length)
        error = e.error or (resp.error if resp else None)
        return self._build(
            source=self.source,
            source_kind="har",
            client=self.client,
            key=self.key,
            entry_index=index,
            started=_started(e.startedDateTime),
            page_url=self.pages.get(e.pageref) if e.pageref else None,
            method=method,
            url=url,
            http_version=version,
            req_headers=req_fields,
            resp_headers=resp_fields,
            status=status,
            error=error,
            body=body,
            body_digest=body_digest,
            body_size=resp.bodySize if resp else None,
            content_size=content_size,
            from_cache=from_cache,
            cache_kind=cache_kind,
            server_ip=(e.serverIPAddress or "").strip("[]") or None,
            extra_cookies_sent=[(c.name, c.value) for c in req.cookies],
            extra_cookies_set=[(c.name, c.value) for c in resp.cookies] if resp else (),
            backend_headers=self.backend_headers,
            redact_validators=self.redact_validators,
            privacy=self.privacy,
        )


def convert_in_workers(
    reader: HarReader, stream: JSONStream, workers: int
) -> Iterator[Exchange | Row | Skip]:
    """Scan entry spans here, convert them in ``workers`` processes, yield in file order.

    At most 2 x workers batches of BATCH_BYTES are in flight, so memory stays flat.
    """
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    config = reader.config()
    pending: deque = deque()
    batch: list[tuple[int, bytes]] = []
    size = 0
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        for index, _ in enumerate(stream.array_items()):
            span = stream.item_value()
            if isinstance(span, Malformed):  # a skip in its place in file order
                skip = Skip(reader.source, index, f"entry is not valid JSON: {span.message} "
                                                  f"(at byte {span.offset})")
                if batch:
                    pending.append(pool.submit(_convert_batch, config, batch))
                    batch, size = [], 0
                done_skip: Future = Future()
                done_skip.set_result([skip])
                pending.append(done_skip)
                reader.entries_seen = index + 1
                continue
            if isinstance(span, Reduced):  # converted here, in its place in file order
                if batch:
                    pending.append(pool.submit(_convert_batch, config, batch))
                    batch, size = [], 0
                done: Future = Future()
                done.set_result(list(reader.reduced_entry(span, index)))
                pending.append(done)
                reader.entries_seen = index + 1
                continue
            batch.append((index, bytes(span)))
            size += len(span)
            reader.entries_seen = index + 1
            if size >= BATCH_BYTES or len(batch) >= BATCH_ENTRIES:
                pending.append(pool.submit(_convert_batch, config, batch))
                batch, size = [], 0
                while len(pending) >= 2 * workers:
                    yield from pending.popleft().result()
        if batch:
            pending.append(pool.submit(_convert_batch, config, batch))
        while pending:
            yield from pending.popleft().result()


BATCH_BYTES = 2 * 1024 * 1024
BATCH_ENTRIES = 1000


def reader_from_config(config: dict) -> HarReader:
    """A reader that converts entries as the one whose ``config()`` this is (a worker's)."""
    config = dict(config)
    pages, creator = config.pop("pages"), config.pop("creator")
    config["backend_headers"] = tuple(config["backend_headers"])
    config["privacy"] = msgspec.convert(config.get("privacy", {}), Privacy)
    reader = HarReader(config.pop("path"), **config)
    reader.pages, reader.creator = pages, creator
    return reader


def _convert_batch(config: dict, batch: list[tuple[int, bytes]]) -> list[Exchange | Row | Skip]:
    """Worker side: entries of one batch converted in order (a reader is cheap to build)."""
    reader = reader_from_config(config)
    return [reader.entry(memoryview(span), index) for index, span in batch]


def _decode_run(data: bytes) -> list[Entry] | None:
    """A run of entries decoded in one call, or None (the stream then walks them one by one)."""
    try:
        return _entry_run.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None


class _Unusable(Exception):
    """An entry that holds no HTTP exchange; the message is the skip reason."""


#: raw header name -> trimmed, lower-cased name (the same names come in every entry).
_LOWER: dict[str, str] = {}
_LOWER_MAX = 4096


def _lowered(headers: list[NameValue]) -> list[tuple[str, str]]:
    """(name.strip().lower(), value) pairs, names through a memo: one dict lookup per field
    instead of two string methods."""
    try:
        return [(_LOWER[h.name], h.value) for h in headers]
    except KeyError:
        if len(_LOWER) > _LOWER_MAX:
            _LOWER.clear()
        for h in headers:
            _LOWER[h.name] = h.name.strip().lower()
        return [(_LOWER[h.name], h.value) for h in headers]


def _whole(value: memoryview | Reduced) -> memoryview | bytes | None:
    """A value's bytes: the span, or a reduced copy's data (None when too large even so)."""
    return value.data if isinstance(value, Reduced) else value


def _started(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _body(content) -> bytes | None:
    """The decoded body from HAR ``content`` (base64 or text), or None if absent/undecodable."""
    text = content.text
    if text is None:
        return None
    if (content.encoding or "").lower() == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            try:
                return base64.b64decode("".join(text.split()), validate=True)
            except (binascii.Error, ValueError):
                return None
    return text.encode("utf-8", "surrogatepass")


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        return msgspec.json.encode(value).decode()
    return str(value)


def _pairs(items: object) -> list[dict]:
    """A header/cookie list with every member coerced to {name: str, value: str}."""
    if not isinstance(items, list):
        return []
    return [
        {"name": _text(i.get("name")), "value": _text(i.get("value"))}
        for i in items
        if isinstance(i, dict)
    ]


def _number(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(float(value))  # "200", 200.0
    except (TypeError, ValueError, OverflowError):
        return None


def _sanitise(raw: dict) -> dict:
    """Coerce the fields the reader uses into the shapes ``Entry`` expects; drop the rest."""
    out: dict = {}
    for k in ("startedDateTime", "pageref", "serverIPAddress", "_fromCache", "_fetchType", "_error"):
        v = raw.get(k)
        if isinstance(v, (str, int, float)) and not isinstance(v, bool):
            out[k] = str(v)
    out["time"] = _number(raw.get("time"))
    timings = raw.get("timings")
    if isinstance(timings, dict):
        out["timings"] = {k: _number(timings.get(k)) for k in ("send", "wait", "receive")}
    req = raw.get("request")
    if isinstance(req, dict):
        r = {k: _text(req.get(k)) for k in ("method", "url", "httpVersion")}
        r["headers"] = _pairs(req.get("headers"))
        r["cookies"] = _pairs(req.get("cookies"))
        if isinstance(req.get("postData"), dict):
            r["postData"] = req["postData"]
        out["request"] = r
    resp = raw.get("response")
    if isinstance(resp, dict):
        r = {"httpVersion": _text(resp.get("httpVersion"))}
        r["status"] = _number(resp.get("status"))
        r["bodySize"] = _number(resp.get("bodySize"))
        r["headers"] = _pairs(resp.get("headers"))
        r["cookies"] = _pairs(resp.get("cookies"))
        if isinstance(resp.get("_error"), str):
            r["_error"] = resp["_error"]
        content = resp.get("content")
        if isinstance(content, dict):
            c = {"size": _number(content.get("size"))}
            for k in ("text", "encoding", "mimeType"):
                if isinstance(content.get(k), str):
                    c[k] = content[k]
            r["content"] = c
        out["response"] = r
    return out
