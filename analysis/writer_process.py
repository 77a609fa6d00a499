"""Bulk inserts from a second process, so reading a capture and writing SQLite use two cores.

Why a process and not a thread: sqlite3 lets go of the GIL only inside each row's step, so a
writer thread has to win the GIL back once per row from a reader that never yields it (msgspec
decoding and record building are pure CPU); the two end up taking turns instead of running
side by side. The child is a plain ``python -m analysis.writer_process DB`` (not
multiprocessing, whose spawn mode re-imports the caller's ``__main__`` and breaks scripts
without a main guard): the reader sends batches of rows as msgpack frames on its stdin, the
child binds and steps them while the reader goes on.

Frames are written by the reader itself, without blocking, into a pipe enlarged to PIPE_BYTES;
what the pipe cannot take yet waits in this process, and the reader waits only once more than
BUFFER_BYTES do, so memory stays flat. (No thread in between: a pipe thread waits for the GIL
up to 5 ms per hand-over, and the child starved while frames sat in its queue. No blocking
writes: the reader would stall while the child starts or checkpoints.) How much the child has
not read yet tells the reader whether it has time to convert a run of entries itself.
The child commits every BATCH rows and at each sync, and a thread of its own copies the WAL
into the store meanwhile (``Checkpointer``); ``insert`` returns once every row it sent is
committed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import sqlite3
import struct
import subprocess
import sys
import termios
import threading
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

import msgspec

import analysis
from analysis.exchange import COLUMNS, Exchange
from analysis.framing import HEADER, end_child, read_frame, write_frame
from analysis.store import BATCH, BULK_CHECKPOINT_PAGES, INSERT_SQL, connect, execute_rows

if TYPE_CHECKING:  # the child imports the readers on use: it starts storing rows sooner
    from analysis.readers.har import HarReader

#: SQLite page cache of the writer (KiB): keeps the url index's hot pages on large stores.
CACHE_KIB = 32 * 1024
#: The same while the exchanges have no index (a bulk load into an empty store builds them at
#: the end): rows only append to the table then, and a large cache would only hold memory.
APPEND_CACHE_KIB = 8 * 1024
#: Size asked for the pipe to the child (Linux's default limit for unprivileged processes).
PIPE_BYTES = 1024 * 1024
#: Rows per frame (about 0.7 MB): a frame fits in the pipe.
FRAME_ROWS = 500
#: Frames queued in this process while the pipe is full, before the reader waits: covers the
#: child's start-up (0.1-0.2 s of rows) and its slower moments.
BUFFER_BYTES = 8 * 1024 * 1024
#: The child gets the next run of entries to convert while less than this waits for it.
HUNGRY_BYTES = 192 * 1024
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_HOST = COLUMNS.index("host")
#: How often the child's checkpoint thread copies committed WAL pages into the store.
CHECKPOINT_SECONDS = 0.1
_INDEX = struct.Struct("<Q")
ROWS, SYNC, CONFIG, RUN = b"R", b"S", b"C", b"U"


class WriterError(RuntimeError):
    """The writer process could not store rows (disk full, locked store, ...) or died."""


class RunReport(NamedTuple):
    """What the writer made of the runs of entries it converted since the last sync."""

    entries: int
    skips: list[tuple[int, str]]  # (entry_index, reason), in entry order
    hosts: list[str]




class WriterProcess:
    """A child process that inserts exchanges into the store at ``path``.

    With ``offload_share`` > 0 it also converts up to that share of the runs of HAR entries
    (as ``HarReader(offload=...)``), those that come while it has little to do: the reader
    then only counts those entries, so the work of both processes evens out on two cores. Rows and runs travel down one pipe, so the store
    keeps file order. Use as a context manager, or call ``close()``; the child also stops
    when its stdin closes (this process ending included).
    """

    def __init__(self, path: str | Path, *, offload_share: float = 0.0) -> None:
        env = analysis.child_env()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "analysis.writer_process", str(path), str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self._encode = msgspec.msgpack.Encoder().encode
        self._decode = msgspec.msgpack.Decoder().decode
        self._fd = self._proc.stdin.fileno()  # type: ignore[union-attr]
        with contextlib.suppress(OSError):  # 64 KiB when refused: slower, still correct
            fcntl.fcntl(self._fd, _F_SETPIPE_SZ, PIPE_BYTES)
        os.set_blocking(self._fd, False)
        self._waiting = bytearray(4)  # FIONREAD answer: bytes the child has not read yet
        self._broken = False
        self._out: deque[memoryview] = deque()  # frames not yet in the pipe
        self._queued = 0
        self._room = select.poll()
        self._room.register(self._fd, select.POLLOUT)
        self._batch: list[tuple] = []
        self._share = offload_share
        self._runs = self._taken = 0
        self._configured: object = None
        #: Runs converted by the child during the last ``insert`` (entries, skips, hosts).
        self.runs = RunReport(0, [], [])

    # --- the reader's side of HarReader(offload=...) ------------------------------------------
    def wants_run(self) -> bool:
        """Take this run? Only while the child keeps up (less than HUNGRY_BYTES wait in the
        pipe) and for at most ``offload_share`` of the runs. A converted run costs less in
        all than rows sent over (no msgpack round trip), so the child gets every run it has
        time for; when it falls behind (a busy machine), the reader keeps the work."""
        self._runs += 1
        if self._taken < self._share * self._runs and self._backlog() < HUNGRY_BYTES:
            self._taken += 1
            return True
        return False

    def _backlog(self) -> int:
        """Bytes sent that the child has not read yet (in the pipe or queued for it)."""
        try:
            fcntl.ioctl(self._fd, termios.FIONREAD, self._waiting)
        except OSError:
            return self._queued
        return self._queued + int.from_bytes(self._waiting, sys.byteorder)

    def take(self, reader: HarReader, data: bytes, first_index: int, count: int) -> None:
        if self._configured is not reader:
            self._send(CONFIG, self._encode(reader.config()))
            self._configured = reader
        self._flush()  # rows before this run go first: the store keeps file order
        self._send(RUN, _INDEX.pack(first_index) + data)

    # --- rows ---------------------------------------------------------------------------------
    def insert(self, exchanges: Iterable[Exchange]) -> int:
        """Send exchanges in batches; returns how many rows were stored (those of offloaded
        runs included, see ``runs``) once all are committed."""
        return self.insert_rows(map(msgspec.structs.astuple, exchanges))

    def insert_rows(self, rows: Iterable[tuple]) -> int:
        """``insert`` for rows already in COLUMNS order (``build_row`` tuples)."""
        batch = self._batch  # emptied in place by every flush, ``take`` included
        batch.clear()
        for row in rows:
            batch.append(row)
            if len(batch) >= FRAME_ROWS:
                self._flush()
        self._flush()
        return self._sync()

    def _flush(self) -> None:
        if self._batch:
            self._send(ROWS, self._encode(self._batch))
            self._batch.clear()

    def _send(self, kind: bytes, payload: bytes = b"", *, wait: bool = False) -> None:
        """Queue a frame and write what the pipe takes now; wait only while more than
        BUFFER_BYTES are queued (or with ``wait``, until all is written)."""
        if self._broken:
            raise self._died()
        self._out.append(memoryview(HEADER.pack(len(payload), kind[0])))
        self._out.append(memoryview(payload))
        self._queued += HEADER.size + len(payload)
        try:
            self._push(BUFFER_BYTES if not wait else 0)
        except OSError:
            self._broken = True
            raise self._died() from None

    def _push(self, limit: int) -> None:
        """Write queued bytes without blocking; poll for room while more than ``limit`` wait."""
        out, fd = self._out, self._fd
        while out:
            try:
                n = os.write(fd, out[0])
            except BlockingIOError:
                if self._queued <= limit:
                    return
                self._room.poll()  # until the child has read some
                continue
            self._queued -= n
            if n == len(out[0]):
                out.popleft()
            else:
                out[0] = out[0][n:]

    def _sync(self) -> int:
        self._send(SYNC, wait=True)
        reply = read_frame(self._proc.stdout)  # type: ignore[arg-type]
        if reply is None:
            raise self._died()
        status, *values = self._decode(reply[1])
        if status != "ok":
            raise WriterError(f"the store writer failed: {values[0]}")
        stored, entries, skips, hosts = values
        self.runs = RunReport(entries, [(i, r) for i, r in skips], hosts)
        return int(stored)

    def _died(self) -> WriterError:
        try:
            code = self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        return WriterError(f"the store writer process died (exit status {code})")

    def stop(self) -> None:
        """Tell the child to finish (it commits what it has and exits) without waiting."""
        self._broken = True  # nothing more may be sent
        with contextlib.suppress(OSError):
            self._proc.stdin.close()  # type: ignore[union-attr]

    def close(self) -> None:
        """Stop the child (it commits what it has) and wait for it."""
        self._broken = True
        end_child(self._proc, timeout=60)

    def __enter__(self) -> WriterProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Child:
    """The writer's state between syncs."""

    def __init__(self, path: str, parent: int) -> None:
        self.parent = parent
        self.conn = connect(path)
        self.conn.execute(f"PRAGMA wal_autocheckpoint={BULK_CHECKPOINT_PAGES}")
        indexed = self.conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                                    "AND tbl_name = 'exchanges'").fetchone()[0]
        self.conn.execute(f"PRAGMA cache_size=-{CACHE_KIB if indexed else APPEND_CACHE_KIB}")
        self.decode = msgspec.msgpack.Decoder().decode
        self.reader: HarReader | None = None
        self.reset()

    def reset(self) -> None:
        self.stored = self.entries = self.uncommitted = 0
        self.skips: list[tuple[int, str]] = []
        self.hosts: set[str] = set()
        self.error: str | None = None

    def handle(self, kind: bytes, payload: bytes) -> None:
        if kind == ROWS:
            self.insert(self.decode(payload))
        elif kind == CONFIG:
            from analysis.readers.har import reader_from_config

            self.reader = reader_from_config(self.decode(payload))
        elif kind == RUN:
            if self.reader is None:
                raise WriterError("a run of entries came before its file's configuration")
            (first,) = _INDEX.unpack_from(payload)
            from analysis.readers.result import Skip

            items = self.reader.convert_run(payload[_INDEX.size :], first)
            rows = []
            for item in items:
                if type(item) is tuple:  # a row (the reader was configured with rows=True)
                    rows.append(item)
                    if item[_HOST]:
                        self.hosts.add(item[_HOST])
                elif isinstance(item, Skip):
                    self.skips.append((item.entry_index, item.reason))
                else:
                    rows.append(msgspec.structs.astuple(item))
                    if item.host:
                        self.hosts.add(item.host)
            self.entries += len(items)
            self.insert(rows)

    def insert(self, rows: list) -> None:
        """Add rows to the open transaction; commit once BATCH rows wait (frames are small,
        a commit per frame would cost more than the rows)."""
        try:
            execute_rows(self.conn, INSERT_SQL, rows)
        except BaseException:
            self.conn.rollback()
            self.uncommitted = 0
            raise
        self.uncommitted += len(rows)
        if self.uncommitted >= BATCH:
            self.commit()

    def commit(self) -> None:
        if os.getppid() != self.parent:  # orphaned: the rows of a dead ingest stay uncommitted
            raise _Orphaned
        self.conn.commit()
        self.stored += self.uncommitted
        self.uncommitted = 0

    def reply(self) -> list:
        if self.error is not None:
            self.conn.rollback()
            return ["error", self.error]
        self.commit()
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        return ["ok", self.stored, self.entries, self.skips, sorted(self.hosts)]


