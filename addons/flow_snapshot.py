"""What the proxy's event loop takes from a flow, so the exchange record can be built elsewhere.

Building the full record (``exchange_from_flow``: every header decoded, normalised, JSON-encoded,
cookies hashed, sites looked up) was most of what etagwatch cost each flow on mitmproxy's event
loop. The loop now keeps only references and a few cheap facts (:func:`take`); the store's
writer process turns the snapshot into the row (:func:`to_row`), and the live checks read a
*light* record with just the fields they need (:func:`light_exchange`). ``to_row`` gives exactly
the row of ``analysis.readers.flow_exchange.exchange_from_flow`` (tests compare them on real
flows), so the store cannot tell the two paths apart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from operator import itemgetter
from typing import TYPE_CHECKING

import msgspec

from analysis.digests import digest_match
from analysis.etag import parse_etag
from analysis.exchange import COLUMNS, DEFAULT_BACKEND_HEADERS, REQUEST_FIELDS, Exchange, from_row
from analysis.privacy import DEFAULT_PRIVACY, Privacy, sanitise_url
from analysis.readers.flow_exchange import decode_header, header_fields
from analysis.readers.record import build_row
from analysis.urlparts import split_url

if TYPE_CHECKING:  # the writer process builds rows without importing mitmproxy
    from mitmproxy import http

Fields = Sequence[Sequence[bytes]]  # mitmproxy's raw (name, value) header lines
_CONTENT_HASH = COLUMNS.index("content_hash")


class Snapshot(msgspec.Struct, array_like=True, gc=False, frozen=True):
    """One flow as the loop saw it: raw header lines (shared with the flow, not copied),
    the URL, and the body's digest (the body itself never leaves the proxy)."""

    flow_id: str
    client: str
    started: float | None
    method: str
    url: str
    http_version: str | None
    req_fields: Fields
    authority: str | None
    resp_fields: Fields | None
    status: int | None
    error: str | None
    body_size: int | None
    content_size: int | None
    content_hash: str | None
    server_ip: str | None
    etag_digest: str | None = None  # analysis.digests, tested while the body was here


class RecordConfig(msgspec.Struct, frozen=True):
    """How snapshots become records (the recorder's options and the store's key), and whether
    the writer process also judges them (``addons.live_judge``)."""

    source: str
    source_kind: str
    key: bytes
    backend_headers: tuple[str, ...] = DEFAULT_BACKEND_HEADERS
    redact_validators: bool = False
    judge: bool = False
    privacy: Privacy = DEFAULT_PRIVACY


def take(flow: http.HTTPFlow, client: str) -> Snapshot:
    """The snapshot of a flow, on the event loop: references and a body digest, nothing more."""
    req, resp = flow.request, flow.response
    body_size = content_size = content_hash = etag_digest = None
    if resp is not None and resp.raw_content is not None:
        body_size = len(resp.raw_content)
        if _lines(resp.headers.fields, b"content-encoding"):
            body = resp.get_content(strict=False)
        else:  # what get_content returns, without its header lookup
            body = resp.raw_content
        if body is not None:  # as exchange_from_flow: digest of the decoded body
            content_size = len(body)
            content_hash = hashlib.sha256(body).hexdigest()
            etags = _lines(resp.headers.fields, b"etag")
            if etags:  # while the body is here: is the ETag a digest of it? (build_row's test)
                raw = decode_header(etags[0]) if len(etags) == 1 else ", ".join(
                    decode_header(e) for e in etags)
                tag = parse_etag(raw.strip() if len(etags) == 1 else raw).tag
                if tag is not None:
                    etag_digest = digest_match(tag.opaque, body, resp.raw_content,
                                               sha256=content_hash)
    peer = flow.server_conn.peername if flow.server_conn else None
    return Snapshot(  # positional: the field order above (cheaper than keywords, per flow)
        flow.id,
        client,
        req.timestamp_start,
        req.method,
        pretty_url(req),
        req.http_version,
        req.headers.fields,
        req.authority or None,
        resp.headers.fields if resp is not None else None,
        resp.status_code if resp is not None else None,
        flow.error.msg if flow.error else None,
        body_size,
        content_size,
        content_hash,
        peer[0] if peer else None,
        etag_digest,
    )


_first = itemgetter(0)


def _lines(fields: Fields, name: bytes) -> tuple[bytes, ...]:
    """Values of the lines called ``name`` (lower-case; matched as mitmproxy's ``headers.get``
    matches), found with C-level string operations instead of a Python loop per line."""
    names = b"\0".join(map(_first, fields)).lower().split(b"\0")
    if len(names) != len(fields):  # a NUL inside a name: the slow, exact way
        return tuple(v for n, v in fields if n.lower() == name)
    count = names.count(name)
    if count == 0:
        return ()
    if count == 1:
        return (fields[names.index(name)][1],)
    return tuple(v for (_, v), low in zip(fields, names, strict=True) if low == name)


