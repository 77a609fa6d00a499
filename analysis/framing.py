"""Length-prefixed frames over a pipe, shared by the two store-writer child processes
(``analysis.writer_process`` for ingest, ``addons.record_writer`` for the live proxy)."""

from __future__ import annotations

import contextlib
import struct
import subprocess
from typing import BinaryIO

#: A frame: payload length (8 bytes, little-endian), one kind byte, then the payload.
HEADER = struct.Struct("<QB")


def write_frame(out: BinaryIO, kind: bytes, payload: bytes = b"") -> None:
    """Write one frame and flush it."""
    out.write(HEADER.pack(len(payload), kind[0]) + payload)
    out.flush()


def read_frame(src: BinaryIO) -> tuple[bytes, bytes] | None:
    """The next (kind, payload), or None at the end of the stream or on a cut-off frame."""
    head = src.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    size, kind = HEADER.unpack(head)
    payload = src.read(size)
    if len(payload) < size:
        return None
    return bytes([kind]), payload


def end_child(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Close the child's pipes (its end of input: it stores what it got and exits), wait up
    to ``timeout`` seconds, then kill it: a child stuck on a lock is never left behind."""
    for stream in (proc.stdin, proc.stdout):
        with contextlib.suppress(OSError):
            if stream is not None:
                stream.close()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
