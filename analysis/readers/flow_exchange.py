"""mitmproxy HTTP flow -> exchange record, shared by the flow-file reader and the live addon."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from analysis.exchange import DEFAULT_BACKEND_HEADERS, Exchange
from analysis.headers import Headers, normalise
from analysis.privacy import DEFAULT_PRIVACY, Privacy
from analysis.readers.record import build_exchange

if TYPE_CHECKING:  # mitmproxy is only needed by whoever hands us a flow
    from mitmproxy import http


def decode_header(raw: bytes) -> str:
    """Header bytes as text; undecodable bytes become visible escapes (SQLite needs valid text)."""
    return raw.decode("utf-8", "backslashreplace")


def header_fields(fields: Sequence[Sequence[bytes]], authority: str | None = None) -> Headers:
    """mitmproxy's raw (name, value) lines as the record's normalised header list."""
    pairs = [(decode_header(k), decode_header(v)) for k, v in fields]
    if authority:
        pairs.append((":authority", authority))
    return normalise(pairs)[0]


def exchange_from_flow(
    flow: http.HTTPFlow,
    *,
    client: str,
    source: str,
    source_kind: str = "live",
    key: bytes,
    entry_index: int | None = None,
    backend_headers: Sequence[str] = DEFAULT_BACKEND_HEADERS,
    redact_validators: bool = False,
    privacy: Privacy = DEFAULT_PRIVACY,
) -> Exchange:
    """The exchange record of one HTTP flow (with or without a response).

    The body is hashed from ``get_content(strict=False)`` (decoded when the Content-Encoding
    is known), ``body_size`` is the raw (encoded) length as transferred.
    """
    req = flow.request
    resp = flow.response
    body: bytes | None = None
    body_size: int | None = None
    if resp is not None and resp.raw_content is not None:
        body_size = len(resp.raw_content)
        body = resp.get_content(strict=False)
    peer = flow.server_conn.peername if flow.server_conn else None
    return build_exchange(
        source=source,
        source_kind=source_kind,
        client=client,
        key=key,
        entry_index=entry_index,
        flow_id=flow.id,
        started=req.timestamp_start,
        method=req.method,
        url=req.pretty_url,
        http_version=req.http_version,
        req_headers=header_fields(req.headers.fields, req.authority or None),
        resp_headers=header_fields(resp.headers.fields) if resp is not None else [],
        status=resp.status_code if resp is not None else None,
        error=flow.error.msg if flow.error else None,
        body=body,
        encoded_body=resp.raw_content if resp is not None else None,
        body_size=body_size,
        server_ip=peer[0] if peer else None,
        backend_headers=backend_headers,
        redact_validators=redact_validators,
        privacy=privacy,
    )
