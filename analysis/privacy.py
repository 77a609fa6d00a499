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
