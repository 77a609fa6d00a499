"""Assemble one :class:`~analysis.exchange.Exchange` from normalised request/response parts.

Every reader (HAR, flow file) and the live addon end here, so privacy rules live in one place:
Cookie, Set-Cookie, Authorization and other credential headers' values leave this module only
as keyed hashes, URLs (the request's, the page's, Referer, Location, Content-Location) without
userinfo and fragment and with query values keyed-hashed (``analysis.privacy.sanitise_url``),
bodies only as a sha256 digest, and with ``redact_validators`` ETag and date-validator values
too.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import msgspec

from analysis.digests import digest_match
from analysis.etag import EntityTag, parse_etag, parse_etag_list
from analysis.exchange import (
    COLUMNS,
    DEFAULT_BACKEND_HEADERS,
    REQUEST_FIELDS,
    RESPONSE_FIELDS,
    RESPONSE_ID_HEADERS,
    Exchange,
    from_row,
)
from analysis.headers import Headers, NameMatcher, to_dict
from analysis.httpdate import parse_http_date
from analysis.limits import FIELD_CAP, MARKER_ROOM, cap_text, finite_or_none, int64_or_none
from analysis.privacy import (
    DEFAULT_PRIVACY,
    URL_HEADERS,
    Privacy,
    is_secret_header,
    keyed_hash,
    redacted,
    sanitise_url,
)
from analysis.readers.cookies import sent_cookies, set_cookies
from analysis.sites import registrable_domain, site_of_url
from analysis.urlparts import split_url

_json = msgspec.json.Encoder()

#: Validator fields whose values ``redact_validators`` replaces by keyed hashes.
ETAG_REQUEST_FIELDS = frozenset({"if-none-match", "if-match", "if-range"})
DATE_VALIDATOR_FIELDS = frozenset({"last-modified", "if-modified-since", "if-unmodified-since"})

_VERSIONS = {
    "http/1.0": "HTTP/1.0",
    "http/1.1": "HTTP/1.1",
    "http/2": "HTTP/2",
    "http/2.0": "HTTP/2",
    "h2": "HTTP/2",
    "h2c": "HTTP/2",
    "http/3": "HTTP/3",
    "http/3.0": "HTTP/3",
    "h3": "HTTP/3",
}
_ETAG_ONLY = frozenset({"etag"})


@lru_cache(maxsize=8192)
def _date_ts(value: str) -> float | None:
    """Parsed HTTP-date (memoised: Date and Last-Modified values repeat across a capture)."""
    return parse_http_date(value.strip()).timestamp


@lru_cache(maxsize=4096)
def _site_of_url(url: str) -> str | None:
    """Registrable domain of a page URL (memoised: a capture has few pages and referrers)."""
    return site_of_url(url)


@lru_cache(maxsize=64)
def _matcher(patterns: tuple[str, ...]) -> NameMatcher:
    return NameMatcher(patterns)


def normalise_version(raw: str | None) -> str | None:
    """'h2', 'http/2.0', 'HTTP/2' -> 'HTTP/2'; unknown spellings kept; '' -> None."""
    if not raw or not raw.strip():
        return None
    raw = raw.strip()
    return _VERSIONS.get(raw.lower(), raw)


def _body_digest(body: bytes | None) -> str | None:
    """sha256 hex of a decoded body, or None when the body is unknown."""
    return None if body is None else hashlib.sha256(body).hexdigest()


_LONG = FIELD_CAP + MARKER_ROOM
#: Cap of short fields (method, status text, error).
_SHORT_CAP = 4096


def _capped(headers: Headers) -> Headers:
    """The header list itself when every name and value is within FIELD_CAP, else a copy with
    the long ones cut (analysis.limits.cap_text)."""
    for name, value in headers:
        if len(value) > _LONG or len(name) > _LONG:
            break
    else:
        return headers
    return [(cap_text(n), cap_text(v)) for n, v in headers]


def _redact_etag_value(value: str, key: bytes) -> str:
    """Replace each entity-tag's opaque part by its keyed hash, keeping W/ and '*', so strong
    and weak comparison still work on redacted values."""
    parsed = parse_etag_list(value)
    tags = [str(EntityTag(keyed_hash(t.opaque, key), t.weak)) for t in parsed.tags]
    if parsed.star:
        tags.insert(0, "*")
    return ", ".join(tags) if tags else redacted(value, key)


@lru_cache(maxsize=256)
def _special_names(names: frozenset[str], parts: tuple[str, ...]) -> frozenset[str]:
    """The names of a header set whose values are not stored as sent: credentials and URLs
    (memoised: a capture has few distinct header name sets)."""
    return frozenset(n for n in names if n in URL_HEADERS or is_secret_header(n, parts))


def _special(index: dict[str, str], parts: tuple[str, ...]) -> frozenset[str]:
    if len(index) > 64:  # an odd set: not worth a memo slot
        return _special_names.__wrapped__(frozenset(index), parts)
    return _special_names(frozenset(index), parts)


def _safe_headers(
    headers: Headers,
    index: dict[str, str],
    key: bytes,
    redact_validators: bool,
    etag_fields: frozenset[str],
    special: frozenset[str],
    keep_query: bool,
) -> str | None:
    """JSON [[name, value], ...] with secret values (and optionally validators) keyed-hashed
    and URL values sanitised.

    ``special`` (from ``_special``) names the headers that are secrets or URLs: when there is
    none (the common case) the list is encoded as it is, without copying it pair by pair.
    """
    if not headers:
        return None
    if not redact_validators and not special:
        return _encode_text(headers)
    out = []
    for name, value in headers:
        if name in URL_HEADERS:
            value = sanitise_url(value, key, keep_query)[0]
        elif name in special:
            value = redacted(value, key)
        elif redact_validators and name in etag_fields:
            value = _redact_etag_value(value, key)
        elif redact_validators and name in DATE_VALIDATOR_FIELDS:
            value = redacted(value, key)
        out.append([name, value])
    return _json.encode(out).decode()


_local = threading.local()


def _encode_text(value: object) -> str:
    """JSON text of ``value`` through a reused per-thread buffer (half the cost of
    ``encode(...).decode()`` for header lists of a kilobyte, which allocate and grow)."""
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = bytearray(4096)
    _json.encode_into(value, buf)
    return buf.decode()


def _index(headers: Headers) -> tuple[dict[str, str], dict[str, list[str]] | None]:
    """name -> combined value (RFC 9110 5.3: repeats joined by ', '), in first-seen order,
    plus name -> values when some name repeats (None when none does, the common case)."""
    single = dict(headers)
    if len(single) == len(headers):
        return single, None
    multi = to_dict(headers)
    return {n: v[0] if len(v) == 1 else ", ".join(v) for n, v in multi.items()}, multi


def _values(index: dict[str, str], multi: dict[str, list[str]] | None, name: str) -> list[str]:
    """Every value of one field name, in order (the name must be present)."""
    return multi[name] if multi is not None else [index[name]]


#: An exchange as a store row: its fields' values in COLUMNS order (see ``build_row``).
Row = tuple
#: Position of the host in a row, for callers that read rows.
HOST = COLUMNS.index("host")
_REQUEST_NAMES = tuple(REQUEST_FIELDS)
_RESPONSE_NAMES = tuple(n for n in RESPONSE_FIELDS if n != "date")  # date comes first, apart


def build_exchange(**parts: Any) -> Exchange:
    """The exchange record for one request/response (keyword arguments: see ``build_row``;
    live and flow sources use the record, bulk ingest the row)."""
    return from_row(build_row(**parts))


def build_row(
    *,
    source: str,
    source_kind: str,
    client: str,
    key: bytes,
    method: str,
    url: str,
    req_headers: Headers,
    resp_headers: Headers,
    status: int | None,
    http_version: str | None = None,
    entry_index: int | None = None,
    flow_id: str | None = None,
    started: float | None = None,
    page_url: str | None = None,
    error: str | None = None,
    body: bytes | None = None,
    body_size: int | None = None,
    content_size: int | None = None,
    from_cache: bool = False,
    cache_kind: str | None = None,
    server_ip: str | None = None,
    extra_cookies_sent: Iterable[tuple[str, str]] = (),
    extra_cookies_set: Iterable[tuple[str, str]] = (),
    backend_headers: Sequence[str] = DEFAULT_BACKEND_HEADERS,
    redact_validators: bool = False,
    encoded_body: bytes | None = None,
    etag_digest: str | None = None,
    body_digest: tuple[str, int] | None = None,
    privacy: Privacy = DEFAULT_PRIVACY,
) -> Row:
    """One exchange as a store row: the values of :class:`Exchange`'s fields in COLUMNS order
    (what ``msgspec.structs.astuple`` gives for the record ``build_exchange`` returns).

    ``req_headers`` / ``resp_headers`` are normalised (lower-case names, see analysis.headers).
    ``body`` is the decoded response body when known (hashed, never kept), ``encoded_body``
    the bytes as sent when the source has them; the ETag is compared with the usual digests of
    both (analysis.digests). ``etag_digest`` is that result when the caller already has it
    (the live proxy tests while it holds the body; only its snapshot reaches the writer). ``extra_cookies_*``
    are cookies a HAR lists outside the headers (Chrome 130+ strips the Cookie field itself).
    ``status`` 0 means no response arrived and is stored as None with ``error`` set.
    ``body_digest`` (sha256 hex, length) stands for a body hashed while it was read (too large
    to hold); its ETag is then not compared with digests.

    Every text field is capped at analysis.limits.FIELD_CAP (the stored value says where it was
    cut), integers SQLite cannot hold and non-finite times become None, a status outside
    100-999 becomes None with the reason in ``error``: one odd field never costs the row.

    This runs once per exchange on every path (bulk ingest, live proxy), so it avoids
    per-field Python work: headers are indexed with one ``dict()`` call, header lists without
    secrets are JSON-encoded as they are, pure per-value work (sites, dates) is memoised, and
    bulk ingest stores the tuple as it is (no record object in between).
    """
    if not isinstance(req_headers, list):
        req_headers = list(req_headers)
    if not isinstance(resp_headers, list):
        resp_headers = list(resp_headers)
    req_headers = _capped(req_headers)
    resp_headers = _capped(resp_headers)
    if len(url) > _LONG:
        url = cap_text(url)
    if len(method) > _SHORT_CAP:
        method = cap_text(method, _SHORT_CAP)
    if status is not None and not (type(status) is int and (status == 0 or 100 <= status <= 999)):
        error = error or f"invalid status code {cap_text(str(status), _SHORT_CAP)}"
        status = None
    if error is not None and len(error) > _SHORT_CAP:
        error = cap_text(error, _SHORT_CAP)
    body_size, content_size = int64_or_none(body_size), int64_or_none(content_size)
    started = finite_or_none(started)
    keep_query = privacy.keep_query
    url, query_hashes = sanitise_url(url, key, keep_query)
    scheme, host, port, path, query = split_url(url)
    req, req_multi = _index(req_headers)
    resp, resp_multi = _index(resp_headers)
    req_special = _special(req, privacy.secret_headers)
    resp_special = _special(resp, privacy.secret_headers)

    req_values = list(map(req.get, _REQUEST_NAMES))
    if redact_validators:
        for i, name in enumerate(_REQUEST_NAMES):
            value = req_values[i]
            if value is None:
                continue
            if name in ETAG_REQUEST_FIELDS:
                req_values[i] = _redact_etag_value(value, key)
            elif name in DATE_VALIDATOR_FIELDS:
                req_values[i] = redacted(value, key)

    if status == 0:
        status = None
        error = error or "no response (status 0)"

    # ETag: raw, parsed, keyed hash of the opaque tag
    etag_count, etag_weak, etag_opaque, etag_violations, etag_hash = 0, None, None, None, None
    tag_opaque = None  # the opaque-tag as sent, even when the record keeps it redacted
    raw_etag = resp.get("etag")
    if raw_etag is not None:
        etags = resp_multi["etag"] if resp_multi is not None else (raw_etag,)
        parsed = parse_etag(raw_etag.strip() if len(etags) == 1 else raw_etag)
        violations = list(parsed.violations)
        if len(etags) > 1:
            violations.append(f"{len(etags)} ETag fields")
        tag = parsed.tag
        etag_count = len(etags)
        etag_violations = _json.encode(violations).decode() if violations else None
        if tag is not None:
            etag_weak = tag.weak
            etag_opaque = tag_opaque = tag.opaque
            etag_hash = keyed_hash(tag.opaque, key)
        if redact_validators:
            raw_etag = _redact_etag_value(raw_etag, key)
            if tag is not None:
                etag_opaque = keyed_hash(tag.opaque, key)

    last_modified = resp.get("last-modified")
    last_modified_ts = None
    if last_modified is not None:
        if redact_validators:
            last_modified = redacted(last_modified, key)
        else:
            last_modified_ts = _date_ts(last_modified)
    date = resp.get("date")
    date_ts = _date_ts(date) if date is not None else None

    # cookies: names in clear, values only as keyed hashes
    sent = (
        sent_cookies(_values(req, req_multi, "cookie")) if "cookie" in req else None
    ) or list(extra_cookies_sent)
    got = (
        set_cookies(_values(resp, resp_multi, "set-cookie")) if "set-cookie" in resp else None
    ) or list(extra_cookies_set)
    cookies_sent = _json.encode([n for n, _ in sent]).decode() if sent else None
    cookies_set = _json.encode([n for n, _ in got]).decode() if got else None
    cookie_hashes = None
    if sent or got:
        hashes = sorted({keyed_hash(v, key) for _, v in (*sent, *got) if v})
        cookie_hashes = _json.encode(hashes).decode() if hashes else None

    picked = _matcher(tuple(backend_headers)).pick(resp)
    backend = _json.encode(
        {n: redacted(resp[n], key) if n in resp_special else resp[n] for n in picked}
    ).decode() if picked else None

    # context: page and first party
    page_url = page_url or req.get("referer") or _origin(req)
    if page_url:
        page_url = sanitise_url(cap_text(page_url), key, keep_query)[0]
    page_site = _site_of_url(page_url) if page_url else None
    req_site = registrable_domain(host)

    if status == 304 or from_cache:
        body_size = 0  # a 304 has no body on the wire; a cache hit used no wire at all
    elif body_size is not None and body_size < 0:
        body_size = None
    content_hash = _body_digest(body)
    if body_digest is not None:
        content_hash, content_size = body_digest
    elif body is not None:
        declared = content_size
        content_size = len(body)
        # a body a producer cut short (text shorter than content.size) cannot be compared
        if etag_digest is None and (declared is None or declared <= 0 or declared == len(body)):
            etag_digest = digest_match(tag_opaque, body, encoded_body, sha256=content_hash)
    elif content_size is not None and content_size < 0:
        content_size = None
    response_id = _response_id(resp, key)

    return (
        source,
        source_kind,
        entry_index,
        flow_id,
        client,
        started,
        page_url,
        page_site,
        (req_site != page_site) if (page_site and req_site) else None,
        method,
        url,
        scheme,
        host,
        port,
        path,
        query,
        normalise_version(http_version),
        *req_values,
        _safe_headers(req_headers, req, key, redact_validators, ETAG_REQUEST_FIELDS, req_special,
                      keep_query),
        status,
        error,
        raw_etag,
        etag_count,
        etag_weak,
        etag_opaque,
        etag_violations,
        etag_hash,
        last_modified,
        last_modified_ts,
        date,
        date_ts,
        *_response_values(resp, resp_special, key, keep_query),
        _safe_headers(resp_headers, resp, key, redact_validators, _ETAG_ONLY, resp_special,
                      keep_query),
        body_size,
        content_size,
        content_hash,
        from_cache,
        cache_kind if from_cache else None,
        server_ip or None,
        backend,
        cookies_sent,
        cookies_set,
        cookie_hashes,
        etag_digest,
        response_id,
        _json.encode(query_hashes).decode() if query_hashes else None,
    )


def _response_values(resp: dict[str, str], special: frozenset[str], key: bytes,
                     keep_query: bool) -> list[str | None]:
    """The response fields kept as columns, Content-Location sanitised as a URL and any the
    credential pattern names keyed-hashed."""
    values = list(map(resp.get, _RESPONSE_NAMES))
    if special:
        for i, name in enumerate(_RESPONSE_NAMES):
            value = values[i]
            if value is None or name not in special:
                continue
            if name in URL_HEADERS:
                values[i] = sanitise_url(value, key, keep_query)[0]
            else:
                values[i] = redacted(value, key)
    return values


#: build_row's layout, checked once: the row must follow COLUMNS.
_ROW_LAYOUT = (
    "source", "source_kind", "entry_index", "flow_id", "client", "started", "page_url",
    "first_party", "third_party", "method", "url", "scheme", "host", "port", "path", "query",
    "http_version", *REQUEST_FIELDS.values(), "req_headers", "status", "error", "etag",
    "etag_count", "etag_weak", "etag_opaque", "etag_violations", "etag_hash", "last_modified",
    "last_modified_ts", "date", "date_ts", *(RESPONSE_FIELDS[n] for n in _RESPONSE_NAMES),
    "resp_headers", "body_size", "content_size", "content_hash", "from_cache", "cache_kind",
    "server_ip", "backend", "cookies_sent", "cookies_set", "cookie_hashes", "etag_digest",
    "response_id", "query_hashes",
)
if _ROW_LAYOUT != COLUMNS:  # pragma: no cover - a field added to Exchange but not here
    raise ImportError("analysis.readers.record.build_row is out of step with Exchange's fields")


def _response_id(resp: dict[str, str], key: bytes) -> str | None:
    """Keyed hash of the headers that name this one response (RESPONSE_ID_HEADERS), or None."""
    found = [f"{n}={resp[n]}" for n in RESPONSE_ID_HEADERS if n in resp]
    if not found:
        return None
    if "x-served-by" in resp:  # the node, with Fastly's X-Timer: one response
        found.append(f"x-served-by={resp['x-served-by']}")
    return keyed_hash("\n".join(found), key)


def _origin(req: dict[str, str]) -> str | None:
    origin = req.get("origin")
    return origin if origin and origin != "null" else None
