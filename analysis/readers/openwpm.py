"""OpenWPM crawl databases (``crawl-data.sqlite``) -> exchange rows.

OpenWPM's instrumentation writes one row per request (``http_requests``) and per response
(``http_responses``), joined on (``visit_id``, ``request_id``); headers are JSON lists of
``[name, value]`` pairs. Each ``browser_id`` is a separate browser profile, so each is its own
client (``<file's client>/browser-<id>``): an identifier verdict needs several of them.
``top_level_url`` is the page (first party and cache-partition site), ``is_cached`` a response
the browser served from its cache (not the server's behaviour), ``content_hash`` the crawl's
hash of the body when content was saved. Responses are read in ``http_responses`` order, each
with its request; requests that got no response are read after them as exchanges without one.
The file is opened read-only and iterated with one cursor, so memory stays flat.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from analysis.headers import normalise
from analysis.readers.record import Row, build_row
from analysis.readers.result import ReadError, Skip

#: The tables that make a SQLite file an OpenWPM crawl.
TABLES = frozenset({"http_requests", "http_responses"})

#: Keys of both tables, copied into temporary tables with an index: the crawl file is opened
#: read-only, and without one the join took 88 s for 50,000 responses (quadratic). One request
#: per key: OpenWPM keeps the request_id across redirects, and the last hop is the one a
#: response most likely answers.
_KEYS = """
CREATE TEMP TABLE etagwatch_rq AS
  SELECT browser_id, visit_id, request_id, max(id) AS id FROM main.http_requests
  GROUP BY browser_id, visit_id, request_id;
CREATE INDEX temp.etagwatch_rq_key ON etagwatch_rq (visit_id, request_id, browser_id);
CREATE TEMP TABLE etagwatch_rs AS
  SELECT DISTINCT browser_id, visit_id, request_id FROM main.http_responses;
CREATE INDEX temp.etagwatch_rs_key ON etagwatch_rs (visit_id, request_id, browser_id);
"""
_RESPONSES = """
SELECT s.id, s.browser_id, s.url, s.method, s.response_status, s.is_cached, s.headers,
       s.time_stamp, s.content_hash, q.headers, q.top_level_url, q.referrer, q.time_stamp,
       q.method
FROM main.http_responses s
LEFT JOIN etagwatch_rq k ON k.visit_id = s.visit_id AND k.request_id = s.request_id
                        AND k.browser_id = s.browser_id
LEFT JOIN main.http_requests q ON q.id = k.id
ORDER BY s.id
"""
_UNANSWERED = """
SELECT q.id, q.browser_id, q.url, q.method, q.headers, q.top_level_url, q.referrer, q.time_stamp
FROM main.http_requests q
WHERE NOT EXISTS (SELECT 1 FROM etagwatch_rs k WHERE k.visit_id = q.visit_id
                  AND k.request_id = q.request_id AND k.browser_id = q.browser_id)
ORDER BY q.id
"""


def is_openwpm(path: Path) -> bool:
    """A SQLite file holding OpenWPM's request and response tables."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return names >= TABLES


def _headers(text: object) -> list[tuple[str, str]]:
    """OpenWPM's ``[[name, value], ...]`` JSON; ValueError when it is something else."""
    if text is None or text == "":
        return []
    pairs = json.loads(text) if isinstance(text, str) else text
    if not isinstance(pairs, list):
        raise ValueError("headers are not a JSON list")
    out = []
    for pair in pairs:
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            raise ValueError(f"a header is not a [name, value] pair: {str(pair)[:60]}")
        out.append((str(pair[0]), str(pair[1])))
    return out


