"""The probe's HTTP side against real loopback servers: fresh clients, raw bodies, and a clear
one-line message for every way a request can fail."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from origins.buggy_origin import serve

from analysis.probe.client import fetch, new_client
from analysis.probe.errors import ProbeError


@pytest.fixture
def raw_server() -> Iterator[callable]:
    """Loopback TCP servers that answer every connection with fixed bytes (or nothing)."""
    sockets: list[socket.socket] = []

    def start(reply: bytes | None) -> str:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        sockets.append(srv)

        def loop() -> None:
            held = []
            while True:
                try:
                    conn, _ = srv.accept()
                except OSError:
                    break
                conn.recv(65536)
                if reply is None:  # keep the connection open, never answer
                    held.append(conn)
                    continue
                conn.sendall(reply)
                conn.close()
            for c in held:
                c.close()

        threading.Thread(target=loop, daemon=True).start()
        return f"http://127.0.0.1:{srv.getsockname()[1]}/x"

    yield start
    for s in sockets:
        s.close()


def _error(url: str, *, timeout: float = 5.0, insecure: bool = False) -> str:
    with new_client(timeout=timeout, insecure=insecure) as client, pytest.raises(ProbeError) as exc:
        fetch(client, "GET", url)
    message = str(exc.value)
    assert "\n" not in message and url in message
    return message


def test_connection_refused_is_named() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nobody listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert "connection refused" in _error(f"http://127.0.0.1:{port}/")


def test_non_http_answer_is_named(raw_server) -> None:
    url = raw_server(b"SSH-2.0-OpenSSH_9.6\r\nprotocol mismatch\r\n")
    assert "did not answer with HTTP" in _error(url)


def test_timeout_is_named_with_its_limit(raw_server) -> None:
    url = raw_server(None)
    assert "timed out after 0.3 s" in _error(url, timeout=0.3)


def test_tls_to_a_plain_http_port_is_named() -> None:
    with serve() as origin:
        url = origin.base.replace("http://", "https://") + "/resource.txt"
        assert "TLS handshake failed" in _error(url)


def test_untrusted_certificate_points_to_insecure_and_insecure_works() -> None:
    with serve(tls=True) as url:
        assert "--insecure" in _error(url)
        with new_client(timeout=5, insecure=True) as client:
            response = fetch(client, "GET", url)
        assert response.status == 200 and response.header("etag")


def test_unsupported_scheme() -> None:
    assert "not an http:// or https:// URL" in _error("ftp://127.0.0.1/x")


def test_raw_bytes_are_kept_and_decoded_separately() -> None:
    with serve() as url, new_client(timeout=5) as client:
        gz = fetch(client, "GET", url, {"Accept-Encoding": "gzip"})
        plain = fetch(client, "GET", url, {"Accept-Encoding": "identity"})
    assert gz.header("content-encoding") == "gzip"
    assert gz.raw[:2] == b"\x1f\x8b" and gz.raw != plain.raw
    assert gz.content == plain.content == plain.raw
    assert gz.server_addr is not None and gz.server_addr[0] == "127.0.0.1"


def test_clients_refuse_cookies_and_never_follow_redirects() -> None:
    with serve() as url, new_client(timeout=5) as client:
        first = fetch(client, "GET", url)
        fetch(client, "GET", url)
        moved = fetch(client, "GET", url.base + "/redirect")
        sent = url.server.requests
    assert first.header("set-cookie")  # the origin tried to set one
    assert len(sent) == 2 and all(name != "cookie" for h in sent for name, _ in h)
    assert moved.status == 301  # reported, not followed


def test_extra_headers_are_sent_on_every_request() -> None:
    with serve() as url, new_client(timeout=5, headers=[("X-Probe-Test", "yes")]) as client:
        fetch(client, "GET", url)
        fetch(client, "HEAD", url)
        sent = url.server.requests
    assert all(("x-probe-test", "yes") in h for h in sent)
    assert all(("accept-encoding", "gzip") in h for h in sent)
