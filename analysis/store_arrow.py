"""The store's exchanges read as Arrow record batches by connectorx, for ``load_exchanges``.

Fetching a million rows through the sqlite3 module builds a Python tuple per row and an object
per value: about 10 s, then as long again to turn them into columns. connectorx reads SQLite in
Rust straight into Arrow columns (BENCHMARKS.md, "Analyze end to end"), and Arrow's dictionary
encoding gives the loader its one-object-per-distinct-text columns in C.

connectorx links its own copy of SQLite. Two copies of SQLite in one process corrupt each
other's POSIX locks (https://www.sqlite.org/howtocorrupt.html, 2.2.1): measured here, its
connection closing under a live writer of the same process deleted that writer's WAL ("disk
I/O error", rows lost). So connectorx runs in a child process of its own, which streams the
batches back as Arrow IPC; the parent converts one batch while the child reads the next.

connectorx types a column by its declared SQL type and refuses a value SQLite kept under
another type (a blob in a TEXT column, written by some other tool) with a Rust panic; the
child then fails and ``Refused`` tells the caller to read through sqlite3, which keeps such
values as they are.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import numpy as np

#: Rows per record batch: the Arrow batch and its converted columns live this long.
BATCH_ROWS = 65_536

_CHILD = """\
import sys
import connectorx as cx
import pyarrow as pa
url, rows = sys.argv[1], int(sys.argv[2])
query = sys.stdin.read()  # on stdin: a host filter may be longer than an argument may be
reader = cx.read_sql(url, query, return_type="arrow_stream", batch_size=rows)
with pa.ipc.new_stream(sys.stdout.buffer, reader.schema) as out:
    for batch in reader:
        if batch.num_rows:
            out.write_batch(batch)
"""


class Refused(Exception):
    """connectorx could not read the store as its declared types say: read it through sqlite3."""


def available() -> bool:
    """connectorx is installed (found, not imported: only the child imports it; an install
    it cannot import fails the child, and the store is read through sqlite3)."""
    import importlib.util

    return importlib.util.find_spec("connectorx") is not None


def read_batches(path: Path, names: list[str], kinds: list[type], where: str = ""
                 ) -> Iterator[list[tuple]]:
    """For each batch of rows in ``id`` order: one (values, missing mask) per column of
    ``names``, as ``store._compact`` makes them from fetched rows. ``names`` must all exist in
    the table; ``where``: an SQL condition on the rows (``store.host_filter``). Raises Refused
    (before or after some batches) where connectorx cannot go on."""
    url = "sqlite://" + urllib.parse.quote(str(Path(path).resolve()))
    query = (f"SELECT {', '.join(names)} FROM exchanges {f'WHERE {where} ' if where else ''}"
             "ORDER BY id")
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, url, str(BATCH_ROWS)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
            env={**os.environ, "RUST_BACKTRACE": "0"})
        ended = False
        try:
            import pyarrow as pa  # imported while the child starts

            with contextlib.suppress(BrokenPipeError):  # a child that died says why below
                proc.stdin.write(query.encode())  # type: ignore[union-attr]
                proc.stdin.close()  # type: ignore[union-attr]
            try:
                for batch in pa.ipc.open_stream(proc.stdout):
                    yield [_compact_arrow(batch.column(i), kind) for i, kind in enumerate(kinds)]
            except pa.ArrowException:  # the stream broke off: the child says why below
                pass
            ended = True
        finally:
            proc.stdout.close()
            if not ended:  # given up on (an error here, the caller gone): stop the child
                proc.kill()
            proc.wait()
        if proc.returncode != 0:
            errors.seek(0)
            lines = [ln for ln in errors.read().decode(errors="replace").splitlines() if ln]
            raise Refused(lines[-1] if lines else f"connectorx exited {proc.returncode}")


def _compact_arrow(col: object, kind: type) -> tuple[np.ndarray, np.ndarray]:
    """One batch of a column in the loader's chunk form: (numbers or objects, missing)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    missing = col.is_null().to_numpy(zero_copy_only=False)
    if kind in (int, bool):
        if not pa.types.is_integer(col.type):
            raise Refused(f"integer column read as {col.type}")
        return col.fill_null(0).to_numpy().astype(np.int64, copy=False), missing
    if kind is float:
        if not pa.types.is_floating(col.type):
            raise Refused(f"real column read as {col.type}")
        data = col.fill_null(np.nan).to_numpy().astype(np.float64, copy=False)
        return data, np.isnan(data)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        raise Refused(f"text column read as {col.type}")
    sample = col.slice(0, 1024)
    if pc.count_distinct(sample).as_py() >= len(sample) // 2:  # mostly distinct (header lists)
        return col.to_numpy(zero_copy_only=False).astype(object, copy=False), missing
    encoded = pc.dictionary_encode(col)  # repeats: one object per distinct value, hashed in C
    uniques = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object, copy=False)
    codes = encoded.indices.fill_null(-1).to_numpy()
    return np.append(uniques, None)[codes], missing
