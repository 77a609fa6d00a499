"""A threaded stdlib HTTP/1.1 server on a loopback port, as a context manager.

Each origin subclasses :class:`LabHandler` for its one behaviour; :class:`PyOrigin` owns the
listening socket and the serving thread and always closes both.
"""

from __future__ import annotations

import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar, Self

from analysis.lab.net import StartStop

#: The smallest transparent GIF (43 bytes): what tracking pixels carry.
PIXEL_GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


def http_date(ts: float) -> str:
    """IMF-fixdate, as RFC 9110 5.6.7 prescribes."""
    return formatdate(ts, usegmt=True)


def if_none_match_tags(value: str | None) -> list[str]:
    """Opaque tags listed in If-None-Match (quotes and W/ removed; '*' kept as '*')."""
    if not value:
        return []
    tags = []
    for item in value.split(","):
        item = item.strip()
        if item[:2] in ("W/", "w/"):
            item = item[2:]
        tags.append(item.strip('"'))
    return [t for t in tags if t]


class LabHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 handler with a quiet log and one helper to answer."""

    protocol_version = "HTTP/1.1"
    server_version = "etagwatch-lab"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the lab runs inside tests and under `etagwatch lab`."""

    @property
    def origin(self) -> PyOrigin:
        return self.server.origin  # type: ignore[attr-defined]

    def answer(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        """Send a complete response; a 304 carries no body and no Content-Length."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304 and self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self.answer(404, {"Content-Type": "text/plain"}, b"not found\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class PyOrigin(StartStop):
    """One Python origin: binds ``host`` on a free port at start, serves from a thread."""

    kind: ClassVar[str] = "python"
    handler: ClassVar[type[LabHandler]] = LabHandler

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, name: str = "") -> None:
        self.host = host
        self.port = port
        self.name = name or self.kind
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> Self:
        server = _Server((self.host, self.port), self.handler)
        server.origin = self  # type: ignore[attr-defined]
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"lab-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
