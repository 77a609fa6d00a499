"""Normalise an exchanges DataFrame once, so every detector reads the same derived columns.

Adds: ``resource`` (the URL the verdicts group by, optionally without named query parameters),
``ok`` (a real network response: status 1xx-5xx and not served from the browser cache),
``tag`` (opaque ETag, lenient), ``inm_tag`` (first If-None-Match tag, lenient), ``content_key``
(what identifies the body: its hash, else size and type), ``backend_key`` (which server or
backend answered) and ``xid`` (the exchange's ``source`` reference used by findings).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from analysis.exchange import COLUMNS

#: Lenient opaque-tag extraction: optional W/, optional quotes, stops at a comma.
_TAG_RE = r'^\s*(?:[Ww]/)?\s*"?([^",]*)"?'


def _opaque(values: pd.Series) -> pd.Series:
    """Opaque tag of a field value (first member of a list), computed once per distinct value."""
    uniq = values.dropna().unique()
    if len(uniq) == 0:
        return pd.Series(np.nan, index=values.index, dtype=object)
    mapping = pd.Series(uniq).str.extract(_TAG_RE, expand=False).str.strip()
    mapping = mapping.where(mapping != "", None)
    return values.map(dict(zip(uniq, mapping, strict=True)))


def strip_query_params(urls: pd.Series, names: Iterable[str]) -> pd.Series:
    """URLs without the named query parameters (and without fragments), per distinct URL."""
    names = [n for n in names if n]
    uniq = pd.Series(urls.dropna().unique())
    cleaned = uniq.str.replace(r"#.*$", "", regex=True)
    if names:
        alt = "|".join(re.escape(n) for n in names)
        cleaned = cleaned.str.replace(rf"(?<=[?&])(?:{alt})(?:=[^&]*)?(?:&|$)", "", regex=True)
        cleaned = cleaned.str.replace(r"[?&]$", "", regex=True)
    return urls.map(dict(zip(uniq, cleaned, strict=True)))


def prepare(df: pd.DataFrame, *, ignore_params: Iterable[str] = ()) -> pd.DataFrame:
    """A copy of ``df`` with every exchange column present and the derived columns added,
    sorted by resource and start time (the order the time-based detectors need)."""
    out = df.copy()
    for col in COLUMNS:
        if col not in out.columns:
            out[col] = None
    for col in out.columns:  # nullable dtypes (the store's) to numpy ones the masks expect
        kind = str(out[col].dtype)
        if kind in ("Int64", "Int32", "Float64"):
            out[col] = out[col].astype("float64")
        elif kind == "boolean":
            out[col] = out[col].astype(object).where(out[col].notna(), None)
    if "id" not in out.columns:
        out["id"] = np.arange(len(out))
    out["resource"] = strip_query_params(out["url"].astype(object), ignore_params)
    out["host"] = out["host"].fillna(out["url"].str.extract(r"^[a-z]+://([^/:?#]+)", expand=False))
    status = pd.to_numeric(out["status"], errors="coerce")
    out["status"] = status
    from_cache = out["from_cache"].fillna(False).astype(bool)
    out["ok"] = (status.between(100, 599) & ~from_cache).astype(bool)
    out["method"] = out["method"].fillna("GET").str.upper()
    tag = out["etag_opaque"].astype(object)
    missing = tag.isna() & out["etag"].notna()
    if missing.any():
        tag = tag.where(~missing, _opaque(out["etag"].astype(object)))
    out["tag"] = tag.where(tag != "", None)
    out["inm_tag"] = _opaque(out["req_if_none_match"].astype(object))
    weak = out["etag_weak"]
    out["etag_weak"] = weak.where(weak.notna(), out["etag"].str.match(r"\s*[Ww]/").fillna(False))
    size = pd.to_numeric(out["content_size"], errors="coerce").fillna(
        pd.to_numeric(out["body_size"], errors="coerce").where(status != 304)
    )
    out["content_size"] = size
    by_size = ("size:" + size.astype("Int64").astype(str) + ";" + out["content_type"].fillna("?"))
    by_size = by_size.where(size.notna() & (size > 0) & (status != 304))
    out["content_key"] = out["content_hash"].where(out["content_hash"].notna(), by_size)
    out["content_key"] = out["content_key"].where(~(status == 304), None)
    out["backend_key"] = out["backend"].fillna("") + "|" + out["server_ip"].fillna("")
    out["backend_key"] = out["backend_key"].where(out["backend_key"] != "|", None)
    ref = out["source"].fillna("?").astype(str)
    entry = out["entry_index"].astype("Int64").astype(str)
    fid = out["flow_id"].astype(str)
    out["xid"] = np.where(
        out["entry_index"].notna(), ref + "#" + entry,
        np.where(out["flow_id"].notna(), ref + "@" + fid, ref),
    )
    out["started"] = pd.to_numeric(out["started"], errors="coerce")
    out["_order"] = np.arange(len(out))
    out = out.sort_values(["resource", "started", "_order"], na_position="last", kind="stable")
    out = out.reset_index(drop=True)
    # grouping keys as categoricals: every detector groups by them, and grouping on codes
    # instead of hashing strings again is what keeps a million exchanges in seconds
    for col in ("resource", "client", "content_key", "backend_key"):
        out[col] = out[col].astype("category")
    return out
