"""A loopback origin that counts every TCP connection and HTTP request it gets, so a test can
prove that nothing reached it (a hermetic replay) or that something did (passthrough).

Paths: /doc (ETag and Last-Modified, revalidations get 304) and /other (a plain 200).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ETAG = '"doc-1"'
LAST_MODIFIED = "Tue, 14 Nov 2023 22:13:20 GMT"
BODY = b"the recorded document\n"


class CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.connections = 0
        self.requests: list[str] = []  # "METHOD path" in arrival order
        self.lock = threading.Lock()

    def verify_request(self, request, client_address) -> bool:  # type: ignore[no-untyped-def]
        with self.lock:
            self.connections += 1
        return True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: CountingServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests.append(f"{self.command} {self.path}")
        if self.path == "/doc" and self.headers.get("If-None-Match") == ETAG:
            self.send_response(304)
            self.send_header("ETag", ETAG)
            self.end_headers()
            return
        self.send_response(200)
        if self.path == "/doc":
            self.send_header("ETag", ETAG)
            self.send_header("Last-Modified", LAST_MODIFIED)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(BODY)

    do_HEAD = do_GET


@contextlib.contextmanager
def serve() -> Iterator[CountingServer]:
    server = CountingServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
