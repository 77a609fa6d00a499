"""Keyed hashing of secret values (cookies, credentials, optionally validators).

Values are never stored in clear; a keyed hash (keyed BLAKE2b, a MAC like HMAC but about
three times faster on short values, with the store's random key) keeps
equality testable inside one store ("is this ETag a cookie value?") while a reader of the store
cannot look a value up in a precomputed table. Whoever holds the store holds its key, so a
low-entropy value (a session flag, a small counter) can still be guessed by trying candidates;
a high-entropy identifier cannot be recovered.
"""

from __future__ import annotations

import hashlib
import secrets
from functools import lru_cache
from urllib.parse import unquote_plus

import msgspec

from analysis.exchange import SECRET_HEADERS
from analysis.urlparts import authority_span

#: Digest size in bytes (128 bits, ample for equality tests within one store).
DIGEST_BYTES = 16
HASH_CHARS = 2 * DIGEST_BYTES
#: Prefix marking a keyed hash inside a header value, so it is never mistaken for a real value.
HASH_PREFIX = "hmac:"


def new_key() -> bytes:
    """A fresh random 32-byte key, one per store."""
    return secrets.token_bytes(32)


def keyed_hash(value: str | bytes, key: bytes) -> str:
    """Hex keyed BLAKE2b-128 of ``value`` (UTF-8 for str) under ``key`` (at most 64 bytes)."""
    if isinstance(value, str):
        return _text_hash(value, key)
    return _hash(bytes(value), key)


@lru_cache(maxsize=16384)
def _text_hash(value: str, key: bytes) -> str:
    """Memoised for text: a capture sends the same cookie values with request after request.
    (The cache lives in memory only, like the capture being read.)"""
    return _hash(value.encode("utf-8", "surrogatepass"), key)


def _hash(data: bytes, key: bytes) -> str:
    return hashlib.blake2b(data, key=key[:64], digest_size=DIGEST_BYTES).hexdigest()


def redacted(value: str, key: bytes) -> str:
    """The stored stand-in for a secret header value: ``hmac:<keyed hash>``."""
    return HASH_PREFIX + keyed_hash(value, key)


# --- what a record keeps of URLs and credential headers --------------------------------------
#: Header names containing any of these (lower case) carry credentials by convention
#: (X-Api-Key, X-Auth-Token, X-CSRF-Token, X-Amz-Security-Token, Signature, X-Session-Id...):
#: their values are stored as keyed hashes, like Cookie and Authorization.
SECRET_HEADER_PARTS: tuple[str, ...] = (
    "token", "key", "secret", "auth", "session", "csrf", "xsrf", "signature", "password",
    "credential",
)
#: Headers whose values are URLs: sanitised as the request URL is (``sanitise_url``).
URL_HEADERS = frozenset({"referer", "location", "content-location"})
#: Longest URL whose sanitised form is memoised (longer ones are rare and would bloat the memo).
_MEMO_URL = 2048


class Privacy(msgspec.Struct, frozen=True):
    """What a record keeps in clear beyond the fixed rules (cookies, credentials and bodies are
    never kept): query values (hashed unless ``keep_query``) and which header names count as
    credentials (``secret_headers``: parts of names; a store should keep one setting, or the
    same URL is stored two ways)."""

    keep_query: bool = False
    secret_headers: tuple[str, ...] = SECRET_HEADER_PARTS


DEFAULT_PRIVACY = Privacy()


@lru_cache(maxsize=4096)
def is_secret_header(name: str, parts: tuple[str, ...] = SECRET_HEADER_PARTS) -> bool:
    """Whether a (lower-case) header name carries credentials: one of the fixed secret fields,
    or a name containing one of ``parts``. Pseudo-headers (``:authority``) never do."""
    if name in SECRET_HEADERS:
        return True
    return not name.startswith(":") and any(p in name for p in parts)


def _query(query: str, key: bytes, hashes: set[str]) -> str:
    """Each value replaced by its keyed hash, names kept; a part without '=' counts as a value
    (``?SESSIONTOKEN`` is as secret as ``?s=SESSIONTOKEN``). ``hashes`` gets the hashes of the
    values as sent and percent-decoded, for equality with ETags (``query_hashes``)."""
    out = []
    for part in query.split("&"):
        text, found = _query_part(part, key) if len(part) <= _MEMO_PART else _part(part, key)
        out.append(text)
        if found:
            hashes.update(found)
    return "&".join(out)


#: Longest query part (``name=value``) whose hashed form is memoised (with the memo's size
#: below, at most a few MB however many distinct parts a capture has).
_MEMO_PART = 128


def _part(part: str, key: bytes) -> tuple[str, tuple[str, ...]]:
    """One ``name=value`` of a query: (its stored form, the hashes of its value as sent and
    percent-decoded when that differs)."""
    name, eq, value = part.partition("=")
    if not eq:
        name, value = "", name
    if not value:
        return part, ()
    digest = keyed_hash(value, key)
    found: tuple[str, ...] = (digest,)
    if "%" in value or "+" in value:  # otherwise unquote_plus gives the value itself
        decoded = unquote_plus(value)
        if decoded != value:
            found = (digest, keyed_hash(decoded, key))
    value = HASH_PREFIX + digest
    return (f"{name}={value}" if eq else value), found


#: Memoised per part: a capture repeats the same parameters (API keys, tracking ids, versions)
#: on URL after URL, most of which are new as a whole.
_query_part = lru_cache(maxsize=8192)(_part)


def _sanitise(url: str, key: bytes, keep_query: bool) -> tuple[str, tuple[str, ...]]:
    hashes: set[str] = set()
    url = url.partition("#")[0]  # a fragment never reaches the server; it may hold a token
    span = authority_span(url)
    if span is not None:
        at = url.rfind("@", *span)
        if at >= 0:  # user:password@ goes, the host stays
            url = url[: span[0]] + url[at + 1 :]
    base, q, query = url.partition("?")
    if q and query:
        hashed = _query(query, key, hashes)  # the hashes are wanted with keep_query too
        url = f"{base}?{query if keep_query else hashed}"
    return url, tuple(sorted(hashes))


@lru_cache(maxsize=16384)
def _sanitise_memo(url: str, key: bytes, keep_query: bool) -> tuple[str, tuple[str, ...]]:
    return _sanitise(url, key, keep_query)


def sanitise_url(url: str, key: bytes, keep_query: bool = False) -> tuple[str, tuple[str, ...]]:
    """(URL as stored, keyed hashes of its query values): userinfo and fragment dropped, query
    values keyed-hashed (names and order kept, so the same URL stays the same resource and
    ``--ignore-param`` still works) unless ``keep_query``. The hashes are returned either way."""
    if len(url) <= _MEMO_URL:
        return _sanitise_memo(url, key, keep_query)
    return _sanitise(url, key, keep_query)
