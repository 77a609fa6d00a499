"""The SQLite store: one file, WAL mode, exchanges plus what was ingested and skipped.

Both the batch readers (``Store.insert``, or ``analysis.writer_process`` for large captures)
and the live addon (through ``addons.record_writer``, a child process fed from mitmproxy's event
loop) write here; WAL lets readers such as ``load_exchanges`` work while a
writer commits. The schema is versioned in ``meta``; ``MIGRATIONS[n]`` takes a store from
version n to n+1, and columns added to :class:`~analysis.exchange.Exchange` later are added to
an existing store on open. The full schema is documented in docs/schema.md.
"""

from __future__ import annotations

import contextlib
import json
import queue
import sqlite3
import threading
import time
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from analysis import store_arrow
from analysis.exchange import COLUMNS, Exchange
from analysis.privacy import Privacy, new_key

if typing.TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = 3
#: Rows per transaction for batch inserts.
BATCH = 2000
#: WAL pages (4 KiB) between checkpoints during a bulk insert (about 80 MB of WAL at most).
BULK_CHECKPOINT_PAGES = 20000
#: The background writer commits at least this often (seconds) while rows are waiting.
COMMIT_INTERVAL = 0.5


def _python_kinds() -> dict[str, type]:
    """Python type per exchange field (None stripped), from the Exchange annotations."""
    hints = typing.get_type_hints(Exchange)
    out = {}
    for name in COLUMNS:
        hint = hints[name]
        args = set(typing.get_args(hint)) if isinstance(hint, types.UnionType) else {hint}
        args.discard(type(None))
        out[name] = next(iter(args)) if len(args) == 1 else str
    return out


PYTHON_KINDS = _python_kinds()
_SQL_TYPES = {bool: "INTEGER", int: "INTEGER", float: "REAL"}
COLUMN_TYPES = {name: _SQL_TYPES.get(kind, "TEXT") for name, kind in PYTHON_KINDS.items()}


def _v1(conn: sqlite3.Connection) -> None:
    cols = ",\n  ".join(f"{name} {kind}" for name, kind in COLUMN_TYPES.items())
    conn.executescript(
        f"""
        CREATE TABLE exchanges (
          id INTEGER PRIMARY KEY,
          {cols}
        );
        CREATE INDEX exchanges_host ON exchanges(host);
        CREATE INDEX exchanges_url ON exchanges(url);
        CREATE TABLE sources (
          id INTEGER PRIMARY KEY,
          path TEXT NOT NULL,
          kind TEXT NOT NULL,
          sha256 TEXT,
          size INTEGER,
          client TEXT,
          ingested_at REAL NOT NULL,
          entries INTEGER NOT NULL DEFAULT 0,
          stored INTEGER NOT NULL DEFAULT 0,
          skipped INTEGER NOT NULL DEFAULT 0,
          error TEXT
        );
        CREATE INDEX sources_sha256 ON sources(sha256);
        CREATE TABLE skipped (
          id INTEGER PRIMARY KEY,
          file TEXT NOT NULL,
          entry_index INTEGER,
          reason TEXT NOT NULL
        );
        """
    )


#: Indexes of ``exchanges`` (name -> column). A bulk writer may drop them while it fills an
#: empty table and build them once at the end (sorting once beats growing them row by row);
#: every open creates any that are missing, so an interrupted bulk load leaves no gap.
EXCHANGE_INDEXES: dict[str, str] = {"exchanges_host": "host", "exchanges_url": "url"}


def create_indexes(conn: sqlite3.Connection) -> None:
    for name, column in EXCHANGE_INDEXES.items():
        conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON exchanges({column})")


def drop_indexes(conn: sqlite3.Connection) -> None:
    for name in EXCHANGE_INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {name}")


def _v2(conn: sqlite3.Connection) -> None:
    """Sources get a life cycle, so a killed ingest is replaced instead of stored twice: a file
    is registered (``complete`` 0, ``first_id`` the largest exchange id before its rows,
    ``resolved`` its absolute path, ``owner`` the process) before its first row, and marked
    complete in the transaction that adds its skips. Rows of earlier versions are complete."""
    for column in ("complete INTEGER NOT NULL DEFAULT 1", "first_id INTEGER", "resolved TEXT",
                   "owner TEXT"):
        conn.execute(f"ALTER TABLE sources ADD COLUMN {column}")
    conn.execute("CREATE INDEX sources_resolved ON sources(resolved) WHERE complete = 0")


