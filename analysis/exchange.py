"""The exchange record: one request and its response, as seen by one client.

Every source (HAR reader, mitmproxy flow-file reader, live addon, probe) produces this very
record, the store keeps it as one row of the ``exchanges`` table (same column names), and the
detectors read those columns from a DataFrame. Nothing downstream knows where a row came from.

Privacy: a record never holds Cookie, Set-Cookie, Authorization or Proxy-Authorization values,
values of other credential headers (``analysis.privacy.is_secret_header``), query values
(unless kept on request), URL userinfo or fragments, nor bodies. Cookie and query values appear
only as keyed hashes (``analysis.privacy.keyed_hash``), so a detector can test ``ETag == cookie
value`` or ``ETag == query value`` by comparing ``etag_hash`` with ``cookie_hashes`` and
``query_hashes``.
List- and mapping-valued fields are JSON text, so the record maps 1:1 onto SQLite columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

#: Request fields kept as sent (lower-case header name -> record field).
REQUEST_FIELDS: dict[str, str] = {
    "if-none-match": "req_if_none_match",
    "if-match": "req_if_match",
    "if-modified-since": "req_if_modified_since",
    "if-unmodified-since": "req_if_unmodified_since",
    "if-range": "req_if_range",
    "range": "req_range",
    "cache-control": "req_cache_control",
    "pragma": "req_pragma",
}

#: Response fields kept as received (lower-case header name -> record field).
RESPONSE_FIELDS: dict[str, str] = {
    "date": "date",
    "cache-control": "cache_control",
    "expires": "expires",
    "vary": "vary",
    "age": "age",
    "content-type": "content_type",
    "content-encoding": "content_encoding",
    "content-location": "content_location",
    "server": "server",
}

#: Headers whose values never reach the store in clear.
SECRET_HEADERS: frozenset[str] = frozenset(
    {"cookie", "set-cookie", "set-cookie2", "authorization", "proxy-authorization"}
)

#: Default response headers that hint at which backend / cache node answered. Prefix entries
#: end in '*'. Configurable through ``--backend-header`` / the ``etagwatch_backend_headers`` option.
DEFAULT_BACKEND_HEADERS: tuple[str, ...] = (
    "server",
    "via",
    "x-served-by",
    "x-backend*",
    "x-cache",
    "x-cache-hits",
    "x-server",
    "x-host",
    "x-upstream",
    "x-amz-cf-pop",
    "cf-ray",
    "x-fastly-request-id",
    "x-azure-ref",
    "x-akamai-request-id",
    "fly-request-id",
    "x-vercel-id",
)


#: Response headers whose value names one response (a request id, a CDN trace id): a second
#: entry repeating the value is a cache hit the capture listed again, not a server answer.
#: X-Served-By and X-Timer together (Fastly) name one response; X-Served-By alone names a node.
RESPONSE_ID_HEADERS: tuple[str, ...] = (
    "x-request-id", "x-fastly-request-id", "cf-ray", "x-amz-cf-id", "x-amz-request-id",
    "x-amzn-requestid", "x-amzn-trace-id", "x-vercel-id", "fly-request-id",
    "x-akamai-request-id", "x-azure-ref", "x-msedge-ref", "x-correlation-id", "request-id",
    "x-cloud-trace-context", "x-timer",
)


class Exchange(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One request/response pair. Field names are the store's column names."""

    # --- where it came from
    source: str  # file path, 'live:<proxy>' or 'probe:<url>'
    source_kind: str  # 'har' | 'flow' | 'live' | 'probe'
    entry_index: int | None = None  # index in log.entries, or in the flow file
    flow_id: str | None = None  # mitmproxy flow id (flows and live)
    client: str  # client / profile id
    started: float | None = None  # request start, epoch seconds (UTC)

    # --- context
    page_url: str | None = None  # page (HAR pageref title/url, Referer, Origin) when known
    first_party: str | None = None  # registrable domain of the page (Public Suffix List)
    third_party: bool | None = None  # request's registrable domain != first_party

    # --- request
    method: str
    url: str
    scheme: str | None = None
    host: str | None = None  # lower-case, no port, IDNA as given
    port: int | None = None
    path: str | None = None
    query: str | None = None
    http_version: str | None = None  # normalised: 'HTTP/1.0', 'HTTP/1.1', 'HTTP/2', 'HTTP/3' or raw
    req_if_none_match: str | None = None
    req_if_match: str | None = None
    req_if_modified_since: str | None = None
    req_if_unmodified_since: str | None = None
    req_if_range: str | None = None
    req_range: str | None = None
    req_cache_control: str | None = None
    req_pragma: str | None = None
    req_headers: str | None = None  # JSON [[name, value], ...]; secret values keyed-hashed

    # --- response
    status: int | None = None  # None or 0 when no response arrived (failed, blocked)
    error: str | None = None  # why there was no response
    etag: str | None = None  # raw field value (repeated fields joined by ', ')
    etag_count: int = 0  # how many ETag fields the response carried
    etag_weak: bool | None = None
    etag_opaque: str | None = None  # opaque-tag without quotes (lenient parse)
    etag_violations: str | None = None  # JSON list of syntax violations, None when valid
    etag_hash: str | None = None  # keyed hash of etag_opaque, comparable with cookie_hashes
    last_modified: str | None = None
    last_modified_ts: float | None = None  # parsed HTTP-date, epoch seconds; None if invalid
    date: str | None = None
    date_ts: float | None = None
    cache_control: str | None = None
    expires: str | None = None
    vary: str | None = None
    age: str | None = None
    content_type: str | None = None
    content_encoding: str | None = None
    content_location: str | None = None
    server: str | None = None
    resp_headers: str | None = None  # JSON [[name, value], ...]; secret values keyed-hashed
    body_size: int | None = None  # body bytes sent over the wire for this exchange (0 for a 304)
    content_size: int | None = None  # decoded body length when known
    content_hash: str | None = None  # sha256 hex of the decoded body when known, never the body
    from_cache: bool = False  # served from the browser cache without a network exchange
    cache_kind: str | None = None  # 'disk', 'memory', 'firefox-cache', ... when from_cache

    # --- server
    server_ip: str | None = None
    backend: str | None = None  # JSON {header: value} of backend-hint headers present

    # --- cookies (names in clear, values only as keyed hashes)
    cookies_sent: str | None = None  # JSON list of names
    cookies_set: str | None = None  # JSON list of names
    cookie_hashes: str | None = None  # JSON list of keyed hashes of sent and set values

    # --- checked while the body was at hand (analysis.digests; nothing of the body is kept)
    etag_digest: str | None = None  # 'sha1:hex', 'md5:base64', ...; 'none': no match; None: untested
    response_id: str | None = None  # keyed hash of the response's per-request id headers

    # --- query values (the URL keeps them keyed-hashed unless --keep-query)
    query_hashes: str | None = None  # JSON list of keyed hashes of the URL's query values


#: Column names in record order, for the store and for DataFrames built without a store.
COLUMNS: tuple[str, ...] = Exchange.__struct_fields__


def from_row(row: Sequence[object]) -> Exchange:
    """The record of a store row (its values in COLUMNS order)."""
    return Exchange(**dict(zip(COLUMNS, row, strict=True)))