class _Orphaned(Exception):
    """The parent ingest died: nothing more may be committed."""


def die_with_parent(parent: int) -> None:
    """Be killed when the parent dies (Linux ``PR_SET_PDEATHSIG``), and leave now if it
    already has. A killed ingest must leave only the rows it had committed itself: the next
    run replaces those, and a child still committing behind its back would add rows it cannot
    know of. (Elsewhere ``commit`` checks the parent before every commit.)"""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:
        raise SystemExit(0)


def serve(path: str, src: BinaryIO, out: BinaryIO, parent: int | None = None) -> None:
    """The child's loop: insert batches of rows (and converted runs), committing every BATCH
    rows, answer syncs, stop at EOF.

    After a failure the frames up to the next sync are dropped and the sync answers with
    the error, so the parent reports it instead of blocking. Rows after the last sync are
    committed at EOF only while the parent lives (``stop`` after a sync sends none).
    """
    encode = msgspec.msgpack.Encoder().encode
    child = _Child(path, os.getppid() if parent is None else parent)
    checkpoints = Checkpointer(path)
    try:
        while (frame := read_frame(src)) is not None:
            kind, payload = frame
            if kind == SYNC:
                write_frame(out, SYNC, encode(child.reply()))
                child.reset()
            elif child.error is None:
                try:
                    child.handle(kind, payload)
                except _Orphaned:
                    break
                except Exception as exc:  # reported to the parent at the next sync
                    child.error = f"{type(exc).__name__}: {exc}"
    finally:
        checkpoints.stop()
        if child.error is None and os.getppid() == child.parent:
            child.conn.commit()  # rows sent without a final sync by a parent that lives on
        else:
            child.conn.rollback()
        child.conn.execute("PRAGMA wal_autocheckpoint=1000")
        child.conn.close()


class Checkpointer:
    """Copies committed WAL pages into the store from a thread of the child, every
    CHECKPOINT_SECONDS, beside the inserts.

    Left to the inserting connection, a checkpoint (80 MB of WAL copied and synced) runs
    inside a commit and stalls the child for 0.2 s, and the reader with it once the pipe is
    full. PASSIVE checkpoints from another connection never block the writer; the writer's
    own autocheckpoint stays as the bound on the WAL should these fall behind.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="etagwatch-checkpoint",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = connect(self._path)
        try:
            while not self._done.wait(CHECKPOINT_SECONDS):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:  # best effort: the writer's autocheckpoint still bounds the WAL
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


if __name__ == "__main__":
    parent_pid = int(sys.argv[2]) if len(sys.argv) > 2 else os.getppid()
    die_with_parent(parent_pid)
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt, _Orphaned):  # the parent went away
        serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer, parent_pid)
