"""Integer codes and grouped counts in numpy: the detectors' hot path.

Grouping a million rows on text keys (URL, client, ETag value) makes pandas hash every string
again for every groupby, drop_duplicates and merge; that was most of the detectors' time.
``prepare`` factorizes each key once into int64 codes (-1 = missing), and the detectors count
over those codes with the helpers here (sorting / bincount on int64, no Python loop per row).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

MISSING = -1


def as_object(values: pd.Series | np.ndarray) -> np.ndarray:
    """An object ndarray of the values; missing ones stay None or NaN (test with pd.isna).
    Not normalised on purpose: every pass over a million Python objects costs ~50 ms."""
    return np.asarray(values, dtype=object)


#: Below this many values, hashing the objects directly costs less than the identity pass.
_BY_IDENTITY_FROM = 4096


def _identities(arr: np.ndarray) -> np.ndarray:
    """The address of each object of a C-contiguous object ndarray (``id`` of each value,
    read from the array's own buffer without a Python call per row)."""
    return np.frombuffer(memoryview(arr).cast("B"), dtype=np.intp)


def factorize(values: pd.Series | np.ndarray, *, sort: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(int64 codes with -1 for missing, object ndarray of the distinct values), exactly as
    ``pd.factorize``. Text columns repeat the same string objects (the store loader keeps one
    object per distinct value in a chunk), so the rows are grouped by object identity first,
    an int64 hash, and only the distinct objects are hashed and compared by value: codes and
    values come out in the same first-seen (or sorted) order."""
    arr = np.ascontiguousarray(np.asarray(values, dtype=object))
    if len(arr) < _BY_IDENTITY_FROM:
        codes, uniques = pd.factorize(arr, sort=sort)
        return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=object)
    ident, _ = pd.factorize(_identities(arr))
    first = np.empty(int(ident.max()) + 1, dtype=np.int64)
    first[ident[::-1]] = np.arange(len(arr) - 1, -1, -1)  # first row holding each object
    codes, uniques = pd.factorize(arr[first], sort=sort)
    return codes.astype(np.int64, copy=False)[ident], np.asarray(uniques, dtype=object)


def map_distinct(values: np.ndarray, fn: Callable[[pd.Series], pd.Series]) -> np.ndarray:
    """``fn`` (a vectorised function of a Series) applied once per distinct value."""
    codes, uniques = factorize(values)
    if len(uniques) == 0:
        return np.full(len(values), None, dtype=object)
    mapped = fn(pd.Series(uniques, dtype=object)).to_numpy(dtype=object)
    out = np.append(mapped, None)  # code -1 takes the last slot: None
    return out[codes]


def map_codes(codes: np.ndarray, uniques: np.ndarray, fn: Callable[[pd.Series], pd.Series],
              *, sort: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Codes and distinct values of ``fn`` applied to factorized values, computed on the
    distinct values only (missing results become -1)."""
    if len(uniques) == 0:
        return np.full(len(codes), MISSING, dtype=np.int64), np.array([], dtype=object)
    mapped = fn(pd.Series(uniques, dtype=object)).to_numpy(dtype=object)
    table, values = factorize(mapped, sort=sort)
    return np.append(table, MISSING)[codes], values


def take(uniques: np.ndarray, codes: np.ndarray, missing: object = None) -> np.ndarray:
    """The values behind codes (``missing`` for -1), as an object ndarray."""
    return np.append(np.asarray(uniques, dtype=object), missing)[codes]


def recode(codes: np.ndarray, old: np.ndarray, vocabulary: pd.Index) -> np.ndarray:
    """Codes into ``old`` re-expressed as positions in ``vocabulary`` (-1 stays -1)."""
    if len(old) == 0:
        return np.full(len(codes), MISSING, dtype=np.int64)
    table = np.append(vocabulary.get_indexer(old).astype(np.int64), MISSING)
    return table[codes]


def pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense int64 code of the pair (a, b) of non-negative codes (-1 if either is missing)."""
    width = int(b.max()) + 1 if len(b) else 1
    combined = a.astype(np.int64) * width + b
    combined[(a < 0) | (b < 0)] = MISSING
    codes, _ = pd.factorize(combined, use_na_sentinel=False)
    codes = codes.astype(np.int64)
    codes[(a < 0) | (b < 0)] = MISSING
    return codes


def count(group: np.ndarray, n_groups: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Rows per group (only rows where ``mask``)."""
    g = group if mask is None else group[mask]
    return np.bincount(g[g >= 0], minlength=n_groups)


def nunique(group: np.ndarray, x: np.ndarray, n_groups: int,
            mask: np.ndarray | None = None) -> np.ndarray:
    """Distinct non-missing ``x`` per group (only rows where ``mask``)."""
    keep = (group >= 0) & (x >= 0)
    if mask is not None:
        keep &= mask
    width = int(x[keep].max()) + 1 if keep.any() else 1
    distinct = pd.unique(group[keep].astype(np.int64) * width + x[keep])
    return np.bincount(distinct // width, minlength=n_groups)


def group_of_pair(group: np.ndarray, p: np.ndarray, n_pairs: int) -> np.ndarray:
    """For dense pair codes ``p`` built on ``group``: the group of each pair code."""
    out = np.full(n_pairs, MISSING, dtype=np.int64)
    keep = p >= 0
    out[p[keep]] = group[keep]
    return out


def gmax(group: np.ndarray, values: np.ndarray, n_groups: int, fill: float = 0) -> np.ndarray:
    """Maximum per group (``fill`` for empty groups)."""
    keep = group >= 0
    s = pd.Series(values[keep]).groupby(group[keep]).max()
    out = np.full(n_groups, fill, dtype=float)
    out[s.index.to_numpy()] = s.to_numpy()
    return out


def first_index(group: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(groups in ascending order, row index of each group's first row where ``mask``)."""
    rows = np.flatnonzero(group >= 0 if mask is None else (group >= 0) & mask)
    if len(rows) == 0:
        return rows, rows
    end = np.iinfo(np.int64).max
    first = np.full(int(group[rows].max()) + 1, end, dtype=np.int64)
    np.minimum.at(first, group[rows], rows)
    groups = np.flatnonzero(first < end)
    return groups, first[groups]


def last_before(mask: np.ndarray, group: np.ndarray, *, inclusive: bool = False) -> np.ndarray:
    """For each row of a frame sorted by ``group``: the index of the last earlier row of the same
    group where ``mask`` holds (the row itself too when ``inclusive``), else -1."""
    n = len(mask)
    idx = np.where(mask, np.arange(n), MISSING)
    last = np.maximum.accumulate(idx) if n else idx
    if not inclusive:
        last = np.concatenate(([MISSING], last[:-1])) if n else last
    found = last >= 0
    same = np.zeros(n, dtype=bool)
    same[found] = group[last[found]] == group[found]
    return np.where(same & (group >= 0), last, MISSING)
