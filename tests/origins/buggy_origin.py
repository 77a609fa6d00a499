"""A small origin with switchable, deliberate RFC 9110 conformance bugs, for `etagwatch probe`.

With no bugs switched on it evaluates preconditions the way RFC 9110 13.2.2 says, written out by
hand here (not through analysis.conditional) so the probe's expectations are checked against an
independent implementation. Each bug is one flag:

- ignore-inm:      If-None-Match is ignored (always 200).
- no-etag-304:     304 responses leave out the ETag a 200 would carry.
- weak-if-match:   If-Match compares weakly, so W/"x" is accepted for "x".
- same-etag-gzip:  the gzip representation carries the identity representation's strong ETag.
- reflect-inm:     any If-None-Match gets a 304 that echoes it as the ETag (evercookie's backend).
- random-etag:     every 200 carries a new random ETag (with reflect-inm: an ETag tracker).
- churn:           two "backends" with different ETags for the same bytes, answering in turn.

Run it by hand: python tests/origins/buggy_origin.py --port 8080 --bug ignore-inm
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gzip
import hashlib
import ipaddress
import itertools
import re
import secrets
import ssl
import tempfile
import threading
from collections.abc import Iterator
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BUGS = frozenset(
    {
        "ignore-inm",
        "no-etag-304",
        "weak-if-match",
        "same-etag-gzip",
        "reflect-inm",
        "random-etag",
        "churn",
    }
)
BODY = b"".join(b"line %04d of a resource worth caching\n" % i for i in range(200))
LAST_MODIFIED = 1_700_000_000  # 2023-11-14T22:13:20Z
TAG = hashlib.sha256(BODY).hexdigest()[:16]


def _http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def _tags(field: str) -> list[str]:
    """Members of an If-Match / If-None-Match list, as sent ('*' stays '*')."""
    return re.findall(r'\*|(?:W/)?"[^"]*"', field)


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


class BuggyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: BuggyServer

    def log_message(self, format: str, *args: object) -> None:  # quiet in tests
        pass

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def do_GET(self) -> None:
        self._respond(head=False)

    def _etag(self, gzipped: bool) -> str:
        bugs = self.server.bugs
        if "random-etag" in bugs:
            return f'"{secrets.token_hex(8)}"'
        base = TAG
        if "churn" in bugs:
            base = f"{next(self.server.turn)}-{TAG}"
        if gzipped and "same-etag-gzip" not in bugs:
            base += "-gzip"
        return f'"{base}"'

    def _respond(self, *, head: bool) -> None:
        bugs = self.server.bugs
        if self.path == "/redirect":
            return self._send(301, [("Location", "/resource.txt")], b"moved\n", head)
        if self.path == "/missing":
            return self._send(404, [("Content-Type", "text/plain")], b"not found\n", head)
        self.server.requests.append([(k.lower(), v) for k, v in self.headers.items()])
        gzipped = "gzip" in (self.headers.get("Accept-Encoding") or "").lower()
        body = gzip.compress(BODY, mtime=0) if gzipped else BODY
        etag = self._etag(gzipped)
        headers = [
            ("ETag", etag),
            ("Last-Modified", _http_date(LAST_MODIFIED)),
            ("Vary", "Accept-Encoding"),
            ("Cache-Control", "max-age=0, must-revalidate"),
            ("Content-Type", "text/plain"),
        ]
        if gzipped:
            headers.append(("Content-Encoding", "gzip"))
        if "Cookie" not in self.headers:  # a client that kept this would identify itself
            headers.append(("Set-Cookie", f"session={secrets.token_hex(8)}; Path=/"))

        if_match = self.headers.get("If-Match")
        if if_match is not None:
            members = _tags(if_match)
            if "weak-if-match" in bugs:
                ok = "*" in members or any(_opaque(m) == _opaque(etag) for m in members)
            else:
                ok = "*" in members or (not etag.startswith("W/") and etag in members)
            if not ok:
                return self._send(412, [("ETag", etag)], b"precondition failed\n", head)

        inm = self.headers.get("If-None-Match")
        if inm is not None and "reflect-inm" in bugs:
            return self._send(304, [("ETag", inm), *headers[2:4]], b"", head)
        if inm is not None and "ignore-inm" not in bugs:
            members = _tags(inm)
            if "*" in members or any(_opaque(m) == _opaque(etag) for m in members):
                return self._not_modified(headers, head)
        ims = self.headers.get("If-Modified-Since")
        if inm is None and ims is not None:
            with contextlib.suppress(TypeError, ValueError, IndexError):
                if parsedate_to_datetime(ims).timestamp() >= LAST_MODIFIED:
                    return self._not_modified(headers, head)

        rng = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if_range = self.headers.get("If-Range")
        if rng and if_range is not None:
            strong = not etag.startswith("W/")
            if if_range.startswith('"') or if_range.startswith("W/"):
                rng = rng if strong and if_range == etag else None
            else:
                rng = rng if if_range == _http_date(LAST_MODIFIED) else None
        if rng:
            first = int(rng.group(1))
            last = min(int(rng.group(2) or len(body) - 1), len(body) - 1)
            if first < len(body):
                part = [("Content-Range", f"bytes {first}-{last}/{len(body)}")]
                return self._send(206, headers + part, body[first : last + 1], head)
        self._send(200, [*headers, ("Accept-Ranges", "bytes")], body, head)

    def _not_modified(self, headers: list[tuple[str, str]], head: bool) -> None:
        keep = {"ETag", "Vary", "Cache-Control", "Last-Modified"}
        if "no-etag-304" in self.server.bugs:
            keep.discard("ETag")
        self._send(304, [(k, v) for k, v in headers if k in keep], b"", head)

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, head: bool) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and status != 304:
            self.wfile.write(body)


class BuggyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], bugs: frozenset[str]) -> None:
        unknown = set(bugs) - BUGS
        if unknown:
            raise ValueError(f"unknown bugs: {', '.join(sorted(unknown))}")
        self.bugs = frozenset(bugs)
        self.turn = itertools.cycle(["a", "b"])
        self.requests: list[list[tuple[str, str]]] = []  # request headers, for the tests
        super().__init__(address, BuggyHandler)


class Origin(str):
    """The resource URL (a str), with ``base`` (scheme://host:port) and the running server."""

    server: BuggyServer
    base: str

    def __new__(cls, base: str, server: BuggyServer) -> Origin:
        url = super().__new__(cls, base + "/resource.txt")
        url.base, url.server = base, server
        return url


def self_signed_context(workdir: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1 (untrusted)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etagwatch test origin")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = workdir / "cert.pem", workdir / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


@contextlib.contextmanager
def serve(*bugs: str, host: str = "127.0.0.1", tls: bool = False) -> Iterator[Origin]:
    """Run the origin on a free loopback port; yields its resource URL and stops it afterwards.
    ``tls`` serves https with a self-signed (untrusted) certificate."""
    server = BuggyServer((host, 0), frozenset(bugs))
    if tls:
        with tempfile.TemporaryDirectory() as tmp:
            context = self_signed_context(Path(tmp))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        scheme = "https" if tls else "http"
        yield Origin(f"{scheme}://{host}:{server.server_address[1]}", server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--bug", action="append", default=[], choices=sorted(BUGS))
    args = parser.parse_args()
    server = BuggyServer(("127.0.0.1", args.port), frozenset(args.bug))
    print(f"http://127.0.0.1:{args.port}/resource.txt bugs: {', '.join(args.bug) or 'none'}")
    server.serve_forever()


if __name__ == "__main__":
    main()
