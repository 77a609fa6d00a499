"""The probe's HTTP side: fresh httpx clients and one request at a time, read to the last byte.

Each probe client is its own ``httpx.Client``: its own connections, a cookie jar that refuses
every cookie, no cache, no proxy from the environment (the probe sends its requests to the URL
given and nowhere else) and no redirect following (a redirect is reported, never followed).
The body is read raw (as sent on the wire, content-coded) because a strong ETag promises
byte-identical *representations*: gzip and identity bytes must not share one.
"""

from __future__ import annotations

import http.cookiejar
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
from mitmproxy.net import encoding

from analysis import __version__
from analysis.probe.errors import ProbeError, describe

USER_AGENT = f"etagwatch-probe/{__version__}"
#: One fixed Accept-Encoding for every request except the gzip/identity comparison, so every
#: response is the same representation unless a check asks for another one on purpose.
DEFAULT_ACCEPT_ENCODING = "gzip"
#: Bodies larger than this end the probe with a clear message instead of filling memory.
MAX_BODY = 64 * 1024 * 1024


class _RefuseCookies(http.cookiejar.DefaultCookiePolicy):
    """A fresh client stays fresh: Set-Cookie is never stored, so no cookie identifies it."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:  # type: ignore[override]
        return False


@dataclass(frozen=True)
class SentRequest:
    """What a probe request carried (header names as sent)."""

    method: str
    url: str
    headers: list[tuple[str, str]]


@dataclass(frozen=True)
class ProbeResponse:
    """One response read completely: raw wire bytes and the decoded body."""

    request: SentRequest
    status: int
    reason: str
    http_version: str
    headers: list[tuple[str, str]]
    raw: bytes  # body as sent (content-coded)
    content: bytes | None  # body after content decoding; None when it could not be decoded
    started: float  # epoch seconds
    ended: float
    server_addr: tuple[str, int] | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """All fields of one header joined by ', ' (RFC 9110 5.3), or None."""
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None

    def header_count(self, name: str) -> int:
        return sum(1 for k, _ in self.headers if k.lower() == name.lower())


def tls_context(insecure: bool = False, ca_file: str | None = None) -> ssl.SSLContext | bool:
    """What ``new_client`` verifies TLS with: the default CA bundle, plus ``ca_file`` (a
    private CA such as the lab's); building it takes about 0.1 s, so a caller making many
    clients builds it once and passes it on."""
    if insecure:
        return False
    context = httpx.create_ssl_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ProbeError(f"--cacert {ca_file}: not a readable PEM certificate ({exc})") from exc
    return context


def new_client(
    *, timeout: float, insecure: bool = False, headers: Sequence[tuple[str, str]] = (),
    verify: ssl.SSLContext | bool | None = None,
) -> httpx.Client:
    """A fresh client: new connection pool, no cookies kept, no env proxies, no redirects
    (``verify``: a ``tls_context`` to reuse; by default one is built for this client)."""
    base = httpx.Headers({"User-Agent": USER_AGENT, "Accept": "*/*"})
    base["Accept-Encoding"] = DEFAULT_ACCEPT_ENCODING
    for name, value in headers:
        base[name] = value
    return httpx.Client(
        headers=base,
        # a bare CookieJar: httpx copies a Cookies object into a jar with the default policy
        cookies=http.cookiejar.CookieJar(policy=_RefuseCookies()),
        verify=(not insecure) if verify is None else verify,
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        http1=True,
        http2=False,
    )


def fetch(
    client: httpx.Client, method: str, url: str, headers: dict[str, str] | None = None
) -> ProbeResponse:
    """Send one request and read the whole response; network failures become ProbeError."""
    request = client.build_request(method, url, headers=headers)
    started = time.time()
    try:
        response = client.send(request, stream=True)
        try:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_raw():
                size += len(chunk)
                if size > MAX_BODY:
                    raise ProbeError(
                        f"{url}: response body larger than {MAX_BODY // (1024 * 1024)} MiB"
                    )
                chunks.append(chunk)
        finally:
            response.close()
    except httpx.HTTPError as exc:
        raise ProbeError(describe(exc, url, client.timeout.read)) from exc
    raw = b"".join(chunks)
    return ProbeResponse(
        request=SentRequest(method, url, [(k, v) for k, v in request.headers.multi_items()]),
        status=response.status_code,
        reason=response.reason_phrase,
        http_version=response.http_version,
        headers=[(k, v) for k, v in response.headers.multi_items()],
        raw=raw,
        content=_decode(raw, response.headers.get("content-encoding")),
        started=started,
        ended=time.time(),
        server_addr=_server_addr(response),
    )


def _decode(raw: bytes, content_encoding: str | None) -> bytes | None:
    """Undo Content-Encoding with mitmproxy's decoders (gzip, deflate, br, zstd)."""
    if not content_encoding or content_encoding.strip().lower() == "identity":
        return raw
    try:
        data = raw
        for coding in reversed([c.strip().lower() for c in content_encoding.split(",")]):
            if coding and coding != "identity":
                data = encoding.decode(data, coding)
        return data
    except (ValueError, TypeError):
        return None


def _server_addr(response: httpx.Response) -> tuple[str, int] | None:
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    try:
        addr = stream.get_extra_info("server_addr")
    except Exception:  # pragma: no cover - depends on the transport
        return None
    return (str(addr[0]), int(addr[1])) if addr else None
