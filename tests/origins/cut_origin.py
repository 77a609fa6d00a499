"""An origin that hangs up in the middle of its answers, written on a raw socket (no HTTP library
would send a broken response on purpose). Paths:

- /whole:        200 with Content-Length: 1000 and all 1000 bytes (the control).
- /cut-length:   200 with Content-Length: 1000, then 100 bytes, then the connection closes.
- /cut-chunked:  200, chunked: one whole 100-byte chunk, then 30 bytes of the next, then closes.
- /cut-headers:  half a status line, then closes (no response at all).
- /stall:        the /cut-length answer without the close: waits until the origin stops.
- /silent:       reads the request, answers nothing, waits until the origin stops.
"""

from __future__ import annotations

import contextlib
import socketserver
import threading
from collections.abc import Iterator

ETAG = '"cut-1"'
BODY = bytes(range(256)) * 4  # 1024 bytes; the answers send slices of it
_HEAD = (
    "HTTP/1.1 200 OK\r\n"
    f"ETag: {ETAG}\r\n"
    "Content-Type: application/octet-stream\r\n"
    "X-Backend: cut-origin\r\n"
)

ANSWERS: dict[str, bytes] = {
    "/whole": f"{_HEAD}Content-Length: 1000\r\n\r\n".encode() + BODY[:1000],
    "/cut-length": f"{_HEAD}Content-Length: 1000\r\n\r\n".encode() + BODY[:100],
    "/cut-chunked": f"{_HEAD}Transfer-Encoding: chunked\r\n\r\n".encode()
    + b"64\r\n" + BODY[:100] + b"\r\n"
    + b"64\r\n" + BODY[100:130],
    "/cut-headers": b"HTTP/1.1 20",
}
STALLED = {"/stall": ANSWERS["/cut-length"], "/silent": b""}


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:  # the whole request (GETs only): nothing unread at close
            data = self.request.recv(65536)
            if not data:
                return
            head += data
        path = head.split(b" ", 2)[1].decode("ascii", "replace").split("?", 1)[0]
        if path in STALLED:
            self.wfile.write(STALLED[path])
            self.wfile.flush()
            origin: CutOrigin = self.server  # type: ignore[assignment]
            origin.stalled.release()
            origin.stopping.wait(60)
            return
        self.wfile.write(ANSWERS.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
        self.wfile.flush()
        # returning closes the connection: a FIN after the last byte, as a crashed backend's
        # kernel would send


class CutOrigin(socketserver.ThreadingTCPServer):
    """The origin; ``stalled`` is released once per stalled answer begun."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.stopping = threading.Event()  # set when the origin stops: ends the stalled answers
        self.stalled = threading.Semaphore(0)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


@contextlib.contextmanager
def serve(host: str = "127.0.0.1") -> Iterator[CutOrigin]:
    """Run the origin on a free loopback port (``.url`` is its base URL)."""
    with CutOrigin((host, 0)) as server:
        thread = threading.Thread(target=server.serve_forever, name="cut-origin", daemon=True)
        thread.start()
        try:
            yield server
        finally:
            server.stopping.set()
            server.shutdown()
            thread.join(timeout=5)