def _epoch(stamp: object) -> float | None:
    """OpenWPM's ISO 8601 time stamps (``2021-03-02T15:04:05.123Z``) as epoch seconds."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def read_openwpm(path: str | Path, *, client: str, source: str | None = None, **options: Any
                 ) -> Iterator[Row | Skip]:
    """Store rows of one crawl database; a row that cannot be read is a Skip naming its table
    and id (``entry_index`` is the row's id in ``http_responses``, or in ``http_requests`` for
    requests without a response). ``options`` are ``build_row``'s own, as every reader takes
    them: ``key`` and optionally ``backend_headers``, ``redact_validators``, ``privacy``."""
    path = Path(path)
    source = source or str(path)
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ReadError(source, f"cannot open the OpenWPM database: {exc}") from None
    common = dict(source=source, source_kind="openwpm", **options)
    try:
        conn.execute("PRAGMA temp_store = FILE")  # the key tables on disk, not in memory
        conn.executescript(_KEYS)
        for (rid, browser, url, method, status, cached, resp_h, resp_ts, content_hash,
             req_h, top, referrer, req_ts, req_method) in conn.execute(_RESPONSES):
            try:
                req_fields, _ = normalise(_headers(req_h))
                resp_fields, _ = normalise(_headers(resp_h))
                yield build_row(
                    client=f"{client}/browser-{browser}", entry_index=rid,
                    started=_epoch(req_ts) or _epoch(resp_ts), page_url=top or referrer or None,
                    method=str(req_method or method or "GET"), url=str(url),
                    req_headers=req_fields, resp_headers=resp_fields,
                    status=status if isinstance(status, int) else None,
                    from_cache=bool(cached), cache_kind="openwpm-cache" if cached else None,
                    body_digest=(content_hash, None) if content_hash else None,
                    **common,  # type: ignore[arg-type]
                )
            except (ValueError, TypeError, OverflowError) as exc:
                yield Skip(source, rid, f"http_responses row {rid}: {exc}")
        for rid, browser, url, method, req_h, top, referrer, req_ts in conn.execute(_UNANSWERED):
            try:
                req_fields, _ = normalise(_headers(req_h))
                yield build_row(
                    client=f"{client}/browser-{browser}", entry_index=rid,
                    started=_epoch(req_ts), page_url=top or referrer or None,
                    method=str(method or "GET"), url=str(url), req_headers=req_fields,
                    resp_headers=[], status=None, error="no response recorded by the crawler",
                    **common,  # type: ignore[arg-type]
                )
            except (ValueError, TypeError, OverflowError) as exc:
                yield Skip(source, rid, f"http_requests row {rid}: {exc}")
    except sqlite3.Error as exc:
        raise ReadError(source, f"cannot read the OpenWPM database: {exc}") from None
    finally:
        conn.close()


# --- OpenWPM's Parquet layout: a folder per table ---------------------------------------------
_COLUMNS = {
    "http_requests": ("browser_id", "visit_id", "request_id", "url", "top_level_url", "method",
                      "referrer", "headers", "time_stamp"),
    "http_responses": ("browser_id", "visit_id", "request_id", "url", "method",
                       "response_status", "is_cached", "headers", "time_stamp", "content_hash"),
}


def is_openwpm_parquet(folder: Path) -> bool:
    """A folder with ``http_requests`` and ``http_responses`` table folders (or files) of
    Parquet, as OpenWPM's Parquet storage writes them."""
    return folder.is_dir() and all(_parquet_files(folder / t) for t in TABLES)


def _parquet_files(table: Path) -> list[Path]:
    if table.is_file():
        return [table]
    if table.with_suffix(".parquet").is_file():
        return [table.with_suffix(".parquet")]
    return sorted(table.rglob("*.parquet")) if table.is_dir() else []


def parquet_files(folder: Path) -> list[Path]:
    """Every Parquet file of the two tables (for the folder's size and digest)."""
    return [p for t in sorted(TABLES) for p in _parquet_files(folder / t)]


def read_openwpm_parquet(path: str | Path, *, client: str, source: str | None = None,
                         **options: Any) -> Iterator[Row | Skip]:
    """The Parquet layout, read batch by batch into a temporary SQLite file of the same tables
    (on disk: the join of two tables of any size stays out of memory), then read as a crawl
    database is."""
    import tempfile

    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ReadError(str(path), "an OpenWPM Parquet crawl: reading it needs pyarrow") from None
    folder = Path(path)
    source = source or str(folder)
    with tempfile.TemporaryDirectory(prefix="etagwatch-openwpm-") as tmp:
        db = Path(tmp) / "crawl-data.sqlite"
        conn = sqlite3.connect(db)
        try:
            for table, columns in _COLUMNS.items():
                conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, {', '.join(columns)})")
                sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                for file in _parquet_files(folder / table):
                    parquet = pq.ParquetFile(file)
                    present = [c for c in columns if c in parquet.schema_arrow.names]
                    for batch in parquet.iter_batches(batch_size=8192, columns=present):
                        data = batch.to_pydict()
                        rows = zip(*(data.get(c, [None] * batch.num_rows) for c in columns),
                                   strict=True)
                        conn.executemany(sql, (tuple(_plain(v) for v in r) for r in rows))
                conn.commit()
        except (OSError, ValueError) as exc:
            raise ReadError(source, f"cannot read the OpenWPM Parquet tables: {exc}") from None
        finally:
            conn.close()
        yield from read_openwpm(db, client=client, source=source, **options)


def _plain(value: object) -> object:
    """A Parquet value as SQLite takes it (timestamps as OpenWPM's ISO text)."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value