def _v3(conn: sqlite3.Connection) -> None:
    """``probe_outcomes``: what `etagwatch probe --candidates` found for each candidate
    resource (``url`` as stored), the verdict it settles to, and its evidence as JSON (what
    was sent, what came back, when; validators and body digests, never a body or cookie)."""
    conn.executescript(
        """
        CREATE TABLE probe_outcomes (
          id INTEGER PRIMARY KEY,
          url TEXT NOT NULL,
          probed_at REAL NOT NULL,
          outcome TEXT NOT NULL,
          settles TEXT,
          rule TEXT NOT NULL,
          verdict_before TEXT,
          reason TEXT NOT NULL,
          evidence TEXT NOT NULL
        );
        CREATE INDEX probe_outcomes_url ON probe_outcomes(url);
        """
    )


#: MIGRATIONS[n] brings a store at schema version n to n + 1 (0 = empty file).
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _v3]

#: Columns of ``probe_outcomes`` after ``id`` (``load_probe_outcomes`` returns them).
PROBE_OUTCOME_COLUMNS = ("url", "probed_at", "outcome", "settles", "rule", "verdict_before",
                         "reason", "evidence")


def connect(path: str | Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A connection with the settings every user of the store needs (WAL, busy timeout)."""
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=check_same_thread)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


@dataclass(frozen=True)
class SourceRow:
    """One ingested file, as recorded in ``sources``."""

    path: str
    kind: str
    sha256: str | None
    size: int | None
    client: str | None
    entries: int
    stored: int
    skipped: int
    error: str | None = None


class StoreError(Exception):
    """The file is not an etagwatch store, or one from a newer etagwatch."""


def refuse_newer(path: str | Path, version: int) -> None:
    """The one message every writer and reader gives for a store of a newer schema."""
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path}: schema version {version} is newer than this etagwatch "
                         f"({SCHEMA_VERSION}); upgrade etagwatch")


class SourceBusy(Exception):
    """Another running process is ingesting this file into this store now."""


class SizeSeen(Exception):
    """A source of this size completed since the caller checked: compare digests first."""


@dataclass(frozen=True)
class Attempt:
    """A file registered for ingest (``Store.begin_source``)."""

    id: int
    replaced: int  # rows of interrupted earlier attempts that were deleted


class Store:
    """An etagwatch SQLite store, created on first use."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._conn = connect(self.path)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not an etagwatch store ({exc})") from exc
        self._key: bytes = bytes.fromhex(self._meta("key") or "")

    # --- schema -----------------------------------------------------------------------------
    def _meta(self, name: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def _migrate(self) -> None:
        conn = self._conn
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
            row = conn.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            refuse_newer(self.path, version)
            for step in MIGRATIONS[version:]:
                step(conn)
            if version < SCHEMA_VERSION:
                conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            if version == 0:
                conn.execute("INSERT INTO meta VALUES ('key', ?)", (new_key().hex(),))
                conn.execute("INSERT INTO meta VALUES ('created', ?)", (str(time.time()),))
            present = {r[1] for r in conn.execute("PRAGMA table_info(exchanges)")}
            for name, kind in COLUMN_TYPES.items():  # fields added to Exchange later
                if name not in present:
                    conn.execute(f"ALTER TABLE exchanges ADD COLUMN {name} {kind}")
            create_indexes(conn)

    @property
    def key(self) -> bytes:
        """The store's keyed-hash key (random per store, kept in ``meta``)."""
        return self._key

    def privacy_policy(self, keep_query: bool = False, secret_headers: Sequence[str] = ()
                       ) -> Privacy:
        """The store's privacy settings for new rows, after recording what a writer asks.

        Whether query values are hashed or kept is fixed once the store holds an exchange:
        one URL stored two ways would be two resources, so ``keep_query`` on a store that
        hashes them is a StoreError (an empty store takes it). Parts of credential header
        names only ever grow (``secret_headers`` adds to the store's own and the defaults).
        """
        from analysis.privacy import SECRET_HEADER_PARTS

        conn = self._conn
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            stored = self._meta("query_values")
            asked = "kept" if keep_query else None
            if asked and stored == "hashed" and not self.is_empty():
                raise StoreError(
                    f"{self.path}: this store keeps query values hashed; --keep-query (or "
                    "etagwatch_keep_query) needs a store without exchanges: choose another one"
                )
            mode = asked or stored or "hashed"
            parts = json.loads(self._meta("secret_headers") or "[]")
            extra = sorted({*parts, *(p.strip().lower() for p in secret_headers if p.strip())})
            if mode != stored:
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('query_values', ?)", (mode,))
            if extra != parts:
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('secret_headers', ?)",
                             (json.dumps(extra),))
        parts_all = tuple(dict.fromkeys((*SECRET_HEADER_PARTS, *extra)))
        return Privacy(keep_query=mode == "kept", secret_headers=parts_all)

    @property
    def schema_version(self) -> int:
        return int(self._meta("schema_version") or 0)

    # --- writing ----------------------------------------------------------------------------
    def insert(self, exchanges: Iterable[Exchange]) -> int:
        """Insert exchanges in batched transactions; returns how many were stored.

        WAL checkpoints (the fsyncs) are deferred to the end of the call: checkpointing every
        1000 pages made bulk ingest three times slower; durability per commit is unchanged.
        """
        return self.insert_rows(map(msgspec.structs.astuple, exchanges))

    def insert_rows(self, rows: Iterable[tuple]) -> int:
        """``insert`` for rows already in COLUMNS order (``build_row`` tuples: bulk ingest
        builds no record object)."""
        conn = self._conn
        conn.execute(f"PRAGMA wal_autocheckpoint={BULK_CHECKPOINT_PAGES}")
        try:
            return insert_rows(conn, rows)
        finally:
            conn.execute("PRAGMA wal_autocheckpoint=1000")
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def is_empty(self) -> bool:
        """Whether ``exchanges`` holds no row (a bulk load may then defer its indexes)."""
        return self._conn.execute("SELECT NOT EXISTS (SELECT 1 FROM exchanges)").fetchone()[0] == 1

    def drop_indexes(self) -> None:
        """Drop the exchanges indexes before a bulk load into an empty table: building them
        once afterwards (``create_indexes``) is about twice as fast as growing them per row.
        Any store opened without them gets them back (``Store`` creates missing ones)."""
        with self._conn:
            drop_indexes(self._conn)

    def create_indexes(self) -> None:
        with self._conn:
            create_indexes(self._conn)

    def writer(self) -> BackgroundWriter:
        """A writer thread with its own connection, for producers that must not block."""
        return BackgroundWriter(self.path)

    def add_source(self, row: SourceRow) -> int:
        with self._conn:
            cur = self._conn.execute(
                "INSERT INTO sources (path, kind, sha256, size, client, ingested_at, entries,"
                " stored, skipped, error) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (row.path, row.kind, row.sha256, row.size, row.client, time.time(),
                 row.entries, row.stored, row.skipped, row.error),
            )
        return int(cur.lastrowid or 0)

    def add_skipped(self, skips: Iterable[tuple[str, int | None, str]]) -> None:
        with self._conn:
            self._conn.executemany(
                "INSERT INTO skipped (file, entry_index, reason) VALUES (?,?,?)", skips
            )

    def begin_source(self, row: SourceRow, resolved: str, *, size_unseen: bool = False,
                     digest: str | None = None) -> Attempt:
        """Register a file before its first row is stored, in one transaction that first
        deletes what interrupted attempts at the same file (``resolved`` path) left: their
        rows and their registration (skips are written only when a file completes, so an
        attempt leaves none). So however often an ingest is killed, the next run
        converges to one row per entry. SourceBusy when a live process is at that file;
        with ``size_unseen`` (the caller found no complete source of this size and so has no
        digest yet) or ``digest`` (found in no complete source), SizeSeen when such a source
        has completed since: a concurrent ingest of the same file finished between the check
        and this transaction, and the caller must compare again."""
        from analysis import liveness

        conn = self._conn
        replaced = 0
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            if (size_unseen and self.seen_size(int(row.size or 0))) or (
                    digest is not None and self.seen_sha256(digest) is not None):
                raise SizeSeen
            earlier = conn.execute(
                "SELECT id, path, client, first_id, owner FROM sources"
                " WHERE complete = 0 AND resolved = ?", (resolved,)
            ).fetchall()
            for sid, path, client, first_id, owner in earlier:
                if liveness.alive(owner):
                    raise SourceBusy(f"being stored by another etagwatch process now ({owner})")
                replaced += conn.execute(
                    "DELETE FROM exchanges WHERE id > ? AND source = ? AND client IS ?",
                    (first_id or 0, path, client),
                ).rowcount
                conn.execute("DELETE FROM sources WHERE id = ?", (sid,))
            first = conn.execute("SELECT coalesce(max(id), 0) FROM exchanges").fetchone()[0]
            cur = conn.execute(
                "INSERT INTO sources (path, kind, sha256, size, client, ingested_at, entries,"
                " stored, skipped, error, complete, first_id, resolved, owner)"
                " VALUES (?,?,NULL,?,?,?,0,0,0,NULL,0,?,?,?)",
                (row.path, row.kind, row.size, row.client, time.time(), first, resolved,
                 liveness.token()),
            )
        return Attempt(int(cur.lastrowid or 0), replaced)

    def finish_source(self, attempt: Attempt, row: SourceRow,
                      skips: Iterable[tuple[str, int | None, str]]) -> None:
        """The file's skips and its totals, and the mark that it is complete, in one
        transaction (after its last row was committed)."""
        with self._conn:
            self._conn.executemany(
                "INSERT INTO skipped (file, entry_index, reason) VALUES (?,?,?)", skips
            )
            self._conn.execute(
                "UPDATE sources SET kind = ?, sha256 = ?, size = ?, entries = ?, stored = ?,"
                " skipped = ?, error = ?, complete = 1, owner = NULL WHERE id = ?",
                (row.kind, row.sha256, row.size, row.entries, row.stored, row.skipped,
                 row.error, attempt.id),
            )

    def seen_size(self, size: int) -> bool:
        """Whether a file of exactly this size was ingested before (then compare sha256)."""
        row = self._conn.execute(
            "SELECT 1 FROM sources WHERE size = ? AND sha256 IS NOT NULL AND error IS NULL"
            " AND complete = 1 LIMIT 1",
            (size,),
        ).fetchone()
        return row is not None

    def client_taken(self, client: str, path: str) -> bool:
        """Whether a file other than ``path`` was stored under the client id ``client``."""
        rows = self._conn.execute(
            "SELECT path FROM sources WHERE client = ? AND stored > 0", (client,)
        ).fetchall()
        here = Path(path).resolve()
        return any(Path(p).resolve() != here for (p,) in rows)

    def seen_sha256(self, sha256: str) -> str | None:
        """Path under which a file with this content was ingested before, if any."""
        row = self._conn.execute(
            "SELECT path FROM sources WHERE sha256 = ? AND error IS NULL AND complete = 1"
            " LIMIT 1", (sha256,)
        ).fetchone()
        return row[0] if row else None

    # --- reading ----------------------------------------------------------------------------
    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    def count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM exchanges").fetchone()[0])

    def table(self, name: str) -> pd.DataFrame:
        """The ``sources`` or ``skipped`` table as a DataFrame."""
        if name not in ("sources", "skipped"):
            raise ValueError(f"no table {name!r}")
        import pandas as pd  # imported on use: `etagwatch ingest` never needs it

        return pd.read_sql_query(f"SELECT * FROM {name} ORDER BY id", self._conn)

    def add_probe_outcome(self, row: dict[str, object]) -> None:
        """One probe outcome (keys of PROBE_OUTCOME_COLUMNS; ``evidence`` a dict), committed
        at once: an interrupted probe run keeps every outcome it finished."""
        values = [json.dumps(row[c], sort_keys=True) if c == "evidence" else row.get(c)
                  for c in PROBE_OUTCOME_COLUMNS]
        with self._conn:
            self._conn.execute(
                f"INSERT INTO probe_outcomes ({', '.join(PROBE_OUTCOME_COLUMNS)})"
                f" VALUES ({', '.join('?' * len(PROBE_OUTCOME_COLUMNS))})", values)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: One exchange row, parameters in COLUMNS order (``msgspec.structs.astuple`` of an Exchange).
