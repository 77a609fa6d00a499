"""Is an ETag a digest of the body? Tested at ingest, while the body is at hand (it is never kept).

A value that merely looks like a digest (32 hex digits) proves nothing: a tracker's random
128-bit token has that shape too. Only comparing it with the body can say "content-derived".
``digest_match`` compares the opaque-tag, without a content-coding suffix (``-gzip``, ``-br``,
``;gzip``, ``--gzip``), with the usual digests servers and object stores use: MD5, SHA-1 and
SHA-256, in hex or base64 (standard or URL-safe, padded or not), whole or a prefix of at least
``MIN_PREFIX_BITS``, of the decoded body and, where a source has it, of the encoded bytes.

The result is stored in the record's ``etag_digest``: ``"sha1:hex"``, ``"md5:base64"``,
``"sha256:hex-prefix"`` (``+encoded`` when it matched the bytes as sent), ``"none"`` when the body
was compared and matched nothing, and None when nothing could be compared (no ETag, no body).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

#: A content-coding marker servers append to one representation's ETag ("abc-gzip", "abc;br",
#: "abc--gzip"): values differing only by it are variants of one body.
CODING_SUFFIX = re.compile(r"[-;:_.+]{1,3}(?:gzip|br|zstd|deflate|compress|identity)$", re.I)
NOT_TESTED = None
NO_MATCH = "none"
#: A prefix shorter than this could match by chance (2^-32 per comparison at 32 bits).
MIN_PREFIX_BITS = 32
_ALGORITHMS = ("md5", "sha1", "sha256")
_SIZES = {"md5": 16, "sha1": 20, "sha256": 32}
_HEX = re.compile(r"[0-9a-fA-F]+")
_B64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


def stem(opaque: str) -> str:
    """The opaque-tag without a content-coding suffix."""
    return CODING_SUFFIX.sub("", opaque)


def _candidates(value: str) -> list[tuple[str, bytes]]:
    """(form, digest bytes the value would be) readings of the value."""
    out: list[tuple[str, bytes]] = []
    if _HEX.fullmatch(value) and len(value) % 2 == 0:
        out.append(("hex", bytes.fromhex(value)))
    if _B64.fullmatch(value) and len(value) >= 8:
        text = value.rstrip("=")
        padded = text + "=" * (-len(text) % 4)
        try:
            raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if raw:
            out.append(("base64", raw))
    return out


def digest_match(opaque: str | None, body: bytes | None, encoded: bytes | None = None,
                 *, sha256: str | None = None) -> str | None:
    """Which usual digest of the body the ETag is (see the module docstring). ``sha256`` is
    the body's hex SHA-256 when the caller already has it (ingest does)."""
    if opaque is None or body is None:
        return NOT_TESTED
    value = stem(opaque.strip())
    readings = [r for r in _candidates(value) if len(r[1]) * 8 >= MIN_PREFIX_BITS]
    if not readings:
        return NO_MATCH
    bodies = [("", body)]
    if encoded is not None and encoded != body:
        bodies.append(("+encoded", encoded))
    for suffix, data in bodies:
        for alg in _ALGORITHMS:
            if not any(len(raw) <= _SIZES[alg] for _, raw in readings):
                continue
            if alg == "sha256" and sha256 is not None and not suffix:
                digest = bytes.fromhex(sha256)
            else:
                digest = hashlib.new(alg, data).digest()
            for form, raw in readings:
                if raw == digest:
                    return f"{alg}:{form}{suffix}"
                if len(raw) < _SIZES[alg] and digest.startswith(raw):
                    return f"{alg}:{form}-prefix{suffix}"
    return NO_MATCH


def verified(result: object) -> bool:
    """Whether a stored ``etag_digest`` says the ETag is a digest of the body."""
    return isinstance(result, str) and result not in ("", NO_MATCH)
