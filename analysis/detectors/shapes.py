"""What an ETag value looks like: known server formats (checked against the response where it
allows), digests, and how much information a value can carry.

Works on the distinct values only (a capture repeats values a lot), so the cost grows with
distinct values, not with exchanges. Formats (field notes sections 3 and 8), with fields of any
width real builds print: nginx ``mtime-size`` (hex seconds), Apache ``inode-size-mtime`` /
``size-mtime`` (hex, mtime in microseconds, possibly only its low 32 bits), IIS
``filetime:changenumber``, each with an optional content-coding suffix (``-gzip``, ``-br``,
``;gzip``, ``--gzip``); and digest-shaped values (hex or base64 MD5 / SHA-1 / SHA-256, S3
multipart ``md5-N``). A shape alone is never evidence of benignity: ``verify_format`` compares
the size field with the body length and the mtime field with Last-Modified, and only a checked
field makes a format "verified" (analysis.digests does the same for digests).

Information is estimated from variation (``variation_bits``): the characters in which a value
differs from the other values of its host (build tokens share long prefixes and carry far less
than their length suggests), times the bits per character of its alphabet. A host's only value
can only be bounded by its length and alphabet, and the basis says so.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from analysis.digests import CODING_SUFFIX

#: Shape names, most specific first; ``other`` when nothing matched.
KNOWN_SERVER_FORMATS = ("apache-inode-size-mtime", "apache-size-mtime", "nginx-mtime-size", "iis")

_SUFFIX = r"(?:[-;:_.+]{1,3}(?:gzip|br|zstd|deflate))?"
_PATTERNS: dict[str, str] = {
    "apache-inode-size-mtime": rf"(?P<inode>[0-9a-f]{{1,16}})-(?P<size>[0-9a-f]{{1,16}})-(?P<mtime>[0-9a-f]{{8,16}}){_SUFFIX}",
    "nginx-mtime-size": rf"(?P<mtime>[0-9a-f]{{8,9}})-(?P<size>[0-9a-f]{{1,16}}){_SUFFIX}",
    "apache-size-mtime": rf"(?P<size>[0-9a-f]{{1,16}})-(?P<mtime>[0-9a-f]{{8,16}}){_SUFFIX}",
    "iis": rf"(?P<mtime>[0-9a-f]{{8,16}}):(?P<change>[0-9a-f]+){_SUFFIX}",
    "digest": (
        r"(?:[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64}|[0-9a-f]{32}-\d+"
        r"|[A-Za-z0-9+/_-]{22}(?:==)?|[A-Za-z0-9+/_-]{27}=?|[A-Za-z0-9+/_-]{43}=?)"
    ),
}
_PART_COLUMNS = ("inode", "size", "mtime", "change")
#: Seconds between 1601-01-01 (Windows FILETIME) and 1970-01-01.
_FILETIME_EPOCH = 11644473600
#: Below this many bits a value cannot tell clients apart in any useful number.
LOW_INFORMATION_BITS = 20.0


_COMPILED = [(name, re.compile(p if name == "digest" else f"^{p}$"))
             for name, p in _PATTERNS.items()]  # digest last
_ALPHABETS = [(re.compile(r"\d+"), True, np.log2(10)), (re.compile(r"[0-9a-f]+"), True, 4.0),
              (re.compile(r"[A-Za-z0-9]+"), False, np.log2(62)),
              (re.compile(r"[A-Za-z0-9+/=_.:-]+"), False, 6.0)]
_DIGIT = re.compile(r"\d")
_LETTER = re.compile(r"[A-Za-z]")


def format_candidates(value: str, *, first: bool = False) -> list[tuple[str, dict[str, str]]]:
    """Every server format the value fits, most specific first (``digest`` last); only the
    first with ``first``."""
    lower = value.lower()
    found: list[tuple[str, dict[str, str]]] = []
    # every server format has a '-' or ':' separator: skip their patterns for plain tokens
    patterns = _COMPILED if ("-" in lower or ":" in lower) else _COMPILED[-1:]
    for name, pattern in patterns:
        if name == "digest":
            if pattern.fullmatch(CODING_SUFFIX.sub("", value)):
                found.append((name, {}))
        else:
            m = pattern.search(lower)
            if m:
                found.append((name, m.groupdict()))
        if first and found:
            break
    return found


def verify_format(shape: str, parts: dict[str, str], size: float, lm_ts: float
                  ) -> dict[str, bool]:
    """Which of the format's fields agree with the response: ``{"size": True, "mtime": False}``
    (empty when nothing could be checked). Size: the body length (decoded: the file's size);
    mtime: Last-Modified, in the format's unit (Apache: microseconds, possibly only the low 32
    bits; nginx: seconds; IIS: FILETIME)."""
    checks: dict[str, bool] = {}
    if parts.get("size") and size == size and size >= 0:
        checks["size"] = int(parts["size"], 16) == int(size)
    mtime = parts.get("mtime")
    if mtime and lm_ts == lm_ts:
        field = int(mtime, 16)
        if shape.startswith("apache"):
            us = int(lm_ts) * 1_000_000
            if len(mtime) <= 8:  # a build that prints only the low 32 bits
                checks["mtime"] = (field - us) % (1 << 32) < 1_000_000
            else:
                checks["mtime"] = us <= field < us + 1_000_000
        elif shape == "nginx-mtime-size":
            checks["mtime"] = field == int(lm_ts)
        elif shape == "iis":
            checks["mtime"] = abs(field / 1e7 - _FILETIME_EPOCH - lm_ts) < 2
    return checks


def _shape_of(value: str) -> tuple[str, dict[str, str], float, bool]:
    """(shape, format parts, bits per character, mixes digits and letters) of one value."""
    lower = value.lower()
    found = format_candidates(value, first=True)
    shape, parts = found[0] if found else ("other", {})
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

    Values of printable ASCII (nearly all) are read by ``_shapes_in_arrow``, the same patterns
    run over the whole array in C++; any other value by ``_shape_of``, one value at a time."""
    uniq = np.asarray(pd.unique(values.dropna()), dtype=object)
    text = [str(v) for v in uniq]
    shape = np.empty(len(text), dtype=object)
    parts = {col: np.full(len(text), None, dtype=object) for col in _PART_COLUMNS}
    per_char = np.empty(len(text), dtype=float)
    mixed = np.empty(len(text), dtype=bool)
    stem = np.empty(len(text), dtype=object)
    plain = np.fromiter((_PRINTABLE_ASCII.fullmatch(v) is not None for v in text), dtype=bool,
                        count=len(text))
    if plain.any():
        rows = np.flatnonzero(plain)
        got = _shapes_in_arrow([text[i] for i in rows])
        shape[rows], per_char[rows], mixed[rows], stem[rows] = (
            got["shape"], got["per_char"], got["mixed"], got["stem"])
        for col in _PART_COLUMNS:
            parts[col][rows] = got[col]
    for i in np.flatnonzero(~plain):
        sh, found, pc_, mx = _shape_of(text[i])
        shape[i], per_char[i], mixed[i] = sh, pc_, mx
        stem[i] = CODING_SUFFIX.sub("", text[i])
        for col in _PART_COLUMNS:
            parts[col][i] = found.get(col)
    out = pd.DataFrame({"value": pd.Series(uniq, dtype=object)})
    out["shape"] = pd.Series(shape, dtype=object)
    for col in _PART_COLUMNS:
        out[col] = pd.Series(parts[col], dtype=object)
    length = np.array([len(v) for v in text], dtype=np.int64)
    out["stem"] = pd.Series(stem, dtype=object)
    out["per_char"] = per_char
    out["length"] = length
    out["bits"] = (length * per_char).round(1)
    out["hash_like"] = (
        (out["shape"] == "digest").to_numpy() | ((length >= 16) & mixed & (out["bits"] >= 64).to_numpy())
    ).astype(bool)
    return out.set_index("value")


