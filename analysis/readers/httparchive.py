"""HTTP Archive request rows, as exported from its BigQuery tables (JSON lines, optionally
gzipped, or Parquet) -> exchange rows.

Each row is one request of one page load: ``page``, ``url``, ``client`` (desktop or mobile),
``date``, ``request_headers`` / ``response_headers`` as arrays of ``{name, value}`` and a
``summary`` (JSON text or object: status, method, sizes, start time); rows of the legacy summary
tables carry ``req_if_none_match``, ``resp_etag``, ``resp_last_modified`` (and ``status``,
``method``) instead of header arrays. Each (crawl date, client) pair is one client, whatever
file it is in, so the shards of one crawl make one client: HTTP Archive loads every page in a
fresh profile once per crawl, so it never revalidates within a page load and an identifier can
only show as values that differ between crawls, without the 304s a verdict of identifier needs
(docs/verdicts.md); churn and conformance read as for any capture.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from analysis.headers import normalise
from analysis.readers.record import Row, build_row
from analysis.readers.result import ReadError, Skip

#: A row longer than this (bytes of JSON) is skipped, not held.
LINE_LIMIT = 8 * 1024 * 1024
#: Legacy summary columns and the header each stands for.
LEGACY = {"req_if_none_match": ("request", "If-None-Match"),
          "req_if_modified_since": ("request", "If-Modified-Since"),
          "resp_etag": ("response", "ETag"), "resp_last_modified": ("response", "Last-Modified"),
          "resp_cache_control": ("response", "Cache-Control"), "resp_expires": ("response", "Expires"),
          "resp_vary": ("response", "Vary"), "resp_content_type": ("response", "Content-Type"),
          "resp_date": ("response", "Date")}
#: Keys that make a JSON object an HTTP Archive request row.
MARKERS = frozenset({"request_headers", "response_headers", "resp_etag", "req_if_none_match",
                     "summary"})
PARQUET_MAGIC = b"PAR1"


def looks_like_row(obj: object) -> bool:
    return isinstance(obj, dict) and "url" in obj and bool(MARKERS & obj.keys())


def _pairs(value: object) -> list[tuple[str, str]]:
    if value is None:
        return []
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, list):
        raise ValueError("headers are not a list of {name, value}")
    out = []
    for item in value:
        if isinstance(item, dict) and "name" in item:
            out.append((str(item["name"]), "" if item.get("value") is None else str(item["value"])))
        else:
            raise ValueError(f"a header is not a {{name, value}} object: {str(item)[:60]}")
    return out


def _summary(value: object) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return None


def row_parts(obj: dict[str, Any]) -> dict[str, Any]:
    """``build_row``'s arguments for one HTTP Archive row (ValueError for a broken one)."""
    summary = _summary(obj.get("summary"))
    req, resp = _pairs(obj.get("request_headers")), _pairs(obj.get("response_headers"))
    for column, (side, name) in LEGACY.items():
        value = obj.get(column)
        if value not in (None, ""):
            (req if side == "request" else resp).append((name, str(value)))
    started = summary.get("startedDateTime", obj.get("startedDateTime"))
    status = _int(summary.get("status", obj.get("status")))
    return dict(
        client=f"httparchive/{obj.get('date') or 'undated'}/{obj.get('client') or 'unknown'}",
        url=str(obj["url"]), page_url=obj.get("page") or obj.get("root_page") or None,
        method=str(summary.get("method") or obj.get("method") or "GET"),
        req_headers=normalise(req)[0], resp_headers=normalise(resp)[0],
        status=status, started=float(started) if isinstance(started, int | float) else None,
        body_size=_int(summary.get("respBodySize", obj.get("respBodySize"))),
    )


def read_httparchive(path: str | Path, *, client: str, source: str | None = None,
                     **options: Any) -> Iterator[Row | Skip]:
    """Store rows of one export (JSON lines or Parquet); ``entry_index`` is the row's position
    (0-based line or Parquet row); a broken row is a Skip naming it. ``client`` is unused: the
    crawl date and client of each row name it. ``options``: ``build_row``'s own."""
    del client
    path = Path(path)
    source = source or str(path)
    common = dict(source=source, source_kind="httparchive", **options)
    rows = _parquet_rows(path, source) if _is_parquet(path) else _json_rows(path, source)
    for index, obj in rows:
        if isinstance(obj, Skip):
            yield obj
            continue
        try:
            if not looks_like_row(obj):
                raise ValueError("not an HTTP Archive request row (no url and headers)")
            yield build_row(entry_index=index, **row_parts(obj), **common)
        except (ValueError, TypeError, OverflowError, KeyError) as exc:
            yield Skip(source, index, f"row {index}: {exc}")


def _is_parquet(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == PARQUET_MAGIC


def _json_rows(path: Path, source: str) -> Iterator[tuple[int, Any]]:
    from analysis.readers.har import open_maybe_gzip

    with open_maybe_gzip(path) as fh:
        index = 0
        while line := fh.readline(LINE_LIMIT):
            whole = line.endswith(b"\n") or len(line) < LINE_LIMIT
            if not whole:  # step over the rest of an oversized row without holding it
                while (more := fh.readline(LINE_LIMIT)) and not more.endswith(b"\n"):
                    pass
                yield index, Skip(source, index, f"row {index}: longer than {LINE_LIMIT} bytes")
            elif line.strip():
                try:
                    yield index, json.loads(line)
                except ValueError as exc:
                    yield index, Skip(source, index, f"row {index}: not JSON ({exc})")
            else:
                continue
            index += 1


def _parquet_rows(path: Path, source: str) -> Iterator[tuple[int, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ReadError(source, "a Parquet file: reading it needs pyarrow "
                                "(pip install pyarrow)") from None
    try:
        parquet = pq.ParquetFile(path)
        index = 0
        for batch in parquet.iter_batches(batch_size=4096):
            for obj in batch.to_pylist():
                yield index, obj
                index += 1
    except (OSError, ValueError) as exc:
        raise ReadError(source, f"cannot read the Parquet file: {exc}") from None