INSERT_SQL = (
    f"INSERT INTO exchanges ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)
_INSERT = INSERT_SQL


def insert_exchanges(conn: sqlite3.Connection, exchanges: Iterable[Exchange]) -> int:
    """Insert exchanges in transactions of BATCH rows (one executemany each)."""
    return insert_rows(conn, map(msgspec.structs.astuple, exchanges))


def _storable(value: object) -> object:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: bytes mitmproxy could not decode
            return value.encode("utf-8", "surrogateescape" if _escapes_bytes(value)
                                else "backslashreplace").decode("utf-8", "backslashreplace")
    return value


def _escapes_bytes(value: str) -> bool:
    """Surrogates from ``surrogateescape`` only (U+DC80..U+DCFF), so the bytes come back."""
    return all("\udc80" <= c <= "\udcff" for c in value if "\ud800" <= c <= "\udfff")


def execute_rows(conn: sqlite3.Connection, sql: str, rows: list) -> None:
    """``executemany`` of store rows; a batch with text SQLite cannot take (lone surrogates,
    which mitmproxy's header decoding leaves for undecodable bytes) is stored with those
    characters escaped, instead of failing the batch and with it the file."""
    try:
        conn.executemany(sql, rows)
    except UnicodeEncodeError:
        conn.executemany(sql, [tuple(map(_storable, row)) for row in rows])


def insert_rows(conn: sqlite3.Connection, rows: Iterable[tuple]) -> int:
    """Insert rows (COLUMNS order) in transactions of BATCH rows (one executemany each)."""
    stored = 0
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            with conn:
                execute_rows(conn, _INSERT, batch)
            stored += len(batch)
            batch.clear()
    if batch:
        with conn:
            execute_rows(conn, _INSERT, batch)
        stored += len(batch)
    return stored


class BackgroundWriter:
    """Collects exchanges from any thread and commits them from its own thread.

    ``put`` never blocks on SQLite. Rows are committed when BATCH are waiting or COMMIT_INTERVAL
    has passed since the first waiting row, whichever comes first. ``flush`` waits until every
    row put so far is committed; ``close`` flushes and stops the thread. An error in the writer
    thread is raised again from the next ``flush``/``close``.
    """

    _STOP = object()

    def __init__(self, path: str | Path) -> None:
        Store(path).close()  # create / migrate before the thread starts
        self._path = Path(path)
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self.stored = 0
        self._thread = threading.Thread(target=self._run, name="etagwatch-writer", daemon=True)
        self._thread.start()

    def put(self, exchange: Exchange) -> None:
        if self._error is not None:
            raise RuntimeError("the store writer failed") from self._error
        self._queue.put(exchange)

    def flush(self, timeout: float | None = None) -> None:
        done = threading.Event()
        self._queue.put(done)
        if not done.wait(timeout):
            raise TimeoutError("store writer did not flush in time")
        self._raise()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(self._STOP)
            self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"the store writer failed: {self._error}") from self._error

    def _run(self) -> None:
        conn = connect(self._path)
        batch: list[Exchange] = []
        waiters: list[threading.Event] = []
        deadline = None
        try:
            while True:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    item = None
                stop = item is self._STOP
                if isinstance(item, Exchange):
                    batch.append(item)
                    if deadline is None:
                        deadline = time.monotonic() + COMMIT_INTERVAL
                elif isinstance(item, threading.Event):
                    waiters.append(item)
                due = deadline is not None and time.monotonic() >= deadline
                if batch and (stop or waiters or due or len(batch) >= BATCH):
                    self._commit(conn, batch)
                    batch = []
                if not batch:
                    deadline = None
                for w in waiters:
                    w.set()
                waiters.clear()
                if stop:
                    break
        except BaseException as exc:  # kept and raised to the producer
            self._error = exc
            for w in waiters:
                w.set()
            self._drain()
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[Exchange]) -> None:
        self.stored += insert_exchanges(conn, batch)

    def _drain(self) -> None:
        """After a failure: release every waiter still queued so nobody blocks forever."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, threading.Event):
                item.set()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_for_reading(path: str | Path) -> sqlite3.Connection:
    """A connection to an existing store for readers (analyze, report, the findings addon),
    after the checks that ``Store`` makes on open, with the same messages: every reader refuses
    a file that is not a store and a store of a newer schema, which it could misread. Nothing is
    created or migrated (a reader may not own the file); columns an older store lacks read as
    missing values."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such store")
    # no journal_mode pragma: a reader must not turn a stranger's file into a WAL database; a
    # store is in WAL mode already (the mode persists in the file)
    conn = sqlite3.connect(str(path), timeout=30)
    try:
        conn.execute("PRAGMA busy_timeout=30000")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "exchanges"} <= tables:
            raise StoreError(f"{path}: not an etagwatch store (no etagwatch tables)")
        row = conn.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
        refuse_newer(path, int(row[0]) if row and str(row[0]).isdigit() else 0)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"{path}: not an etagwatch store ({exc})") from exc
    except StoreError:
        conn.close()
        raise
    return conn


