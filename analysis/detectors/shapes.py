"""What an ETag value looks like: known server formats, digests, and how random it could be.

Works on the distinct values only (a capture repeats values a lot), with pandas string regexes,
so the cost grows with distinct values, not with exchanges. Formats (field notes section 3):
nginx ``mtime-size`` (hex seconds), Apache ``inode-size-mtime`` / ``size-mtime`` (hex, mtime in
microseconds, optional ``-gzip``/``-br`` suffix), IIS ``filetime:changenumber``, and digests
(hex or base64 MD5 / SHA-1 / SHA-256, S3 multipart ``md5-N``).
"""

from __future__ import annotations

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


def etag_shapes(values: pd.Series) -> pd.DataFrame:
    """One row per distinct opaque value: ``shape``, ``length``, ``bits`` (upper estimate of the
    randomness a value of that alphabet and length can carry), ``hash_like`` and the decoded
    format parts (``inode``, ``size``, ``mtime``, ``change``) where the format has them."""
    uniq = pd.Series(pd.unique(values.dropna()), dtype=object)
    out = pd.DataFrame({"value": uniq})
    lower = uniq.str.lower()
    shape = pd.Series("other", index=uniq.index, dtype=object)
    parts = {c: pd.Series(None, index=uniq.index, dtype=object) for c in _PART_COLUMNS}
    undecided = pd.Series(True, index=uniq.index)
    for name, pattern in _PATTERNS.items():
        subject = uniq if name == "digest" else lower
        if not undecided.any():
            break
        if "(?P<" not in pattern:  # a pattern without named groups
            hit = subject[undecided].str.fullmatch(pattern).fillna(False).astype(bool)
            hit_index = hit[hit].index
        else:
            found = subject[undecided].str.extract(f"^{pattern}$")
            hit_index = found.dropna(how="all").index
            for col in found.columns:
                parts[col].loc[hit_index] = found.loc[hit_index, col]
        shape.loc[hit_index] = name
        undecided.loc[hit_index] = False
    out["shape"] = shape
    for col in _PART_COLUMNS:
        out[col] = parts[col]
    length = uniq.str.len()
    per_char = np.select(
        [lower.str.fullmatch(r"\d+").fillna(False).astype(bool),
         lower.str.fullmatch(r"[0-9a-f]+").fillna(False).astype(bool),
         uniq.str.fullmatch(r"[A-Za-z0-9]+").fillna(False).astype(bool),
         uniq.str.fullmatch(r"[A-Za-z0-9+/=_.:-]+").fillna(False).astype(bool)],
        [np.log2(10), 4.0, np.log2(62), 6.0],
        default=6.5,
    )
    out["length"] = length
    out["bits"] = (length * per_char).round(1)
    mixed = uniq.str.contains(r"\d").fillna(False) & uniq.str.contains(r"[A-Za-z]").fillna(False)
    out["hash_like"] = (
        (out["shape"] == "digest") | ((length >= 16) & mixed & (out["bits"] >= 64))
    ).astype(bool)
    return out.set_index("value")

