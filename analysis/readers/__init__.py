"""Readers: captures on disk -> exchange records (plus skips, notes and file errors).

``open_capture`` sniffs a file's content (not its name) and returns the matching reader's
iterator: HAR (.har, .har.gz, any name), a mitmproxy flow file, a WARC archive (.warc,
.warc.gz) or an OpenWPM crawl database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from analysis.exchange import DEFAULT_BACKEND_HEADERS, Exchange, from_row
from analysis.privacy import DEFAULT_PRIVACY, Privacy
from analysis.readers.flows import looks_like_flow_file, read_flows
from analysis.readers.har import HarReader, RunOffload, open_maybe_gzip
from analysis.readers.httparchive import LINE_LIMIT, PARQUET_MAGIC, looks_like_row, read_httparchive
from analysis.readers.openwpm import (
    is_openwpm,
    is_openwpm_parquet,
    read_openwpm,
    read_openwpm_parquet,
)
from analysis.readers.result import FileError, Note, ReadError, Skip
from analysis.readers.warc import looks_like_warc, read_warc

__all__ = [
    "FileError",
    "HarReader",
    "Note",
    "ReadError",
    "Skip",
    "open_capture",
    "read_flows",
    "sniff",
]

#: Readers of the formats that yield store rows (build_row tuples), by sniffed kind.
ROW_READERS: dict[str, Callable[..., Iterator[tuple | Skip]]] = {
    "httparchive": read_httparchive,
    "warc": read_warc,
    "openwpm": read_openwpm,
    "openwpm-parquet": read_openwpm_parquet,
}

#: Names picked up when a folder is ingested (and SQLite files that are OpenWPM crawls).
CAPTURE_SUFFIXES: tuple[str, ...] = (".har", ".har.gz", ".flow", ".flows", ".mitm", ".dump",
                                     ".warc", ".warc.gz", ".jsonl", ".jsonl.gz", ".ndjson",
                                     ".parquet")
SQLITE_MAGIC = b"SQLite format 3\x00"


def _first_line_is_row(path: Path) -> bool:
    """JSON lines whose first row is an HTTP Archive request row (a HAR is one object)."""
    import json

    try:
        with open_maybe_gzip(path) as fh:
            line = fh.readline(LINE_LIMIT)
        return looks_like_row(json.loads(line))
    except (OSError, EOFError, ValueError):
        return False


def sniff(path: Path) -> str:
    """'har', 'flow', 'warc', 'httparchive' or 'openwpm' from the content; raises ReadError for
    anything else."""
    if path.is_dir():
        if is_openwpm_parquet(path):
            return "openwpm-parquet"
        raise ReadError(str(path), "a folder that is no OpenWPM Parquet crawl")
    try:
        with open_maybe_gzip(path) as fh:
            head = fh.read(64)
    except OSError as exc:
        raise ReadError(str(path), f"cannot read: {exc}") from None
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not text:
        raise ReadError(str(path), "empty file: not a HAR or mitmproxy flow file")
    if text[:1] == b"{" and b'"log"' not in head and _first_line_is_row(path):
        return "httparchive"
    if text[:1] in (b"{", b"["):
        return "har"
    if head.startswith(PARQUET_MAGIC):
        return "httparchive"
    if looks_like_flow_file(head):
        return "flow"
    if looks_like_warc(head):
        return "warc"
    if head.startswith(SQLITE_MAGIC):
        if is_openwpm(path):
            return "openwpm"
        raise ReadError(str(path), "a SQLite file that is no OpenWPM crawl (no http_requests "
                                   "and http_responses tables); an etagwatch store is read by "
                                   "analyze and report directly")
    raise ReadError(str(path), "not a HAR (JSON), mitmproxy flow file, WARC archive or OpenWPM "
                               "crawl database")


def open_capture(
    path: str | Path,
    *,
    client: str,
    key: bytes,
    source: str | None = None,
    kind: str | None = None,
    backend_headers: Sequence[str] = DEFAULT_BACKEND_HEADERS,
    redact_validators: bool = False,
    privacy: Privacy = DEFAULT_PRIVACY,
    on_read: Callable[[int], None] | None = None,
    workers: int = 1,
    offload: RunOffload | None = None,
    rows: bool = False,
) -> Iterator[Exchange | tuple | Skip | Note]:
    """Exchanges, skips and notes of one capture file; raises ReadError for a bad file.

    ``offload`` (HAR only) may take runs of entries to convert elsewhere; whoever passes it
    accounts for those entries (analysis.ingest with a WriterProcess). With ``rows`` a HAR
    yields store rows (``analysis.readers.record.build_row`` tuples) instead of records; flow
    files always yield records.
    """
    path = Path(path)
    kind = kind or sniff(path)
    common = dict(
        client=client,
        key=key,
        source=source,
        backend_headers=backend_headers,
        redact_validators=redact_validators,
        privacy=privacy,
    )
    if kind == "flow":
        return read_flows(path, **common)  # type: ignore[arg-type]
    reader = ROW_READERS.get(kind)
    if reader is not None:  # these yield store rows; records where rows are not wanted
        items = reader(path, **common)
        return items if rows else (from_row(i) if type(i) is tuple else i for i in items)
    return iter(HarReader(path, on_read=on_read, workers=workers, offload=offload, rows=rows,  # type: ignore[arg-type]
                          **common))