#: Rows fetched and converted at a time by ``load_exchanges``: the rows' Python tuples live
#: only this long, so the peak is the compact columns plus one chunk.
LOAD_CHUNK = 65_536


def host_filter(hosts: Iterable[str], unnamed: Iterable[str] = (), *, indexed: bool = False
                ) -> str:
    """An SQL condition: the exchange's host is one of ``hosts``, or it has none and its URL
    (missing: the empty text) is one of ``unnamed``. The names travel as JSON text literals
    (any character, any number of names; the SQL parser never sees them). ``indexed``: let
    SQLite look the hosts up in the host index (then sort by id), for a few hosts of a large
    store; otherwise ``+host`` keeps it on a scan of the table in ``id`` order."""
    def listed(values: Iterable[str]) -> str:
        text = json.dumps(sorted(set(values))).replace("'", "''")
        return f"(SELECT value FROM json_each('{text}'))"

    urls = sorted(set(unnamed))
    named = f"{'' if indexed else '+'}host IN {listed(hosts)}"
    return f"({named} OR (+host IS NULL AND coalesce(url, '') IN {listed(urls)}))" if urls else named


@dataclass
class HostCounts:
    """Exchanges per host of a store, hosts named as the detectors name them: an exchange
    recorded without a host belongs to the host of its URL (``urlparts.host_in_url``; the
    empty name where there is none), so it is analysed with that host's other exchanges."""

    sizes: dict[str, int]
    #: host -> URLs (missing: the empty text) of its exchanges recorded without a host
    unnamed: dict[str, set[str]]
    #: the largest exchange id counted: readers of the counted hosts stop there
    #: (``load_exchanges(up_to=...)``), so what a writer adds meanwhile is left out alike for
    #: every host, and the parts read are one state of the store (it only appends)
    last_id: int = 0


