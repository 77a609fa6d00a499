"""Normalise an exchanges DataFrame once, so every detector reads the same derived columns.

Adds: ``resource`` (the URL the verdicts group by, optionally without named query parameters),
``ok`` (a real network response: status 1xx-5xx and not served from the browser cache),
``tag`` (opaque ETag, lenient), ``inm_tag`` (first If-None-Match tag, lenient), ``content_key``
(what identifies the representation's body: its hash, else size and type; None for bodies that
are not a representation: HEAD, 206, 304 and non-2xx responses) and ``backend_key`` (which
server or backend answered).

Every grouping key is also factorized once into int64 codes (-1 = missing), which the detectors
group on (see analysis.detectors.codes): ``rid`` (resource, in sorted order), ``cid`` (client),
``hid`` (host), ``tid`` / ``sid`` (ETag / If-None-Match opaque tag, one vocabulary),
``lid`` / ``iid`` (Last-Modified / If-Modified-Since, one vocabulary), ``ckid``
(content key) and ``bkid`` (backend key); ``vocabularies`` turns value codes back into text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from analysis.detectors.codes import MISSING, as_object, factorize, map_distinct, recode
from analysis.exchange import COLUMNS

#: Lenient opaque-tag extraction: optional W/, optional quotes, stops at a comma.
_TAG_RE = r'^\s*(?:[Ww]/)?\s*"?([^",]*)"?'
#: Columns whose presence marks a frame that went through prepare.
PREPARED_MARKERS = ("rid", "resource", "tid")


def _opaque_of(uniq: pd.Series) -> pd.Series:
    tags = uniq.str.extract(_TAG_RE, expand=False).str.strip()
    return tags.where(tags != "", None)


def _opaque(values: np.ndarray) -> np.ndarray:
    """Opaque tag of a field value (first member of a list), computed once per distinct value."""
    return map_distinct(values, _opaque_of)


def strip_query_params(urls: pd.Series, names: Iterable[str]) -> pd.Series:
    """URLs without the named query parameters (and without fragments), per distinct URL."""
    names = [n for n in names if n]
    uniq = pd.Series(urls.dropna().unique(), dtype=object)
    cleaned = uniq.str.replace(r"#.*$", "", regex=True)
    if names:
        alt = "|".join(re.escape(n) for n in names)
        cleaned = cleaned.str.replace(rf"(?<=[?&])(?:{alt})(?:=[^&]*)?(?:&|$)", "", regex=True)
        cleaned = cleaned.str.replace(r"[?&]$", "", regex=True)
    return urls.map(dict(zip(uniq, cleaned, strict=True)))


def is_prepared(df: pd.DataFrame) -> bool:
    return all(c in df.columns for c in PREPARED_MARKERS)


def _numeric(df: pd.DataFrame, col: str) -> np.ndarray:
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _sort_order(rid: np.ndarray, started: np.ndarray) -> np.ndarray:
    """Rows by resource (sorted, missing last), then start time (missing last), then input order."""
    n = len(rid)
    rkey = np.where(rid >= 0, rid, np.iinfo(np.int64).max)
    nan = np.isnan(started)
    return np.lexsort((np.arange(n), np.where(nan, 0.0, started), nan, rkey))


def _codes_in(vocab: pd.Index, values: np.ndarray) -> np.ndarray:
    codes, uniq = factorize(values)
    return recode(codes, uniq, vocab)


def prepare(df: pd.DataFrame, *, ignore_params: Iterable[str] = ()) -> pd.DataFrame:
    """A copy of ``df`` with every exchange column present and the derived columns added,
    sorted by resource and start time (the order the time-based detectors need)."""
    n = len(df)
    # sort first: one take of the input, every derived column is computed in final order
    url = as_object(df["url"]) if "url" in df.columns else np.full(n, None, dtype=object)
    ucodes, uurls = factorize(url)
    res_of_url = as_object(strip_query_params(pd.Series(uurls, dtype=object), ignore_params))
    rcodes, resources = factorize(res_of_url, sort=True)
    rid = np.append(rcodes, MISSING)[ucodes]
    started = _numeric(df, "started") if "started" in df.columns else np.full(n, np.nan)
    order = _sort_order(rid, started)
    out = df.take(order).reset_index(drop=True)
    rid, url, started = rid[order], url[order], started[order]

    for col in COLUMNS:
        if col not in out.columns:
            out[col] = None
    for col in out.columns:  # nullable dtypes (the store's) and pandas 3 str to numpy ones
        kind = str(out[col].dtype)
        if kind in ("Int64", "Int32", "Float64"):
            out[col] = out[col].astype("float64")
        elif kind == "boolean":
            out[col] = out[col].astype(object).where(out[col].notna(), None)
        elif kind in ("str", "string"):
            out[col] = pd.Series(as_object(out[col]), dtype=object)
    if "id" not in out.columns:
        out["id"] = order
    obj = {c: as_object(out[c]) for c in (
        "host", "method", "etag", "etag_opaque", "req_if_none_match", "last_modified",
        "req_if_modified_since", "content_hash", "content_type", "backend", "server_ip",
        "client")}

    out["rid"] = rid
    out["resource"] = pd.Categorical.from_codes(rid, categories=pd.Index(resources, dtype=object))
    out["started"] = started
    host = obj["host"]
    no_host = pd.isna(host)
    if no_host.any():
        host = host.copy()
        host[no_host] = as_object(pd.Series(url[no_host], dtype=object).str.extract(
            r"^[a-z]+://([^/:?#]+)", expand=False))
    out["host"] = pd.Series(host, dtype=object)
    hcodes, _ = factorize(host, sort=True)
    out["hid"] = hcodes
    status = _numeric(out, "status")
    out["status"] = status
    from_cache = out["from_cache"].fillna(False).astype(bool).to_numpy()
    out["ok"] = (status >= 100) & (status <= 599) & ~from_cache
    method = map_distinct(obj["method"], lambda s: s.str.upper())
    method[pd.isna(method)] = "GET"
    out["method"] = pd.Series(method, dtype=object)

    tag = obj["etag_opaque"]
    missing = pd.isna(tag) & ~pd.isna(obj["etag"])
    if missing.any():
        tag = tag.copy()
        tag[missing] = _opaque(obj["etag"][missing])
    tag = np.where(tag == "", None, tag)
    inm_tag = _opaque(obj["req_if_none_match"])
    out["tag"] = pd.Series(tag, dtype=object)
    out["inm_tag"] = pd.Series(inm_tag, dtype=object)
    weak = out["etag_weak"].astype(object).to_numpy()
    no_weak = pd.isna(weak)
    if no_weak.any():
        weak = weak.copy()
        guessed = map_distinct(obj["etag"][no_weak], lambda s: s.str.match(r"\s*[Ww]/"))
        weak[no_weak] = np.where(pd.isna(guessed), False, guessed)
    out["etag_weak"] = pd.Series(weak, dtype=object)

    body_size = _numeric(out, "body_size")
    size = _numeric(out, "content_size")
    size = np.where(np.isnan(size) & (status != 304), body_size, size)
    out["content_size"] = size
    key = obj["content_hash"].copy()
    by_size = pd.isna(key) & ~np.isnan(size) & (size > 0) & (status != 304)
    if by_size.any():
        ctype = obj["content_type"][by_size]
        ctype = np.where(pd.isna(ctype), "?", ctype)
        key[by_size] = ("size:" + pd.Series(size[by_size].astype(np.int64)).astype(str)
                        + ";" + pd.Series(ctype, dtype=object)).to_numpy(dtype=object)
    representation = (status >= 200) & (status <= 299) & (status != 206) & (method != "HEAD")
    key[~representation] = None
    ckid, ckeys = factorize(key, sort=True)
    out["content_key"] = pd.Categorical.from_codes(ckid, categories=pd.Index(ckeys, dtype=object))
    out["ckid"] = ckid

    bcodes, bvals = factorize(obj["backend"])
    scodes, svals = factorize(obj["server_ip"])
    pair_codes, pairs = pd.factorize(
        (bcodes + 1) * (len(svals) + 1) + (scodes + 1), sort=False)
    b_of = np.append(bvals, "")[(pairs // (len(svals) + 1)) - 1]
    s_of = np.append(svals, "")[(pairs % (len(svals) + 1)) - 1]
    names = np.array([f"{b}|{s}" for b, s in zip(b_of, s_of, strict=True)], dtype=object)
    names[names == "|"] = None
    backend_key = names[pair_codes] if len(names) else np.full(n, None, dtype=object)
    bkid, bkeys = factorize(backend_key, sort=True)
    out["backend_key"] = pd.Categorical.from_codes(bkid, categories=pd.Index(bkeys, dtype=object))
    out["bkid"] = bkid

    cid, clients = factorize(obj["client"], sort=True)
    out["client"] = pd.Categorical.from_codes(cid, categories=pd.Index(clients, dtype=object))
    out["cid"] = cid

    tcodes, tvals = factorize(tag)
    icodes, ivals = factorize(inm_tag)
    values = pd.Index(pd.unique(np.concatenate([tvals, ivals])), dtype=object)
    out["tid"] = recode(tcodes, tvals, values)
    out["sid"] = recode(icodes, ivals, values)
    lcodes, lvals = factorize(obj["last_modified"])
    mcodes, mvals = factorize(obj["req_if_modified_since"])
    dates = pd.Index(pd.unique(np.concatenate([lvals, mvals])), dtype=object)
    out["lid"] = recode(lcodes, lvals, dates)
    out["iid"] = recode(mcodes, mvals, dates)
    return out


def vocabularies(ex: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(values, dates): the strings behind the ``tid``/``sid`` and ``lid``/``iid`` codes, rebuilt
    from the frame's own columns (no side table to lose on the way)."""
    out = []
    for (a, sa), (b, sb) in ((("tid", "tag"), ("sid", "inm_tag")),
                             (("lid", "last_modified"), ("iid", "req_if_modified_since"))):
        ca, cb = ex[a].to_numpy(), ex[b].to_numpy()
        size = int(max(ca.max(initial=-1), cb.max(initial=-1))) + 1
        vocab = np.full(size, None, dtype=object)
        vocab[ca[ca >= 0]] = ex[sa].to_numpy(dtype=object)[ca >= 0]
        vocab[cb[cb >= 0]] = ex[sb].to_numpy(dtype=object)[cb >= 0]
        out.append(vocab)
    return out[0], out[1]


def exchange_refs(rows: pd.DataFrame) -> np.ndarray:
    """``file#entry``, ``file@flow-id`` or the source alone: where a finding's exchange is."""
    ref = rows["source"].fillna("?").astype(str).to_numpy(dtype=object)
    entry = rows["entry_index"].to_numpy(dtype=object)
    fid = rows["flow_id"].to_numpy(dtype=object)
    out = []
    for r, e, f in zip(ref, entry, fid, strict=True):
        if not pd.isna(e):
            out.append(f"{r}#{int(e)}")
        elif not pd.isna(f):
            out.append(f"{r}@{f}")
        else:
            out.append(r)
    return np.array(out, dtype=object)


__all__ = ["MISSING", "exchange_refs", "is_prepared", "prepare", "strip_query_params",
           "vocabularies"]
