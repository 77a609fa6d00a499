"""The Parquet dataset: the store's exchanges as a folder of Parquet files, partitioned so that
every exchange of a resource lands in one partition (engines such as Dask can then run the
per-resource detectors partition by partition, with no shuffle).

Layout (docs/schema.md, "Parquet dataset")::

    DIR/_etagwatch.json          manifest: settings, committed files, source digests
    DIR/part=NN/<run>-NN.parquet one file per partition and export run

Only files the manifest lists are part of the dataset. A writer writes its files under
temporary names, renames them, then replaces the manifest in one ``os.replace``: a crash at
any point leaves the dataset as it was (files of an uncommitted run are ignored by readers
and deleted by the next writer, which holds ``_etagwatch.lock``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis import dataset_outcomes
from analysis.engine.paths import RemotePathError, filesystem, is_url, join
from analysis.exchange import COLUMNS
from analysis.store import PYTHON_KINDS, StoreError, open_for_reading

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

MANIFEST = "_etagwatch.json"
LOCK = "_etagwatch.lock"
FORMAT = "etagwatch-dataset"
#: The newest manifest version this code reads. A dataset is written as version 1 unless it
#: holds probe outcomes (version 2, ``probe_outcomes``): an older etagwatch then says to
#: upgrade rather than ignore them.
VERSION = 2
#: Partitions of a new dataset (fixed per dataset: the manifest records it).
DEFAULT_PARTITIONS = 64
#: Rows read from the store at a time: memory is bounded by one batch, whatever the store.
BATCH_ROWS = 50_000
#: Rows fetched from SQLite at a time (as Python tuples, before they become Arrow arrays).
FETCH_ROWS = 5_000
#: Temporary stores of `ingest --dataset` live here, inside the dataset folder.
INGEST_PREFIX = "_ingest-"


class DatasetError(Exception):
    """One line for the user: not a dataset, a remote path without fsspec, a key conflict."""


def local_folder(text: str | os.PathLike[str]) -> Path:
    """A dataset path as a local folder (``file://`` accepted); URLs are handled by the
    callers through ``remote_copy``."""
    text = os.fspath(text)
    if is_url(text):
        raise DatasetError(f"{text}: a remote dataset is read and written through a local copy "
                           "of its manifest (analysis.dataset.remote_copy)")
    return Path(text.removeprefix("file://"))


def _remote(text: str | os.PathLike[str]) -> tuple[Any, str]:
    try:
        return filesystem(text)
    except RemotePathError as exc:
        raise DatasetError(str(exc)) from None


def is_dataset(path: str | os.PathLike[str]) -> bool:
    """A dataset folder (or URL), recognised by its manifest (content, not name)."""
    try:
        if is_url(path):
            fs, root = _remote(path)
            with fs.open(join(root, MANIFEST), "rb") as fh:
                return json.load(fh).get("format") == FORMAT
        with (Path(os.fspath(path).removeprefix("file://")) / MANIFEST).open() as fh:
            return json.load(fh).get("format") == FORMAT
    except (OSError, ValueError, AttributeError, DatasetError):
        return False


@contextlib.contextmanager
def remote_copy(url: str) -> Iterator[Path]:
    """A dataset at a URL (s3://, gs://) written through a local folder: the folder starts
    with the remote manifest only, the writer adds its files and a new manifest there, and
    on success the new files are uploaded first and the manifest last (one object PUT, atomic
    on object stores), so readers see the old dataset or the new one. Object stores have no
    lock: one writer at a time per remote dataset (readers need none; files of a writer that
    died before its manifest are never listed, so never read)."""
    fs, root = _remote(url)
    with tempfile.TemporaryDirectory(prefix="etagwatch-remote-") as tmp:
        local = Path(tmp) / "dataset"
        local.mkdir()
        old: set[str] = set()
        if fs.exists(join(root, MANIFEST)):
            fs.get_file(join(root, MANIFEST), str(local / MANIFEST))
            before = Manifest.read(local)
            old = {*(before.files or []), *(before.probe_outcomes or [])}  # type: ignore[union-attr]
        yield local
        manifest = Manifest.read(local)
        if manifest is None:
            return
        for rel in [*(manifest.files or []), *(manifest.probe_outcomes or [])]:
            if rel not in old:
                fs.makedirs(join(root, rel.rsplit("/", 1)[0]), exist_ok=True)
                fs.put_file(str(local / rel), join(root, rel))
        fs.put_file(str(local / MANIFEST), join(root, MANIFEST))


def partition_key(url: str | None) -> str:
    """What the partition is computed from: the URL without query and fragment. A resource
    (the URL, minus any --ignore-param parameters) always has one such key, so any
    --ignore-param choice keeps a resource in one partition."""
    if url is None:
        return ""
    return url.split("#", 1)[0].split("?", 1)[0]


def partition_of(url: str | None, partitions: int) -> int:
    """Stable partition number (the same in every process and version): BLAKE2b of the key."""
    digest = hashlib.blake2b(partition_key(url).encode("utf-8", "surrogatepass"),
                             digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def arrow_schema() -> pa.Schema:
    """``id`` plus the exchange columns, typed as the store types them."""
    import pyarrow as pa

    types = {bool: pa.bool_(), int: pa.int64(), float: pa.float64()}
    return pa.schema([("id", pa.int64()),
                      *((name, types.get(kind, pa.string())) for name, kind in PYTHON_KINDS.items())])


def _part_name(number: int, partitions: int) -> str:
    return f"part={number:0{len(str(partitions - 1))}d}"


@dataclass
class Manifest:
    """The dataset's manifest (``_etagwatch.json``)."""

    partitions: int
    key: str
    query_values: str = "hashed"
    secret_headers: list[str] | None = None
    max_id: int = 0
    files: list[str] | None = None  # relative paths of committed files
    sources: list[dict[str, Any]] | None = None  # complete sources: sha256, path, client
    stores: dict[str, dict[str, Any]] | None = None  # per store: highest id exported, its row
    probe_outcomes: list[str] | None = None  # committed outcome files (dataset_outcomes)

    @classmethod
    def read(cls, folder: Path) -> Manifest | None:
        path = folder / MANIFEST
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            if data.get("format") != FORMAT:
                raise ValueError("not an etagwatch dataset manifest")
            if int(data.get("version", 0)) > VERSION:
                raise DatasetError(f"{folder}: dataset version {data['version']} is newer "
                                   "than this etagwatch; upgrade etagwatch")
            data.pop("format")
            data.pop("version", None)
            return cls(**data)
        except (ValueError, TypeError) as exc:
            raise DatasetError(f"{folder}: not an etagwatch dataset ({exc})") from None

    def write(self, folder: Path) -> None:
        """Atomically: a temporary file, fsynced, renamed over the manifest."""
        fields = {k: v for k, v in self.__dict__.items()
                  if k != "probe_outcomes" or v is not None}
        data = {"format": FORMAT, "version": 2 if self.probe_outcomes else 1, **fields}
        tmp = folder / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
        with tmp.open("w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / MANIFEST)
        _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    """A rename is durable once its folder is synced (a power cut otherwise may undo it)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """The dataset's writer lock (one writer at a time; readers need none). Whoever holds it
    may delete what crashed writers left: files no manifest lists, temporary stores."""
    import fcntl  # POSIX, like the rest of the writers

    folder.mkdir(parents=True, exist_ok=True)
    with (folder / LOCK).open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _clean(folder: Path, manifest: Manifest | None) -> None:
    """Remove what crashed writers left (called with the lock held)."""
    keep = set(manifest.files or []) if manifest else set()
    for path in folder.glob("part=*/*"):
        if path.relative_to(folder).as_posix() not in keep:
            path.unlink(missing_ok=True)
    for path in folder.glob(f"{INGEST_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in folder.glob(f".{MANIFEST}.*.tmp"):
        path.unlink(missing_ok=True)
    dataset_outcomes.clean(folder, manifest.probe_outcomes if manifest else None)


def _meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT name, value FROM meta").fetchall())


def _arrow_batch(rows: list[tuple], schema: pa.Schema) -> pa.RecordBatch:
    import pyarrow as pa

    columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    arrays = []
    for values, field in zip(columns, schema, strict=True):
        if pa.types.is_boolean(field.type):  # SQLite keeps booleans as 0 / 1
            values = [None if v is None else bool(v) for v in values]
        try:
            arrays.append(pa.array(values, type=field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # a value SQLite kept as typed
            raise DatasetError(f"column {field.name}: a value of another type than "
                               f"{field.type} ({exc})") from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


@dataclass
class ExportResult:
    rows: int
    files: int
    skipped_sources: int  # sources already in the dataset, whose rows were left out
    held: int = 0  # rows at or after a file whose ingest into the store is unfinished
    outcomes: int = 0  # probe outcomes written (those an earlier export wrote are left out)


def export_store(store: str | Path, folder: str | Path, *, partitions: int | None = None,
                 batch_rows: int | None = None) -> ExportResult:
    """Append the store's exchanges that the dataset does not hold yet to the dataset at
    ``folder`` (created when missing), reading ``batch_rows`` at a time. Left out: rows up to
    the highest id an earlier export of this store wrote, and rows of files whose sha256 the
    dataset lists already. Ids are kept unless they would collide with the dataset's, then
    shifted above them. DatasetError when the dataset's keyed hashes come from another store
    (they would not compare). ``folder`` may be a URL (``remote_copy``)."""
    if is_url(folder):
        open_for_reading(store).close()
        with remote_copy(str(folder)) as local:
            return export_store(store, local, partitions=partitions, batch_rows=batch_rows)
    folder = local_folder(folder)
    open_for_reading(store).close()  # a missing or foreign store leaves no dataset folder
    with locked(folder):
        manifest = Manifest.read(folder)
        _clean(folder, manifest)
        return _export_path(Path(store), folder, manifest, partitions, True, batch_rows)


def _export_path(store: Path, folder: Path, manifest: Manifest | None, partitions: int | None,
                 track_store: bool, batch_rows: int | None) -> ExportResult:
    conn = open_for_reading(store)
    try:
        return _export(conn, folder, manifest, partitions, track_store,
                       batch_rows or BATCH_ROWS)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{store}: not an etagwatch store ({exc})") from exc
    finally:
        conn.close()


class Staging:
    """`ingest --dataset`: the dataset locked, a temporary store inside it made with the
    dataset's key, privacy settings and file digests (so the ordinary ingest, with its
    duplicate detection and crash safety, runs unchanged), exported when ``commit`` is called
    and removed in any case. A kill leaves the dataset as it was."""

    def __init__(self, folder: str | Path, partitions: int | None = None) -> None:
        self._remote = remote_copy(str(folder)) if is_url(folder) else None
        self.folder = self._remote.__enter__() if self._remote else local_folder(folder)
        self.partitions = partitions
        self.result: ExportResult | None = None

    def __enter__(self) -> Staging:
        self._lock = locked(self.folder)
        self._lock.__enter__()
        try:
            self.manifest = Manifest.read(self.folder)
            _clean(self.folder, self.manifest)
            if self.manifest and self.partitions not in (None, self.manifest.partitions):
                raise DatasetError(f"{self.folder}: the dataset has {self.manifest.partitions}"
                                   f" partitions (fixed when it was made), not {self.partitions}")
            self._tmp = self.folder / f"{INGEST_PREFIX}{uuid.uuid4().hex}"
            self._tmp.mkdir()
            self.store = self._tmp / "staging.sqlite"
            dataset_store(self.manifest, self.store)
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self

    def commit(self, batch_rows: int | None = None) -> ExportResult:
        self.result = _export_path(self.store, self.folder, self.manifest, self.partitions,
                                   False, batch_rows)
        return self.result

    def __exit__(self, *exc: object) -> None:
        try:
            shutil.rmtree(self._tmp, ignore_errors=True)
        finally:
            self._lock.__exit__(None, None, None)
            if self._remote:  # uploads what commit wrote; nothing when it failed
                self._remote.__exit__(*exc)


class _Parts:
    """One ParquetWriter per partition. Rows wait as Arrow batches (columnar: far smaller than
    the Python tuples, which are converted every fetch) and are written as one row group per
    partition at each ``flush``; files get their final names at ``commit``."""

    def __init__(self, folder: Path, partitions: int, schema: pa.Schema) -> None:
        self.folder, self.partitions, self.schema = folder, partitions, schema
        self.run = uuid.uuid4().hex[:12]
        self.writers: dict[int, Any] = {}
        self.names: dict[int, tuple[Path, Path]] = {}
        self.rows_of: dict[int, list[tuple]] = {}
        self.waiting: dict[int, list[pa.RecordBatch]] = {}
        self.buffered = self.rows = self.max_id = 0

    def add(self, number: int, row: tuple) -> None:
        self.rows_of.setdefault(number, []).append(row)

    def convert(self) -> None:
        for number, rows in self.rows_of.items():
            self.waiting.setdefault(number, []).append(_arrow_batch(rows, self.schema))
            self.buffered += len(rows)
            self.rows += len(rows)
            self.max_id = max(self.max_id, rows[-1][0])
        self.rows_of.clear()

    def flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        for number, batches in sorted(self.waiting.items()):
            if number not in self.writers:
                part = self.folder / _part_name(number, self.partitions)
                part.mkdir(exist_ok=True)
                final = part / f"{self.run}-{number}.parquet"
                self.names[number] = (part / f".{final.name}.tmp", final)
                self.writers[number] = pq.ParquetWriter(self.names[number][0], self.schema,
                                                        compression="zstd")
            self.writers[number].write_table(pa.Table.from_batches(batches, self.schema),
                                             row_group_size=max(1, self.buffered))
        self.waiting.clear()
        self.buffered = 0

    def commit(self) -> list[str]:
        """Every file closed, fsynced and renamed into place: their paths in the dataset."""
        self.flush()
        self.close()
        for tmp, final in self.names.values():
            with tmp.open("rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        for part in {final.parent for _, final in self.names.values()}:
            _fsync_dir(part)
        return sorted(f.relative_to(self.folder).as_posix() for _, f in self.names.values())

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()


def _select(conn: sqlite3.Connection) -> str:
    """SELECT of ``id`` and every exchange column (NULL for columns an older store lacks)."""
    present = {r[1] for r in conn.execute("PRAGMA table_info(exchanges)")}
    picked = ", ".join(c if c in present else f"NULL AS {c}" for c in COLUMNS)
    return f"SELECT id, {picked} FROM exchanges"


def _fingerprint(row: tuple) -> str:
    return hashlib.sha256(json.dumps(row, default=str).encode()).hexdigest()[:32]


def _watermark(conn: sqlite3.Connection, mark: dict[str, Any] | None) -> int:
    """The highest store id an earlier export of this store wrote, when the store still holds
    that very row; else 0 (a copy of the store that went its own way has the same key and
    creation time: its rows are all new, less the files the dataset holds)."""
    if not mark:
        return 0
    row = conn.execute(f"{_select(conn)} WHERE id = ?", (mark["id"],)).fetchone()
    return int(mark["id"]) if row is not None and _fingerprint(row) == mark["row"] else 0


def _export(conn: sqlite3.Connection, folder: Path, manifest: Manifest | None,
            partitions: int | None, track_store: bool, batch_rows: int) -> ExportResult:
    meta = _meta(conn)
    if manifest is None:
        manifest = Manifest(partitions=partitions or DEFAULT_PARTITIONS, key=meta.get("key", ""),
                            query_values=meta.get("query_values", "hashed"))
    elif partitions and partitions != manifest.partitions:
        raise DatasetError(f"{folder}: the dataset has {manifest.partitions} partitions "
                           f"(fixed when it was made), not {partitions}")
    if manifest.key != meta.get("key"):
        raise DatasetError(f"{folder}: the dataset's keyed hashes come from another store, so "
                           "hashes would not compare; export into a new folder")
    if manifest.partitions < 1:
        raise DatasetError(f"{folder}: partitions must be 1 or more")
    identity = f"{meta.get('key', '')}:{meta.get('created', '')}"
    stores = dict(manifest.stores or {})
    after = _watermark(conn, stores.get(identity)) if track_store else 0
    known = {s["sha256"] for s in manifest.sources or []}
    versioned = "complete" in {r[1] for r in conn.execute("PRAGMA table_info(sources)")}
    done = "complete = 1 AND" if versioned else ""  # schema 1: every source is complete
    sources = conn.execute(f"SELECT path, client, sha256, size FROM sources WHERE {done}"
                           " sha256 IS NOT NULL AND error IS NULL AND kind != 'dataset'"
                           " ORDER BY id").fetchall()
    # rows of a file still being ingested (or of a killed ingest, which the next one deletes)
    # wait: the export stops below the first of them and a later export takes them
    upto = conn.execute("SELECT min(first_id) FROM sources WHERE complete = 0").fetchone()[0] \
        if versioned else None
    upto = (1 << 62) if upto is None else upto
    # rows name their file by (source, client); a pair that also stored bytes the dataset
    # lacks (the file changed) is exported whole, the watermark keeps it from repeating
    fresh = {(p, c) for p, c, d, _ in sources if d not in known}
    excluded = {(p, c) for p, c, d, _ in sources if d in known} - fresh
    first = conn.execute("SELECT min(id) FROM exchanges WHERE id > ? AND id <= ?",
                         (after, upto)).fetchone()[0]
    shift = max(0, manifest.max_id - first + 1) if first is not None else 0

    schema = arrow_schema()
    cur = conn.execute(f"{_select(conn)} WHERE id > ? AND id <= ? ORDER BY id", (after, upto))
    src, cli = 1 + COLUMNS.index("source"), 1 + COLUMNS.index("client")
    url = 1 + COLUMNS.index("url")
    parts = _Parts(folder, manifest.partitions, schema)
    fetch = min(FETCH_ROWS, batch_rows)
    rows_out, last = 0, None
    try:
        while rows := cur.fetchmany(fetch):
            last = rows[-1]
            for row in rows:
                if (row[src], row[cli]) in excluded:
                    continue
                if shift:
                    row = (row[0] + shift, *row[1:])
                parts.add(partition_of(row[url], manifest.partitions), row)
            parts.convert()
            if parts.buffered + fetch > batch_rows:
                parts.flush()
        rows_out = parts.rows
        manifest.max_id = max(manifest.max_id, parts.max_id)
        files = parts.commit()
    finally:
        parts.close()
    manifest.files = [*(manifest.files or []), *files]
    seen = {(s["sha256"]) for s in manifest.sources or []}
    added = [{"sha256": d, "path": p, "client": c, "size": n} for p, c, d, n in sources
             if d not in seen]
    manifest.sources = [*(manifest.sources or []),
                        *{a["sha256"]: a for a in added}.values()]
    outcomes = 0
    if track_store:  # a staging store (ingest --dataset) holds no probe outcomes
        mark = dict(stores.get(identity) or {})
        # outcomes above the mark went out with the rows below it, if that mark still holds
        written, outcomes, top = dataset_outcomes.export_outcomes(
            conn, folder, int(mark.get("outcome_id", 0)) if after else 0)
        if written:
            manifest.probe_outcomes = [*(manifest.probe_outcomes or []), written]
        if last is not None:
            mark.update(id=last[0], row=_fingerprint(last))
        if "id" in mark:
            mark["outcome_id"] = top
            stores[identity] = mark
    manifest.stores = stores
    manifest.secret_headers = sorted({*(manifest.secret_headers or []),
                                      *json.loads(meta.get("secret_headers") or "[]")})
    manifest.write(folder)
    held = conn.execute("SELECT count(*) FROM exchanges WHERE id > ?", (upto,)).fetchone()[0]
    return ExportResult(rows_out, len(files), len(excluded), held, outcomes)


def dataset_files(folder: str | Path) -> list[Any]:
    """The committed Parquet files of a dataset (DatasetError when it is none): paths, or
    URLs for a remote dataset."""
    if is_url(folder):
        fs, root = _remote(folder)
        with remote_copy_manifest(fs, root) as local:
            manifest = Manifest.read(local)
        if manifest is None:
            raise DatasetError(f"{folder}: not an etagwatch dataset (no {MANIFEST})")
        return [fs.unstrip_protocol(join(root, f)) for f in manifest.files or []]
    folder = local_folder(folder)
    manifest = Manifest.read(folder)
    if manifest is None:
        raise DatasetError(f"{folder}: not an etagwatch dataset (no {MANIFEST})")
    return [folder / f for f in manifest.files or []]


@contextlib.contextmanager
def remote_copy_manifest(fs: Any, root: str) -> Iterator[Path]:
    """A temporary folder holding the remote dataset's manifest (when it has one)."""
    with tempfile.TemporaryDirectory(prefix="etagwatch-remote-") as tmp:
        if fs.exists(join(root, MANIFEST)):
            fs.get_file(join(root, MANIFEST), str(Path(tmp) / MANIFEST))
        yield Path(tmp)


@contextlib.contextmanager
def _reading(path: str | Path) -> Iterator[None]:
    """A file the manifest lists that is gone or is no Parquet file (damaged, truncated, or
    written over by another tool) is a DatasetError naming it: one line for the user."""
    import pyarrow as pa

    try:
        yield
    except FileNotFoundError:
        raise DatasetError(f"{path}: listed in the dataset's manifest but missing") from None
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(f"{path}: not a readable Parquet file of the dataset ({exc})"
                           ) from None


def read_arrow(path: str | Path) -> pa.Table:
    """One Parquet file of a dataset (local or at a URL) in the dataset's schema."""
    import pyarrow.parquet as pq

    with _reading(path):
        if is_url(path):
            fs, inner = _remote(path)
            with fs.open(inner, "rb") as fh:
                return pq.read_table(fh, schema=arrow_schema())
        return pq.read_table(path, schema=arrow_schema())


def _parquet_file(path: str | Path, stack: contextlib.ExitStack) -> Any:
    import pyarrow.parquet as pq

    with _reading(path):
        if is_url(path):
            fs, inner = _remote(path)
            return pq.ParquetFile(stack.enter_context(fs.open(inner, "rb")))
        return pq.ParquetFile(path)


def row_groups(folder: str | Path) -> list[tuple[Any, int, int]]:
    """(file, row group, rows) of every row group of a dataset, from the Parquet footers (no
    row is read): the units an engine may cut the dataset into, whatever its partitions."""
    units = []
    for path in dataset_files(folder):
        with contextlib.ExitStack() as stack:
            meta = _parquet_file(path, stack).metadata
            units += [(path, i, meta.row_group(i).num_rows) for i in range(meta.num_row_groups)]
    return units


def read_row_groups(path: str | Path, groups: list[int], columns: list[str] | None = None
                    ) -> pa.Table:
    """Row groups of one dataset file, in the dataset's schema (columns a file of an older
    version lacks are nulls); only ``columns`` where given."""
    import pyarrow as pa

    schema = arrow_schema()
    if columns is not None:
        schema = pa.schema([f for f in schema if f.name in set(columns)])
    with contextlib.ExitStack() as stack, _reading(path):
        file = _parquet_file(path, stack)
        present = set(file.schema_arrow.names)
        table = file.read_row_groups(groups, columns=None if columns is None else
                                     [f.name for f in schema if f.name in present])
    columns = [table[f.name].cast(f.type) if f.name in table.column_names
               else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def read_columns(path: str | Path, columns: list[str]) -> pa.Table:
    """``columns`` of every row group of one dataset file, in the dataset's types."""
    with contextlib.ExitStack() as stack:
        groups = _parquet_file(path, stack).metadata.num_row_groups
    return read_row_groups(path, list(range(groups)), columns)


def dataset_rows(folder: str | Path) -> int:
    """Exchanges in a dataset, from the Parquet footers (no row is read)."""
    return sum(rows for _, _, rows in row_groups(folder))


def _frame(tables: list[pa.Table], columns: Iterable[str] | None = None) -> pd.DataFrame:
    """Dataset rows as ``load_exchanges`` returns a store's: ``id`` and COLUMNS (or those of
    ``columns``) in id order, the same dtypes, each column built as the store loader builds
    it from connectorx's Arrow batches (``store_arrow._compact_arrow``, ``store._column``): a
    repeated text value is one string object shared by its rows."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    from analysis.store import _column
    from analysis.store_arrow import _compact_arrow

    wanted = None if columns is None else set(columns)
    names = [c for c in COLUMNS if wanted is None or c in wanted]
    schema = arrow_schema()
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    table = table.select(["id", *names])
    table = table.take(pc.sort_indices(table["id"]))  # ids are unique: any sort is stable
    out = {}
    for name in ["id", *names]:
        kind = int if name == "id" else PYTHON_KINDS[name]
        col = table[name].cast(pa.int64()) if kind is bool else table[name]
        out[name] = _column([_compact_arrow(chunk, kind) for chunk in col.chunks], kind)
    return pd.DataFrame(out, copy=False)


def iter_partitions(folder: str | Path) -> Iterator[tuple[int, pd.DataFrame]]:
    """(partition number, its exchanges) one partition at a time: every exchange of a
    resource is in one of them, so per-resource work needs no more memory than a partition."""
    by_part: dict[int, list[Any]] = {}
    for path in dataset_files(folder):
        name = str(path).rsplit("/", 2)[-2]
        by_part.setdefault(int(name.split("=", 1)[1]), []).append(path)
    for number in sorted(by_part):
        yield number, _frame([read_arrow(p) for p in by_part[number]])


def load_dataset(folder: str | Path, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """All exchanges of a dataset as ``analysis.store.load_exchanges`` returns a store's:
    columns ``id`` + COLUMNS (or those of ``columns``, the only ones read) in id order, the
    same dtypes."""
    if columns is None:
        return _frame([read_arrow(p) for p in dataset_files(folder)])
    wanted = set(columns)
    names = ["id", *(c for c in COLUMNS if c in wanted)]
    return _frame([read_columns(p, names) for p in dataset_files(folder)], wanted)


def dataset_store(manifest: Manifest | None, path: Path) -> None:
    """Prepare a temporary store for `ingest --dataset`: the dataset's key and privacy
    settings, and its files' digests as complete sources, so the ingest's own duplicate
    detection skips files the dataset holds already."""
    from analysis.store import Store

    with Store(path) as store:
        conn = store.connection
        if manifest is None:
            return
        with conn:
            conn.execute("UPDATE meta SET value = ? WHERE name = 'key'", (manifest.key,))
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('query_values', ?)",
                         (manifest.query_values,))
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('secret_headers', ?)",
                         (json.dumps(manifest.secret_headers or []),))
            conn.executemany(
                "INSERT INTO sources (path, kind, sha256, size, client, ingested_at, complete)"
                " VALUES (?, 'dataset', ?, ?, ?, 0, 1)",
                [(s["path"], s["sha256"], s.get("size"), s.get("client"))
                 for s in manifest.sources or []])


__all__ = ["BATCH_ROWS", "DEFAULT_PARTITIONS", "DatasetError", "ExportResult", "Manifest",
           "Staging", "dataset_files", "dataset_rows", "export_store", "is_dataset", "iter_partitions",
           "load_dataset", "local_folder", "partition_key", "partition_of", "read_arrow",
           "read_row_groups", "remote_copy", "row_groups"]