def host_counts(db: str | Path) -> HostCounts:
    """``HostCounts`` of a store, counted on its host index, in one read transaction."""
    from analysis.urlparts import host_in_url

    sizes: dict[str, int] = {}
    unnamed: dict[str, set[str]] = {}
    with contextlib.closing(open_for_reading(db)) as conn:
        try:
            conn.execute("BEGIN")  # one snapshot for the counts and the last id
            last_id = int(conn.execute("SELECT coalesce(max(id), 0) FROM exchanges").fetchone()[0])
            for host, n in conn.execute("SELECT host, count(*) FROM exchanges GROUP BY host "
                                        "HAVING host IS NOT NULL"):
                sizes[str(host)] = sizes.get(str(host), 0) + int(n)
            for url, n in conn.execute("SELECT coalesce(url, ''), count(*) FROM exchanges "
                                       "WHERE host IS NULL GROUP BY 1"):
                host = host_in_url(url) or ""
                sizes[host] = sizes.get(host, 0) + int(n)
                unnamed.setdefault(host, set()).add(str(url))
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{db}: not an etagwatch store ({exc})") from exc
    return HostCounts(sizes, unnamed, last_id)


def load_exchanges(db: str | Path | Store, columns: Iterable[str] | None = None, *,
                   hosts: Iterable[str] | None = None, unnamed: Iterable[str] = (),
                   indexed: bool = False, up_to: int | None = None) -> pd.DataFrame:
    """All exchanges as a DataFrame: columns ``id`` + COLUMNS (or those of COLUMNS named in
    ``columns``, in COLUMNS order), nullable ints and booleans, text as object; with
    ``hosts``, only the exchanges of those hosts and those without a host whose URL is one of
    ``unnamed`` (``HostCounts``), through the host index if ``indexed`` (``host_filter``);
    with ``up_to``, only exchanges of ids up to it.

    Safe while a writer is active (WAL: this reads the last committed state). Raises
    StoreError for a file that is not a store or a store of a newer schema, FileNotFoundError
    for a missing one.

    A store file is read by connectorx in a child process (analysis.store_arrow), a ``Store``
    (whose own connection may hold what others cannot see yet) and a file connectorx refuses
    through sqlite3; either way in chunks turned into columns at once (no frame of Python
    rows), a repeated text value one string object shared by its rows. A value of a numeric
    column that is no number is a StoreError naming its exchange.
    """
    names = list(COLUMNS) if columns is None else [c for c in COLUMNS if c in set(columns)]
    kinds = [int] + [PYTHON_KINDS[name] for name in names]
    conditions = [] if hosts is None else [host_filter(hosts, unnamed, indexed=indexed)]
    if up_to is not None:
        conditions.append(f"id <= {int(up_to)}")
    where = " AND ".join(conditions)
    if isinstance(db, Store):
        conn, own = db.connection, False
    else:
        conn, own = open_for_reading(db), True
    try:
        present = {r[1] for r in conn.execute("PRAGMA table_info(exchanges)")}
        parts = None
        if own and store_arrow.available():  # a file: read by connectorx, in Rust
            parts = _parts_via_arrow(Path(db), names, kinds, present, where)
        if parts is None:
            parts = _parts_via_sqlite3(conn, names, kinds, present, where)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{db}: not an etagwatch store ({exc})") from exc
    finally:
        if own:
            conn.close()
    import pandas as pd  # imported on use: `etagwatch ingest` never needs it

    columns_out = {}
    for name, part, kind in zip(["id", *names], parts, kinds, strict=True):
        try:
            columns_out[name] = _column(part, kind)
        except (TypeError, ValueError) as exc:  # a value no tool of ours writes
            raise StoreError(_not_of_kind(db, name, kind, exc)) from None
    return pd.DataFrame(columns_out, copy=False)


