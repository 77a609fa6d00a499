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

from analysis.detectors.backends import node_hints
from analysis.detectors.codes import (
    MISSING,
    as_object,
    factorize,
    map_codes,
    map_distinct,
    recode,
    take,
)
from analysis.exchange import COLUMNS
from analysis.urlparts import HOST_IN_URL

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


def _content_key(out: pd.DataFrame, status: np.ndarray, method: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Codes and values of what identifies a representation's body (see module docstring)."""
    body_size = _numeric(out, "body_size")
    size = _numeric(out, "content_size")
    size = np.where(np.isnan(size) & (status != 304), body_size, size)
    out["content_size"] = size
    codes, values = factorize(out["content_hash"])
    by_size = (codes < 0) & (size > 0) & (status != 304)
    if by_size.any():
        ctype = as_object(out["content_type"])[by_size]
        ctype = np.where(pd.isna(ctype), "?", ctype)
        keys = ("size:" + pd.Series(size[by_size].astype(np.int64)).astype(str)
                + ";" + pd.Series(ctype, dtype=object)).to_numpy(dtype=object)
        kcodes, kvalues = factorize(keys)
        vocab = pd.Index(pd.unique(np.concatenate([values, kvalues])), dtype=object)
        codes = recode(codes, values, vocab)
        codes[by_size] = recode(kcodes, kvalues, vocab)
        values = np.asarray(vocab, dtype=object)
    representation = (status >= 200) & (status <= 299) & (status != 206) & (method != "HEAD")
    codes[~representation] = MISSING
    return codes, values


def _size_key(out: pd.DataFrame, ckid: np.ndarray) -> np.ndarray:
    """Codes of (size, content type) for every representation body whose size is known: the
    weak content key, used for a whole resource when some of its bodies were not hashed (a
    body hash compared with a size says nothing)."""
    size = out["content_size"].to_numpy(dtype=float)
    ctype = as_object(out["content_type"])
    keep = (ckid >= 0) & ~np.isnan(size)
    codes = np.full(len(out), MISSING, dtype=np.int64)
    if keep.any():
        type_code, _ = factorize(ctype[keep])  # -1 (no type) is a value of its own here
        size_code, _ = pd.factorize(size[keep].astype(np.int64))
        codes[keep] = pd.factorize(size_code.astype(np.int64) * (int(type_code.max()) + 2)
                                   + type_code + 1)[0]
    return codes


def _repeated_responses(out: pd.DataFrame, rid: np.ndarray, status: np.ndarray) -> pd.Series:
    """Entries that repeat an earlier response of the same resource: the same per-request id
    (X-Request-Id, CF-Ray, X-Amz-Cf-Id, X-Served-By with X-Timer, ...: ``response_id``) and the
    same Date. Browsers (IE / Edge, old Chrome) list cache hits so, as 304s or 200s; they are
    capture artefacts, not answers of the server."""
    resp_id = as_object(out["response_id"])
    cand = ~pd.isna(resp_id) & (rid >= 0) & (((status >= 200) & (status <= 299)) | (status == 304))
    flags = np.zeros(len(out), dtype=bool)
    if cand.any():
        rows = np.flatnonzero(cand)
        date = as_object(out["date"])[rows]
        keys = pd.DataFrame({"rid": rid[rows], "id": resp_id[rows],
                             "date": np.where(pd.isna(date), "", date)})
        flags[rows] = keys.duplicated(keep="first").to_numpy()
    return pd.Series(flags, index=out.index)


def _credentials(out: pd.DataFrame) -> np.ndarray:
    """Requests that carried a Cookie or Authorization (a signed-in client can get content
    of its own without any tracking)."""
    cookies = ~pd.isna(as_object(out["cookies_sent"]))
    # header names are stored lower-case (analysis.headers), values of these hashed
    auth = np.fromiter((isinstance(h, str) and '"authorization"' in h
                        for h in as_object(out["req_headers"])), dtype=bool, count=len(out))
    return cookies | auth


def _backend_key(out: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Codes and values of ``backend|server_ip`` (built once per distinct pair), the backend
    hints without their per-request parts (analysis.detectors.backends.node_hints)."""
    bcodes, bvals = factorize(out["backend"])
    bcodes, bvals = map_codes(bcodes, bvals, lambda s: s.map(node_hints))
    scodes, svals = factorize(out["server_ip"])
    width = len(svals) + 1
    pair_codes, pairs = pd.factorize((bcodes + 1) * width + (scodes + 1))
    b_of = take(bvals, pairs // width - 1, "")
    s_of = take(svals, pairs % width - 1, "")
    names = np.array([f"{b}|{s}" for b, s in zip(b_of, s_of, strict=True)], dtype=object)
    names[names == "|"] = None
    ncodes, nvalues = factorize(names, sort=True)
    return np.append(ncodes, MISSING)[pair_codes], nvalues


def _tags(out: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Codes and values of the opaque ETag: the record's, else a lenient parse of the field."""
    codes, values = factorize(out["etag_opaque"])
    missing = np.flatnonzero(codes < 0)
    if len(missing):
        raw = as_object(out["etag"])[missing]
        has = ~pd.isna(raw)
        if has.any():
            tag = take(values, codes)
            tag[missing[has]] = _opaque(raw[has])
            codes, values = factorize(tag)
    if "" in set(values):
        empty = int(np.flatnonzero(values == "")[0])
        codes = np.where(codes == empty, MISSING, codes)
    return codes, values


def prepare(df: pd.DataFrame, *, ignore_params: Iterable[str] = ()) -> pd.DataFrame:
    """A copy of ``df`` with every exchange column present and the derived columns added,
    sorted by resource and start time (the order the time-based detectors need)."""
    n = len(df)
    # sort first: one take of the input, every derived column is computed in final order
    url = as_object(df["url"]) if "url" in df.columns else np.full(n, None, dtype=object)
    ucodes, uurls = factorize(url)
    rid, resources = map_codes(ucodes, uurls, lambda u: strip_query_params(u, ignore_params),
                               sort=True)
    started = _numeric(df, "started") if "started" in df.columns else np.full(n, np.nan)
    order = _sort_order(rid, started)
    # column by column: a take of the whole frame walks each consolidated 2-D block across its
    # rows, about twice the time of one contiguous take per column
    out = pd.DataFrame({col: df[col].take(order).reset_index(drop=True) for col in df.columns},
                       columns=df.columns, copy=False)
    rid, ucodes, started = rid[order], ucodes[order], started[order]

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
        out["id"] = order

    out["rid"] = rid
    out["resource"] = pd.Categorical.from_codes(rid, categories=pd.Index(resources, dtype=object))
    out["started"] = started
    hid, hosts = factorize(out["host"])
    if (hid < 0).any():  # host from the URL where the record has none
        from_url, url_hosts = map_codes(ucodes, uurls, lambda u: u.str.extract(
            HOST_IN_URL.pattern, expand=False))
        host = take(hosts, hid)
        fill = (hid < 0) & (from_url >= 0)
        host[fill] = take(url_hosts, from_url[fill])
        out["host"] = pd.Series(host, dtype=object)
        hid, hosts = factorize(host)
    out["hid"] = hid
    status = _numeric(out, "status")
    out["status"] = status
    from_cache = out["from_cache"].fillna(False).astype(bool).to_numpy()
    out["artefact"] = _repeated_responses(out, rid, status)
    out["ok"] = (status >= 100) & (status <= 599) & ~from_cache & ~out["artefact"].to_numpy()
    out["credentials"] = _credentials(out)
    fpid, _ = factorize(out["first_party"])
    out["fpid"] = fpid
    mcodes, methods = factorize(out["method"])
    mcodes, methods = map_codes(mcodes, methods, lambda s: s.str.upper())
    method = take(methods, mcodes, "GET")
    out["method"] = pd.Series(method, dtype=object)

    tcodes, tvals = _tags(out)
    out["tag"] = pd.Series(take(tvals, tcodes), dtype=object)
    icodes, ivals = factorize(out["req_if_none_match"])
    icodes, ivals = map_codes(icodes, ivals, _opaque_of)
    out["inm_tag"] = pd.Series(take(ivals, icodes), dtype=object)
    if out["etag_weak"].dtype.kind != "b":
        weak = out["etag_weak"].astype(object).to_numpy()
        no_weak = pd.isna(weak)
        if no_weak.any():
            weak = weak.copy()
            guessed = map_distinct(as_object(out["etag"])[no_weak],
                                   lambda s: s.str.match(r"\s*[Ww]/"))
            weak[no_weak] = np.where(pd.isna(guessed), False, guessed)
        out["etag_weak"] = pd.Series(weak, dtype=object)

    ckid, ckeys = _content_key(out, status, method)
    out["content_key"] = pd.Categorical.from_codes(ckid, categories=pd.Index(ckeys, dtype=object))
    out["ckid"] = ckid
    # like with like: the same keys by body hash only (-1 where no body was hashed)
    out["hkid"] = np.where(~pd.isna(as_object(out["content_hash"])), ckid, MISSING)
    out["zkid"] = _size_key(out, ckid)
    bkid, bkeys = _backend_key(out)
    out["backend_key"] = pd.Categorical.from_codes(bkid, categories=pd.Index(bkeys, dtype=object))
    out["bkid"] = bkid
    cid, clients = factorize(out["client"], sort=True)
    out["client"] = pd.Categorical.from_codes(cid, categories=pd.Index(clients, dtype=object))
    out["cid"] = cid

    values = pd.Index(pd.unique(np.concatenate([tvals, ivals])), dtype=object)
    out["tid"] = recode(tcodes, tvals, values)
    out["sid"] = recode(icodes, ivals, values)
    lcodes, lvals = factorize(out["last_modified"])
    mcodes, mvals = factorize(out["req_if_modified_since"])
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
