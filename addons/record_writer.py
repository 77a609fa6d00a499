"""Build and store the proxy's exchange records in a child process, off mitmproxy's event loop.

Why not a writer thread (``analysis.store.BackgroundWriter``): with one queue item per flow the
thread woke on every response and fought the event loop for the GIL (queue notify, GIL
hand-over, row binding, commit), which cost the proxy about 8 % of its throughput under load.
Here ``put_snapshot`` (or ``put`` for a ready record) only appends to a deque (no lock, no
wake-up); a sender thread ships what waits every ``SEND_INTERVAL`` seconds as one msgpack frame
down a pipe (the write releases the GIL), and the child (``python -m addons.record_writer DB``)
turns snapshots into rows (``addons.flow_snapshot.to_row``, the costly part of recording),
inserts and commits each frame. A
``kill -9`` of the proxy therefore loses at most ``SEND_INTERVAL`` plus one commit of
exchanges (less: the child runs in its own session, so a kill of the proxy's process group
spares it and it stores what it got). It stops when its stdin closes, after the proxy's
``done`` hook has sent the last rows, or when the proxy dies.

The child also creates or migrates the store and hands the proxy the store's keyed-hash key,
so SQLite never runs in the proxy's process; and when the record configuration asks for it, it
judges the flows it records (``addons.writer_judge``) and sends the verdicts back, read by a
listener thread here and handed to ``on_verdicts``.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import BinaryIO

import msgspec

from addons.flow_snapshot import RecordConfig, Snapshot, to_row
from addons.guard import report
from addons.live_detectors import resource_detector
from addons.writer_judge import WriterJudge
from analysis.exchange import Exchange
from analysis.framing import end_child, read_frame, write_frame
from analysis.privacy import Privacy

#: Seconds between frames sent to the child (the bound on what a kill -9 can lose, with one
#: commit in the child).
SEND_INTERVAL = 0.1
ROWS, SNAPSHOTS, CONFIG, SYNC, OPENED, VERDICTS = b"R", b"N", b"C", b"S", b"O", b"V"
#: Seconds the proxy waits for the child to open the store (a locked store waits on SQLite's
#: busy timeout first).
OPEN_TIMEOUT = 60
_ROOT = str(Path(__file__).resolve().parents[1])


class RecordWriterError(RuntimeError):
    """The writer process could not store rows (disk full, locked store, ...) or died."""


class RecordWriter:
    """The proxy's side: ``put`` from the event loop, ``flush`` / ``close`` from anywhere.

    The child creates or migrates the store at ``path``; a store it cannot open raises
    :class:`RecordWriterError` here, with the reason. Without a ``path`` it stores nothing and
    only judges (when configured to). ``on_verdicts`` receives, on the listener thread, each
    batch of ``[flow id, severity, sentence]`` the child judged.
    """

    def __init__(
        self,
        path: str | Path | None,
        on_verdicts: Callable[[list[list[str]]], None] | None = None,
        *,
        keep_query: bool = False,
        secret_headers: Sequence[str] = (),
    ) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "addons.record_writer",
             *([str(path), json.dumps([keep_query, list(secret_headers)])] if path is not None else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            # Signals to mitmproxy's process group (Ctrl-C, SIGTERM, even SIGKILL) must not
            # reach the child: it ends at EOF on its stdin, after the last rows are stored.
            start_new_session=True,
        )
        self._pending: deque[tuple[bytes, object]] = deque()  # (ROWS, row) / (SNAPSHOTS, snap)
        self._io = threading.Lock()  # one frame writer at a time (sender thread or flush)
        self._encode = msgspec.msgpack.Encoder().encode
        self._decode = msgspec.msgpack.Decoder().decode
        self._error: str | None = None
        self.sent = 0
        self.host_counters: dict[str, dict[str, int]] = {}  # the child judge's, as of the last flush
        #: the store's key and privacy settings (``Store.privacy_policy`` of what was asked)
        self.key, self.privacy = self._opened()
        self._on_verdicts = on_verdicts
        self._replies: queue.Queue[tuple[bytes, bytes] | None] = queue.Queue()
        self._listener = threading.Thread(target=self._listen, name="etagwatch-listener", daemon=True)
        self._listener.start()
        self._stop = threading.Event()
        self._sender = threading.Thread(target=self._run, name="etagwatch-sender", daemon=True)
        self._sender.start()

    def _opened(self) -> tuple[bytes | None, Privacy | None]:
        """The store's key and privacy settings (None without a store), from the child's first
        frame (or its reason for failing)."""
        try:
            frame = self._read(OPEN_TIMEOUT)
            if frame[0] != OPENED:
                raise OSError(f"unexpected first frame {frame[0]!r}")
            reply = self._decode(frame[1])
        except (OSError, TimeoutError) as exc:
            end_child(self._proc, timeout=5)
            raise RecordWriterError(f"the store writer process did not start ({exc})") from exc
        if reply[0] != "ok":
            end_child(self._proc, timeout=5)
            raise RecordWriterError(reply[1])
        privacy = msgspec.convert(reply[2], Privacy) if reply[2] is not None else None
        return reply[1], privacy

    def put(self, exchange: Exchange) -> None:
        """Queue one finished record; never blocks (a deque append)."""
        if self._error is not None:
            raise RecordWriterError(self._error)
        self._pending.append((ROWS, msgspec.structs.astuple(exchange)))

    def put_snapshot(self, snapshot: Snapshot) -> None:
        """Queue one flow snapshot, made into a record by the child (after ``configure``)."""
        if self._error is not None:
            raise RecordWriterError(self._error)
        self._pending.append((SNAPSHOTS, snapshot))

    def configure(self, config: RecordConfig) -> None:
        """How the child builds records from the snapshots queued from now on."""
        with self._io:
            self._send_pending()
            self._send(CONFIG, self._encode(config))

    def _run(self) -> None:
        while not self._stop.wait(SEND_INTERVAL):
            if self._pending:
                with self._io:
                    self._send_pending()
            if self._error is not None:
                return

    def _send_pending(self) -> None:
        """Ship what waits, one frame per run of the same kind (call with ``_io`` held)."""
        pending = self._pending
        items = [pending.popleft() for _ in range(len(pending))]
        start = 0
        for end in range(1, len(items) + 1):
            if end == len(items) or items[end][0] != items[start][0]:
                self._send(items[start][0], self._encode([item for _, item in items[start:end]]))
                self.sent += end - start
                start = end

    def _send(self, kind: bytes, payload: bytes) -> None:
        if self._error is not None:
            return
        try:
            write_frame(self._proc.stdin, kind, payload)  # type: ignore[arg-type]
        except (OSError, ValueError) as exc:
            self._error = f"the store writer process died ({exc})"

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every row put so far is committed; raises RecordWriterError on failure."""
        with self._io:
            self._send_pending()
            if self._error is None:
                try:
                    write_frame(self._proc.stdin, SYNC)  # type: ignore[arg-type]
                    reply = self._reply(timeout)
                except (OSError, ValueError) as exc:
                    self._error = f"the store writer process died ({exc})"
                else:
                    if reply[0] != "ok":
                        self._error = f"the store writer failed: {reply[1]}"
        if self._error is not None:
            raise RecordWriterError(self._error)

    def _reply(self, timeout: float | None) -> list:
        try:
            frame = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("store writer did not answer in time") from None
        if frame is None:
            self._replies.put(None)  # for the next caller too
            raise OSError(f"exit status {self._proc.poll()}")
        reply = self._decode(frame[1])
        if reply[0] == "ok" and len(reply) > 2:
            self.host_counters = reply[2]
        return reply

    def _listen(self) -> None:
        """The child's frames after the first: verdicts to ``on_verdicts``, replies to flush."""
        stdout = self._proc.stdout
        assert stdout is not None
        try:
            while (frame := read_frame(stdout)) is not None:  # type: ignore[arg-type]
                if frame[0] != VERDICTS:
                    self._replies.put(frame)
                elif self._on_verdicts is not None:
                    try:
                        self._on_verdicts(self._decode(frame[1]))
                    except Exception as exc:  # a bad consumer never stops the replies
                        report("record_writer.verdicts", exc)
        except (OSError, ValueError):
            pass  # closed by close(): the child has ended
        self._replies.put(None)

    def _read(self, timeout: float | None) -> tuple[bytes, bytes]:
        """The child's first frame; OSError when it ended, TimeoutError when it is silent."""
        stdout = self._proc.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout)
        if not ready:
            raise TimeoutError("store writer did not answer in time")
        frame = read_frame(stdout)  # type: ignore[arg-type]
        if frame is None:
            raise OSError(f"exit status {self._proc.poll()}")
        return frame

    def close(self) -> None:
        """Send what waits, let the child commit it and wait for the child to end."""
        self._stop.set()
        self._sender.join()
        try:
            self.flush(timeout=60)
        finally:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()  # type: ignore[union-attr]  # the child stores the rest and ends
            self._listener.join(timeout=60)  # it reads until the child's end
            if self._listener.is_alive():  # a stuck child: closing its stdout would wait for it
                self._proc.kill()
                self._listener.join()
            end_child(self._proc, timeout=60)

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Rows:
    """The child's side: snapshots to rows; a snapshot that cannot become a row is skipped
    and reported on stderr (once per kind of failure), the rest of its frame is stored."""

    def __init__(self) -> None:
        self.config: RecordConfig | None = None
        self.decode_rows = msgspec.msgpack.Decoder().decode
        self.decode_snapshots = msgspec.msgpack.Decoder(list[Snapshot]).decode
        self.decode_config = msgspec.msgpack.Decoder(RecordConfig).decode
        self.failures: dict[str, int] = {}
        self.judge: WriterJudge | None = None  # set while the configuration asks for verdicts
        self.raw_config: RecordConfig | None = None  # the configuration without redaction

    def rows(self, kind: bytes, payload: bytes) -> list:
        if kind == ROWS:
            return self.decode_rows(payload)
        if self.config is None:
            raise ValueError("flow snapshots came before the record configuration")
        rows = []
        judge = self.judge
        for snap in self.decode_snapshots(payload):
            try:
                row = to_row(snap, self.config)
            except Exception as exc:  # one odd flow never costs the others their rows
                self.fail("record", snap, exc)
                continue
            rows.append(row)
            if judge is not None:
                try:  # judged on the validators as sent (see flow_snapshot.light_exchange)
                    judge.observe(snap, to_row(snap, self.raw_config) if self.config.redact_validators else row)
                except Exception as exc:  # nor its verdicts: it is stored all the same
                    self.fail("judge", snap, exc)
        return rows

    def fail(self, what: str, snap: Snapshot, exc: Exception) -> None:
        kind = f"{type(exc).__name__} ({what})"
        self.failures[kind] = self.failures.get(kind, 0) + 1
        if self.failures[kind] == 1:
            print(f"etagwatch: could not {what} {snap.method} {snap.url} ({type(exc).__name__}: {exc}); "
                  f"further such failures are counted, not shown", file=sys.stderr, flush=True)


