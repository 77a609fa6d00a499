"""One-line messages for everything that can go wrong on the way to the server.

httpx wraps the socket, TLS and parser errors; the user needs to know which of them happened
(timeout, DNS, TLS, refused, not HTTP) and what to do, not a traceback.
"""

from __future__ import annotations

import socket
import ssl

import httpx


class ProbeError(Exception):
    """The probe cannot go on; the message is one line meant for the user (exit status 2)."""


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def describe(exc: httpx.HTTPError, url: str, timeout: float | None = None) -> str:
    """Say in one line why a request to ``url`` got no HTTP response."""
    causes = _causes(exc)
    limit = f" after {timeout:g} s" if timeout else ""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"{url}: timed out{limit} while connecting"
    if isinstance(exc, httpx.TimeoutException):
        return f"{url}: timed out{limit} waiting for the response"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return f"{url}: not an http:// or https:// URL"
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (
                f"{url}: TLS certificate not trusted ({cause.verify_message}); "
                "use --insecure to probe anyway"
            )
    for cause in causes:
        if isinstance(cause, ssl.SSLError):
            reason = cause.reason or str(cause)
            return f"{url}: TLS handshake failed ({reason}); is the server speaking TLS?"
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return f"{url}: cannot resolve host name ({cause.strerror or cause})"
        if isinstance(cause, ConnectionRefusedError):
            return f"{url}: connection refused (nothing listening on that port?)"
        if isinstance(cause, ConnectionResetError):
            return f"{url}: connection reset by the server"
    if isinstance(exc, httpx.RemoteProtocolError):
        detail = str(exc).splitlines()[0] if str(exc) else "malformed response"
        return f"{url}: the server did not answer with HTTP ({detail})"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Name or service not known" in text or "nodename" in text:
            return f"{url}: cannot resolve host name ({text})"
        if "Connection refused" in text:
            return f"{url}: connection refused (nothing listening on that port?)"
        return f"{url}: cannot connect ({text})"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{url}: request failed ({text})"
