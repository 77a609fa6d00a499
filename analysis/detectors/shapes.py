"""What an ETag value looks like: known server formats, digests, and how random it could be.

Works on the distinct values only (a capture repeats values a lot), with pandas string regexes,
so the cost grows with distinct values, not with exchanges. Formats (field notes section 3):
nginx ``mtime-size`` (hex seconds), Apache ``inode-size-mtime`` / ``size-mtime`` (hex, mtime in
microseconds, optional ``-gzip``/``-br`` suffix), IIS ``filetime:changenumber``, and digests
(hex or base64 MD5 / SHA-1 / SHA-256, S3 multipart ``md5-N``).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

#: Shape names, most specific first; ``other`` when nothing matched.
KNOWN_SERVER_FORMATS = ("apache-inode-size-mtime", "apache-size-mtime", "nginx-mtime-size", "iis")

_SUFFIX = r"(?:[-;](?:gzip|br|zstd|deflate))?"
_PATTERNS: dict[str, str] = {
    "apache-inode-size-mtime": rf"(?P<inode>[0-9a-f]+)-(?P<size>[0-9a-f]+)-(?P<mtime>[0-9a-f]{{10,16}}){_SUFFIX}",
    "nginx-mtime-size": rf"(?P<mtime>[4-7][0-9a-f]{{7}})-(?P<size>[0-9a-f]+){_SUFFIX}",
    "apache-size-mtime": rf"(?P<size>[0-9a-f]+)-(?P<mtime>[0-9a-f]{{11,16}}){_SUFFIX}",
    "iis": r"(?P<mtime>[0-9a-f]{8,16}):(?P<change>[0-9a-f]+)",
    "digest": (
        r"(?:[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64}|[0-9a-f]{32}-\d+"
        r"|[A-Za-z0-9+/_-]{22}(?:==)?|[A-Za-z0-9+/_-]{27}=?|[A-Za-z0-9+/_-]{43}=?)"
    ),
}
_PART_COLUMNS = ("inode", "size", "mtime", "change")
#: A content-coding marker servers append to one representation's ETag ("abc-gzip", "abc;br",
#: "abc--gzip"): values differing only by it are variants of one body, not per-client values.
_CODING_SUFFIX = re.compile(r"[-;:_.+]*(?:gzip|br|zstd|deflate|compress|identity)$", re.I)


_COMPILED = [(name, re.compile(p if name == "digest" else f"^{p}$"))
             for name, p in _PATTERNS.items()]  # digest last
_ALPHABETS = [(re.compile(r"\d+"), True, np.log2(10)), (re.compile(r"[0-9a-f]+"), True, 4.0),
              (re.compile(r"[A-Za-z0-9]+"), False, np.log2(62)),
              (re.compile(r"[A-Za-z0-9+/=_.:-]+"), False, 6.0)]
_DIGIT = re.compile(r"\d")
_LETTER = re.compile(r"[A-Za-z]")


def _shape_of(value: str) -> tuple[str, dict[str, str], float, bool]:
    """(shape, format parts, bits per character, mixes digits and letters) of one value."""
    lower = value.lower()
    shape, parts = "other", {}
    # every server format has a '-' or ':' separator: skip their patterns for plain tokens
    patterns = _COMPILED if ("-" in lower or ":" in lower) else _COMPILED[-1:]
    for name, pattern in patterns:
        if name == "digest":
            if pattern.fullmatch(value):
                shape = name
                break
        else:
            m = pattern.search(lower)
            if m:
                shape, parts = name, m.groupdict()
                break
    per_char = 6.5
    for alphabet, on_lower, bits in _ALPHABETS:
        if alphabet.fullmatch(lower if on_lower else value):
            per_char = bits
            break
    mixed = bool(_DIGIT.search(value)) and bool(_LETTER.search(value))
    return shape, parts, per_char, mixed


def etag_shapes(values: pd.Series) -> pd.DataFrame:
    """One row per distinct opaque value: ``shape``, ``length``, ``bits`` (upper estimate of the
    randomness a value of that alphabet and length can carry), ``hash_like``, ``stem`` (the value
    without a content-coding suffix) and the decoded format parts (``inode``, ``size``, ``mtime``, ``change``) where the format has them.

    One pass of precompiled regexes per distinct value: cheaper than a pandas string operation
    per pattern once values number in the hundreds of thousands."""
    uniq = np.asarray(pd.unique(values.dropna()), dtype=object)
    found = [_shape_of(str(v)) for v in uniq]
    out = pd.DataFrame({"value": pd.Series(uniq, dtype=object)})
    out["shape"] = pd.Series([f[0] for f in found], dtype=object)
    for col in _PART_COLUMNS:
        out[col] = pd.Series([f[1].get(col) for f in found], dtype=object)
    length = np.array([len(str(v)) for v in uniq], dtype=np.int64)
    per_char = np.array([f[2] for f in found], dtype=float)
    out["stem"] = pd.Series([_CODING_SUFFIX.sub("", str(v)) for v in uniq], dtype=object)
    out["length"] = length
    out["bits"] = (length * per_char).round(1)
    mixed = np.array([f[3] for f in found], dtype=bool)
    out["hash_like"] = (
        (out["shape"] == "digest").to_numpy() | ((length >= 16) & mixed & (out["bits"] >= 64).to_numpy())
    ).astype(bool)
    return out.set_index("value")