def serve(path: str | None, src: BinaryIO, out: BinaryIO, asked: str = "[false, []]") -> None:
    """The child's loop: turn each frame into rows, insert and commit them (without a
    ``path``: judge them only), answer syncs, stop at EOF.

    After a failure the rows up to the next sync are dropped and the sync answers with the
    error, so the proxy reports it instead of blocking.
    """
    from analysis.store import INSERT_SQL, Store, connect, execute_rows

    encode = msgspec.msgpack.Encoder().encode
    key = privacy = None
    if path is not None:
        try:
            with Store(path) as store:  # creates or migrates it
                key = store.key
                keep_query, parts = json.loads(asked)
                privacy = msgspec.structs.asdict(store.privacy_policy(keep_query, parts))
        except Exception as exc:  # answered, never a silent death: the proxy reports it
            write_frame(out, OPENED, encode(["error", str(exc)]))
            return
    write_frame(out, OPENED, encode(["ok", key, privacy]))
    out_lock = threading.Lock()  # the frame loop answers syncs, the judge's thread sends verdicts
    gone = False  # the proxy stopped reading: keep storing what arrived, send nothing more

    def send(kind: bytes, message: object) -> None:
        nonlocal gone
        with out_lock:
            if not gone:
                try:
                    write_frame(out, kind, encode(message))
                except (OSError, ValueError):  # a killed proxy: its rows must still be stored
                    gone = True

    builder = _Rows()
    conn = connect(path) if path is not None else None
    stored = 0
    error: str | None = None
    try:
        while (frame := read_frame(src)) is not None:
            kind, payload = frame
            if kind == SYNC:
                counters = builder.judge.host_counters() if builder.judge is not None else {}
                send(SYNC, ["ok", stored, counters] if error is None else ["error", error])
                error = None
            elif kind == CONFIG:
                builder.config = builder.decode_config(payload)
                builder.raw_config = msgspec.structs.replace(builder.config, redact_validators=False)
                if builder.config.judge and builder.judge is None:
                    builder.judge = WriterJudge(partial(send, VERDICTS), detector=resource_detector)
                elif not builder.config.judge and builder.judge is not None:
                    builder.judge.close()
                    builder.judge = None
            elif error is None:
                try:
                    rows = builder.rows(kind, payload)
                    if conn is not None:
                        with conn:
                            execute_rows(conn, INSERT_SQL, rows)
                        stored += len(rows)
                    if builder.judge is not None:  # verdicts after the rows are safe
                        builder.judge.send_pending()
                except (sqlite3.Error, ValueError, msgspec.DecodeError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
    finally:
        if builder.judge is not None:
            builder.judge.close()
        if conn is not None:
            conn.close()


if __name__ == "__main__":
    # A Ctrl-C or SIGTERM meant for the proxy must not cut the last rows short: the child
    # ends when its stdin closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(BrokenPipeError):
        serve(sys.argv[1] if len(sys.argv) > 1 else None, sys.stdin.buffer, sys.stdout.buffer,
              *sys.argv[2:3])