#: Where RE2 (Arrow's regex engine) and Python's ``re`` read these patterns alike: no
#: non-ASCII digits or letters, no newline before which ``$`` could match.
_PRINTABLE_ASCII = re.compile(r"[ -~]*")


def _shapes_in_arrow(text: list[str]) -> dict[str, np.ndarray]:
    """``_shape_of`` and the stem for many printable-ASCII values at once: the same patterns
    in the same order, each over the whole array (pyarrow.compute, RE2)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(text, type=pa.string())
    lower = pc.utf8_lower(arr)
    n = len(text)
    shape = np.full(n, "other", dtype=object)
    parts = {col: np.full(n, None, dtype=object) for col in _PART_COLUMNS}
    open_ = np.ones(n, dtype=bool)
    separated = pc.match_substring_regex(lower, "[-:]").to_numpy(zero_copy_only=False)
    stem = pc.replace_substring_regex(arr, pattern=f"(?i){CODING_SUFFIX.pattern}",
                                      replacement="")
    for name, pattern in _PATTERNS.items():
        if name == "digest":
            hit = open_ & pc.match_substring_regex(stem, f"^(?:{pattern})$").to_numpy(
                zero_copy_only=False)
            shape[hit] = name
            break
        rows = np.flatnonzero(open_ & separated)
        if len(rows) == 0:
            continue
        found = pc.extract_regex(lower.take(pa.array(rows)), f"^{pattern}$")
        hit = found.is_valid().to_numpy(zero_copy_only=False)
        at = rows[hit]
        shape[at] = name
        fields = found.filter(pa.array(hit))
        for col in _PART_COLUMNS:
            if f"(?P<{col}>" in pattern:
                parts[col][at] = fields.field(col).to_numpy(zero_copy_only=False)
        open_[at] = False
    per_char = np.full(n, 6.5)
    unset = np.ones(n, dtype=bool)
    for alphabet, on_lower, bits in _ALPHABETS:
        fits = pc.match_substring_regex(lower if on_lower else arr, f"^(?:{alphabet.pattern})$")
        hit = unset & fits.to_numpy(zero_copy_only=False)
        per_char[hit] = bits
        unset &= ~hit
    mixed = (pc.match_substring_regex(arr, "[0-9]").to_numpy(zero_copy_only=False)
             & pc.match_substring_regex(arr, "[A-Za-z]").to_numpy(zero_copy_only=False))
    return {"shape": shape, **parts, "per_char": per_char, "mixed": mixed,
            "stem": stem.to_numpy(zero_copy_only=False).astype(object)}


#: Common prefixes and suffixes are measured over at most this many bytes of each value.
_PREFIX_WIDTH = 96


def _adjacent_common(arr: np.ndarray) -> np.ndarray:
    """Length of the common prefix of each pair of neighbours in a fixed-width bytes array."""
    if len(arr) < 2:
        return np.zeros(0, dtype=np.int64)
    m = arr.view(np.uint8).reshape(len(arr), -1)
    differs = m[1:] != m[:-1]
    width = m.shape[1]
    first = np.where(differs.any(axis=1), differs.argmax(axis=1), width)
    # NUL padding: a prefix cannot extend past the shorter value
    lengths = np.char.str_len(arr)
    return np.minimum(first, np.minimum(lengths[1:], lengths[:-1])).astype(np.int64)


def variation_bits(values: pd.Series, groups: pd.Series, per_char: pd.Series
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(bits, others) per value: bits in the characters where the value differs from the
    other values of its group (a host), and how many other values that estimate rests on (0:
    only its length and alphabet bound it). Neighbours in sorted order share the longest
    prefix; in sorted order of the reversed strings, the longest suffix."""
    n = len(values)
    text = values.astype(str).to_numpy(dtype=object)
    grp = groups.to_numpy()
    prefix = np.zeros(n, dtype=np.int64)
    suffix = np.zeros(n, dtype=np.int64)
    if n:
        raw = [v.encode("utf-8", "surrogatepass")[:_PREFIX_WIDTH] for v in text]
        rev = [v[::-1].encode("utf-8", "surrogatepass")[:_PREFIX_WIDTH] for v in text]
        for keys, out in ((raw, prefix), (rev, suffix)):
            arr = np.array(keys, dtype=f"S{_PREFIX_WIDTH}")
            order = np.lexsort((arr, grp))
            common = _adjacent_common(arr[order])
            same = grp[order][1:] == grp[order][:-1]
            common = np.where(same, common, 0)
            np.maximum.at(out, order[1:], common)
            np.maximum.at(out, order[:-1], common)
    length = np.array([len(v) for v in text], dtype=np.int64)
    varying = np.maximum(length - prefix - suffix, 0)
    varying = np.where(prefix + suffix >= length, np.minimum(length, 1), varying)
    others = pd.Series(grp).map(pd.Series(grp).value_counts()).to_numpy() - 1
    bits = np.where(others > 0, varying, length) * per_char.to_numpy(dtype=float)
    return np.round(bits, 1), others