def _not_of_kind(db: str | Path | Store, name: str, kind: type, exc: Exception) -> str:
    """The error for a value of column ``name`` that is no ``kind``, naming its exchange."""
    path = db.path if isinstance(db, Store) else Path(db)
    allowed = "'real', 'integer'" if kind is float else "'integer'"
    try:
        with contextlib.closing(open_for_reading(path)) as conn:
            row = conn.execute(f"SELECT id FROM exchanges WHERE typeof({name}) NOT IN "
                               f"({allowed}, 'null') LIMIT 1").fetchone()
    except (sqlite3.Error, StoreError):
        row = None
    where = f"exchange id {row[0]}" if row else "some exchange"
    return (f"{path}: {where}: column {name} holds a value that is not "
            f"{'a whole number' if kind in (int, bool) else 'a number'} ({exc})")


def _parts_via_sqlite3(conn: sqlite3.Connection, names: list[str], kinds: list[type],
                       present: set[str], where: str = "") -> list[list]:
    """Each column's chunks, from rows fetched through the sqlite3 module."""
    picked = ", ".join(c if c in present else f"NULL AS {c}" for c in names)
    cursor = conn.execute(f"SELECT id, {picked} FROM exchanges "
                          f"{f'WHERE {where} ' if where else ''}ORDER BY id")
    parts: list[list] = [[] for _ in range(len(names) + 1)]
    while rows := cursor.fetchmany(LOAD_CHUNK):
        for part, kind, values in zip(parts, kinds, zip(*rows, strict=True), strict=True):
            part.append(_compact(values, kind))
        del rows
    return parts