#: pretty_url by everything it depends on; cleared when full (a browser asks for the same
#: URLs over and over, and mitmproxy parses the Host header afresh on every call).
_URLS: dict[tuple, str] = {}
URL_MEMO_SIZE = 4096


def pretty_url(req: http.Request) -> str:
    """``req.pretty_url``, memoised on the request-line data and the Host lines it reads."""
    d = req.data
    hosts = _lines(d.headers.fields, b"host")
    key = (d.method, d.scheme, d.authority, d.host, d.port, d.path, d.http_version, hosts)
    url = _URLS.get(key)
    if url is None:
        if len(_URLS) >= URL_MEMO_SIZE:
            _URLS.clear()
        url = _URLS[key] = req.pretty_url
    return url


def to_row(snap: Snapshot, config: RecordConfig) -> tuple:
    """The store row of a snapshot: ``exchange_from_flow``'s record, field for field."""
    row = build_row(
        source=config.source,
        source_kind=config.source_kind,
        client=snap.client,
        key=config.key,
        entry_index=None,
        flow_id=snap.flow_id,
        started=snap.started,
        method=snap.method,
        url=snap.url,
        http_version=snap.http_version,
        req_headers=header_fields(snap.req_fields, snap.authority),
        resp_headers=header_fields(snap.resp_fields) if snap.resp_fields is not None else [],
        status=snap.status,
        error=snap.error,
        body=None,
        body_size=snap.body_size,
        content_size=snap.content_size,
        server_ip=snap.server_ip,
        backend_headers=config.backend_headers,
        redact_validators=config.redact_validators,
        etag_digest=snap.etag_digest,
        privacy=config.privacy,
    )
    if snap.content_hash is None:
        return row
    return (*row[:_CONTENT_HASH], snap.content_hash, *row[_CONTENT_HASH + 1 :])


def to_exchange(snap: Snapshot, config: RecordConfig) -> Exchange:
    """The full record of a snapshot (for detector re-runs; the store gets ``to_row``)."""
    return from_row(to_row(snap, config))


_LIGHT_REQUEST = {name.encode(): column for name, column in REQUEST_FIELDS.items()}
_LIGHT_RESPONSE = {b"etag": "etag", b"last-modified": "last_modified"}


def _pick(fields: Fields, wanted: dict[bytes, str]) -> dict[str, str]:
    """column -> combined value (repeated lines joined by ', ', as the record does)."""
    found: dict[str, str] = {}
    for name, value in fields:
        column = wanted.get(name.lower().strip())
        if column is not None:
            text = decode_header(value)
            found[column] = f"{found[column]}, {text}" if column in found else text
    return found


@lru_cache(maxsize=4096)
def _etag_violations(etag: str, count: int) -> str | None:
    """The record's ``etag_violations`` (as build_row words them), memoised per value."""
    found = list(parse_etag(etag.strip() if count == 1 else etag).violations)
    if count > 1:
        found.append(f"{count} ETag fields")
    return msgspec.json.encode(found).decode() if found else None


@lru_cache(maxsize=4096)
def _url_host(url: str) -> str | None:
    return split_url(url)[1]


def light_exchange(snap: Snapshot, config: RecordConfig) -> Exchange:
    """The record's fields the live checks and host counters read, cheaply, on the loop:
    request preconditions, status, ETag (with its syntax violations) and Last-Modified.
    The rest stays unset; ``to_exchange`` builds the full record when a detector needs it.
    Validators are as sent even with ``redact_validators``: that option keeps them out of the
    store, while the checks must compare the request's validators with the response's as the
    server saw them (keyed hashes of the two would make every correct 304 look wrong)."""
    req = _pick(snap.req_fields, _LIGHT_REQUEST)
    resp = _pick(snap.resp_fields, _LIGHT_RESPONSE) if snap.resp_fields is not None else {}
    etag = resp.get("etag")
    violations, count = None, 0
    if etag is not None:
        count = sum(1 for n, _ in snap.resp_fields or () if n.lower().strip() == b"etag")
        violations = _etag_violations(etag, count)
    status, error = snap.status, snap.error
    if status == 0:  # as build_row: no response
        status, error = None, error or "no response (status 0)"
    return Exchange(
        source=config.source,
        source_kind=config.source_kind,
        flow_id=snap.flow_id,
        client=snap.client,
        started=snap.started,
        method=snap.method,
        url=sanitise_url(snap.url, config.key, config.privacy.keep_query)[0],
        host=_url_host(snap.url),
        status=status,
        error=error,
        etag=etag,
        etag_count=count,
        etag_violations=violations,
        last_modified=resp.get("last_modified"),
        **req,
    )