def _parts_via_arrow(path: Path, names: list[str], kinds: list[type],
                     present: set[str], where: str = "") -> list[list] | None:
    """Each column's chunks, read by connectorx (columns a former schema lacks: all missing);
    None where it refuses the store (a value kept under another type than its column's)."""
    import numpy as np

    read = [(name, kind) for name, kind in zip(["id", *names], kinds, strict=True)
            if name in present or name == "id"]
    parts: dict[str, list] = {name: [] for name in ["id", *names]}
    try:
        for batch in store_arrow.read_batches(path, [n for n, _ in read], [k for _, k in read],
                                              where):
            rows = len(batch[0][1])
            for (name, _), piece in zip(read, batch, strict=True):
                parts[name].append(piece)
            for name, kind in zip(names, kinds[1:], strict=True):
                if name not in present:
                    empty = (np.zeros(rows, np.int64) if kind in (int, bool) else
                             np.full(rows, np.nan) if kind is float else
                             np.full(rows, None, dtype=object))
                    parts[name].append((empty, np.ones(rows, dtype=bool)))
    except store_arrow.Refused:
        return None
    return list(parts.values())


def _compact(values: tuple, kind: type) -> tuple:
    """One chunk of a column, converted while its values are fresh in the CPU caches: (numbers
    or objects, missing mask); in a text column with many repeats, equal strings are one
    object."""
    import numpy as np
    import pandas as pd

    arr = np.fromiter(values, dtype=object, count=len(values))
    if kind in (int, bool, float):
        try:
            data = arr.astype(np.float64)  # in C; None -> NaN
        except (TypeError, ValueError):  # a value SQLite kept under another type
            return arr, pd.isna(arr)
        missing = np.isnan(data)
        if kind is float:
            return data, missing
        data[missing] = 0
        if np.abs(data).max(initial=0) < 2**53 and np.array_equal(data, np.trunc(data)):
            return data.astype(np.int64), missing  # whole numbers below 2**53: exact
        return arr, missing
    if len(set(values[:1024])) < min(len(arr), 1024) // 2:
        codes, uniques = pd.factorize(arr)  # hashed in C; worth it where values repeat
        return np.append(np.asarray(uniques, dtype=object), None)[codes], codes < 0
    return arr, pd.isna(arr)


def _column(parts: list, kind: type) -> object:
    """A whole column in ``load_exchanges``' dtypes: Int64, boolean, float64 or object (text:
    missing values are NaN in a column holding text and None in a column of NULLs only, as
    pandas typed the rows before)."""
    import numpy as np
    import pandas as pd

    if not parts:
        parts = [(np.array([], dtype=object), np.array([], dtype=bool))]
    arr = np.concatenate([p[0] for p in parts])
    missing = np.concatenate([p[1] for p in parts])
    if kind is float:
        return pd.Series(arr, dtype="float64", copy=False)
    if kind in (int, bool):
        if arr.dtype == object:  # another type, or beyond 2**53: as pandas casts it (or refuses)
            arr[missing] = None
            return pd.Series(arr, dtype=object).astype("Int64" if kind is int else "boolean")
        if kind is bool:
            return pd.arrays.BooleanArray(arr.astype(bool), missing)
        return pd.arrays.IntegerArray(arr, missing)
    if missing.any() and not missing.all():
        arr[missing] = np.nan
    return pd.Series(arr, dtype=object, copy=False)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    dtypes: dict[str, str] = {"id": "Int64"}
    for name, kind in PYTHON_KINDS.items():
        if kind is bool:
            dtypes[name] = "boolean"
        elif kind is int:
            dtypes[name] = "Int64"
        elif kind is float:
            dtypes[name] = "float64"
        else:
            dtypes[name] = "object"
    return frame.astype(dtypes)


def load_probe_outcomes(db: str | Path | Store) -> pd.DataFrame:
    """Every probe outcome, oldest first (``evidence`` decoded); empty for a store made before
    probe outcomes existed. The same checks as ``load_exchanges``."""
    import pandas as pd

    if isinstance(db, Store):
        conn, own = db.connection, False
    else:
        conn, own = open_for_reading(db), True
    try:
        present = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='probe_outcomes'").fetchone()
        rows = conn.execute(
            f"SELECT {', '.join(PROBE_OUTCOME_COLUMNS)} FROM probe_outcomes ORDER BY id"
        ).fetchall() if present else []
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{db}: not an etagwatch store ({exc})") from exc
    finally:
        if own:
            conn.close()
    frame = pd.DataFrame.from_records(rows, columns=list(PROBE_OUTCOME_COLUMNS))
    frame["evidence"] = [json.loads(e) for e in frame["evidence"]]
    return frame
