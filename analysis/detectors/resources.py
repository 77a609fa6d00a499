"""Per-resource features of validators: who saw which value, how stable, over what content.

One row per (resource, validator) where validator is ``etag`` or ``last-modified``: the same
reasoning (stable within a client? unique across clients? tied to backends? tied to content?)
applies to both. Everything is a count over a long frame of validator observations, keyed by the
integer codes ``prepare`` made (analysis.detectors.codes), never by text.

Stability within a client tolerates re-identification: a browser sometimes refetches without
conditions (hard reload, cache eviction) and a tracker then hands it a new id. A client counts
as stable when it held one value, or when every change of value came on an unconditional request
(never as the answer to a request presenting a value) and every later value was itself kept with a
304 (``reidentified_clients``). A server that refuses its own validators is never stable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.detectors import codes as C
from analysis.detectors.prepare import vocabularies
from analysis.detectors.shapes import (
    KNOWN_SERVER_FORMATS,
    etag_shapes,
    format_candidates,
    variation_bits,
    verify_format,
)
from analysis.digests import NO_MATCH

KEY = ["resource", "validator"]
VALIDATORS = ("etag", "last-modified")

#: Cache-Control directives that make every reuse a revalidation (a tracker's friend).
_FORCED_REVALIDATION = r"no-cache|max-age\s*=\s*0\b"


def observations(ex: pd.DataFrame) -> pd.DataFrame:
    """Long frame: one row per (exchange, validator kind) the exchange tells something about.

    ``val`` is the code of the value the client holds after the exchange: the response's
    validator, or for a 304 without one, the value the client revalidated (it keeps it); ``sent``
    the value the request presented. Value codes of both validators share one space (Last-Modified
    codes are offset), ``k`` = 2 * resource code + validator (0 etag, 1 last-modified)."""
    status = ex["status"].to_numpy(dtype=float)
    is304 = status == 304
    resp = ex["ok"].to_numpy(dtype=bool) & (((status >= 200) & (status <= 299)) | is304)
    rows = np.flatnonzero(resp)
    values, _ = vocabularies(ex)
    offset = len(values)
    parts = []
    for v, (own, sent_col) in enumerate((("tid", "sid"), ("lid", "iid"))):
        own_c = ex[own].to_numpy()[rows]
        sent = ex[sent_col].to_numpy()[rows]
        r304 = is304[rows]
        val = np.where((own_c >= 0) | ~r304, own_c, sent)
        keep = val >= 0
        if v == 1:
            val = np.where(val >= 0, val + offset, C.MISSING)
            sent = np.where(sent >= 0, sent + offset, C.MISSING)
        parts.append((v, rows[keep], val[keep], sent[keep], (own_c >= 0)[keep]))
    row = np.concatenate([p[1] for p in parts])
    v = np.concatenate([np.full(len(p[1]), p[0], dtype=np.int64) for p in parts])
    rid = ex["rid"].to_numpy()[row]
    st = status[row]
    obs = pd.DataFrame({
        "row": row, "id": ex["id"].to_numpy()[row], "k": np.where(rid >= 0, rid * 2 + v, -1),
        "rid": rid, "v": v, "cid": ex["cid"].to_numpy()[row], "hid": ex["hid"].to_numpy()[row],
        "status": st, "started": ex["started"].to_numpy(dtype=float)[row],
        "ckid": ex["ckid"].to_numpy()[row], "bkid": ex["bkid"].to_numpy()[row],
        "val": np.concatenate([p[2] for p in parts]),
        "sent": np.concatenate([p[3] for p in parts]),
        "from_header": np.concatenate([p[4] for p in parts]),
    })
    for col in ("fpid", "hkid", "zkid", "lid"):
        obs[col] = ex[col].to_numpy()[row]
    obs["cred"] = ex["credentials"].to_numpy(dtype=bool)[row]
    digest = ex["etag_digest"].to_numpy(dtype=object)[row]
    tested = ~pd.isna(digest) & (v == 0)
    obs["digest"] = np.where(tested, np.where(digest == NO_MATCH, 0, 1), -1)
    obs["digest_kind"] = np.where(obs["digest"].to_numpy() == 1, digest, None)
    obs["csize"] = pd.to_numeric(ex["content_size"], errors="coerce").to_numpy(dtype=float)[row]
    # the record's own parse (every source fills it; NaN where the date is invalid)
    obs["lmts"] = pd.to_numeric(ex["last_modified_ts"], errors="coerce").to_numpy(dtype=float)[row]
    tp = ex["third_party"].to_numpy(dtype=object)[row]
    obs["third_party"] = np.where(pd.isna(tp), False, tp).astype(bool)
    obs["body_size"] = pd.to_numeric(ex["body_size"], errors="coerce").to_numpy(dtype=float)[row]
    cookie = _hash_match(ex, "cookie_hashes")
    obs["cookie_match"] = np.where(v == 0, cookie[row], False)
    query = _hash_match(ex, "query_hashes")
    obs["query_match"] = np.where(v == 0, query[row], False)
    forced = C.map_distinct(ex["cache_control"].to_numpy(dtype=object),
                            lambda s: s.str.contains(_FORCED_REVALIDATION, case=False))
    obs["forced"] = (forced[row] == True)  # noqa: E712 (None / NaN are False)
    obs["is304"] = st == 304
    obs["issued"] = (st >= 200) & (st <= 299) & obs["from_header"].to_numpy()
    return obs[obs["k"] >= 0].reset_index(drop=True)


#: 2xx statuses that carry no representation body: No Content, Reset Content, Partial Content.
_NO_REPRESENTATION = (204, 205, 206)


def representation_sizes(ex: pd.DataFrame) -> np.ndarray:
    """Median body size per resource code (NaN when unknown), over the 2xx responses that carried
    the representation: never 304s (0 bytes on the wire, which made every often-revalidated large
    file look like a pixel), 204/205/206 or HEAD.

    Per response: the bytes on the wire (``body_size``) when positive, else the decoded size
    (``content_size``: a browser-cache hit or a HAR without transfer sizes still knows how big the
    body is), else 0 only for a real network response (a genuinely empty 200, a beacon); a cache
    hit with no size at all tells nothing. Cache hits count: the size is a property of the
    resource, not of the transfer."""
    rid = ex["rid"].to_numpy()
    n = int(rid.max()) + 1 if len(rid) else 0
    status = ex["status"].to_numpy(dtype=float)
    method = ex["method"].to_numpy(dtype=object)
    rep = ((status >= 200) & (status <= 299) & ~np.isin(status, _NO_REPRESENTATION)
           & (method != "HEAD") & (rid >= 0))
    wire = pd.to_numeric(ex["body_size"], errors="coerce").to_numpy(dtype=float)
    decoded = pd.to_numeric(ex["content_size"], errors="coerce").to_numpy(dtype=float)
    network = ex["ok"].to_numpy(dtype=bool)  # a real response, not a browser-cache hit
    size = np.where(wire > 0, wire,
                    np.where(~np.isnan(decoded), decoded, np.where(network, wire, np.nan)))
    keep = rep & ~np.isnan(size)
    out = np.full(n, np.nan)
    if keep.any():
        med = pd.Series(size[keep]).groupby(rid[keep]).median()
        out[med.index.to_numpy()] = med.to_numpy()
    return out


def _hash_match(ex: pd.DataFrame, column: str) -> np.ndarray:
    """ETag value equal to a cookie value (``cookie_hashes``) or to a query value of the URL
    (``query_hashes``), through the keyed hashes (never the values)."""
    out = np.zeros(len(ex), dtype=bool)
    if column not in ex:
        return out
    h = ex["etag_hash"].to_numpy(dtype=object)
    c = ex[column].to_numpy(dtype=object)
    both = np.flatnonzero(~pd.isna(h) & ~pd.isna(c))
    out[both] = [h[i] in c[i] for i in both]
    return out


def _empty_keyed(columns: list[str]) -> pd.DataFrame:
    index = pd.MultiIndex.from_arrays([[], []], names=KEY)
    return pd.DataFrame(index=index, columns=columns)


def key_index(ex: pd.DataFrame, ks: np.ndarray) -> pd.MultiIndex:
    """(resource, validator) index for codes ``k``."""
    resources = np.asarray(ex["resource"].cat.categories, dtype=object)
    return pd.MultiIndex.from_arrays(
        [resources[ks // 2], np.asarray(VALIDATORS, dtype=object)[ks % 2]], names=KEY)


def value_text(ex: pd.DataFrame, val: np.ndarray) -> np.ndarray:
    """The text behind value codes of observations."""
    values, dates = vocabularies(ex)
    vocab = np.concatenate([values, dates]) if len(dates) else values
    return vocab[val]


def _reflection(ex: pd.DataFrame, obs: pd.DataFrame, g: np.ndarray,
                keys: pd.MultiIndex) -> pd.DataFrame:
    """304s to a value never issued to anyone for the resource, sent by a client that (in the
    capture) held another value, or by a client that sent two different never-issued values.
    A browser only sends the value it stored last, so the server accepted a value it never
    handed out: evercookie's echo."""
    cols = ["reflected_304s", "reflected_values", "reflected_examples"]
    issued = obs["issued"].to_numpy()
    val, sent = obs["val"].to_numpy(), obs["sent"].to_numpy()
    width = int(max(val.max(initial=0), sent.max(initial=0))) + 1
    issued_pairs = np.unique(g[issued] * width + val[issued])
    cand = obs["is304"].to_numpy() & (sent >= 0)
    cand &= ~np.isin(g * width + sent, issued_pairs)
    if not cand.any():
        return _empty_keyed(cols)
    c = pd.DataFrame({"g": g[cand], "cid": obs["cid"].to_numpy()[cand], "sent": sent[cand],
                      "started": obs["started"].to_numpy()[cand]})
    held = pd.DataFrame({"g": g[issued], "cid": obs["cid"].to_numpy()[issued],
                         "held_before": val[issued], "started": obs["started"].to_numpy()[issued]})
    held = held[held["g"].isin(c["g"].unique())].sort_values("started")
    c = pd.merge_asof(c.sort_values("started"), held, on="started", by=["g", "cid"],
                      allow_exact_matches=False)
    per_client = c.groupby(["g", "cid"])["sent"].transform("nunique")
    decisive = (c["held_before"].notna() & (c["held_before"] != c["sent"])) | (per_client >= 2)
    c = c[decisive]
    if c.empty:
        return _empty_keyed(cols)
    c["text"] = value_text(ex, c["sent"].to_numpy())
    out = c.groupby("g").agg(
        reflected_304s=("sent", "size"), reflected_values=("sent", "nunique"),
        reflected_examples=("text", lambda s: list(pd.unique(s))[:3]),
    )
    out.index = keys[out.index.to_numpy()]
    return out


def _stability(obs: pd.DataFrame, g: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Per group: stable_clients (tolerating re-identification), reidentified_clients and
    max_values_per_client, per cache partition: a browser that keys its cache by top-level
    site holds one value per site, which is partitioning at work, not a new identity."""
    val, sent = obs["val"].to_numpy(), obs["sent"].to_numpy()
    cid = C.pair(obs["cid"].to_numpy(), obs["fpid"].to_numpy() + 1)  # (client, top-level site)
    p = C.pair(g, cid)  # (group, client partition)
    n_p = int(p.max()) + 1 if len(p) else 0
    p_group = C.group_of_pair(g, p, n_p)
    values = C.nunique(p, val, n_p)
    # a change of value in answer to a request presenting a value: the server refused it
    refused = C.count(p, n_p, (sent >= 0) & (val != sent)) > 0
    pv = C.pair(p, val)  # (group, client, value)
    n_pv = int(pv.max()) + 1 if len(pv) else 0
    persisted = np.zeros(n_pv, dtype=bool)
    persisted[pv[obs["is304"].to_numpy() & (sent == val) & (pv >= 0)]] = True
    _, first_rows = C.first_index(p)
    first_value = np.zeros(n_pv, dtype=bool)
    first_value[pv[first_rows]] = True
    # each later value must arrive on an unconditional 2xx (the client presented nothing)
    pv_seen, pv_first = C.first_index(pv)
    unconditional = np.zeros(n_pv, dtype=bool)
    unconditional[pv_seen] = obs["issued"].to_numpy()[pv_first] & (sent[pv_first] < 0)
    pv_client = C.group_of_pair(p, pv, n_pv)
    bad = ~first_value & ~(persisted & unconditional) & (pv_client >= 0)
    unkept = np.bincount(pv_client[bad], minlength=n_p)
    stable = (values == 1) | (~refused & (unkept == 0))
    reid = stable & (values >= 2)
    # back to clients: a client is stable when each of its partitions is
    gc = C.pair(g, obs["cid"].to_numpy())
    n_gc = int(gc.max()) + 1 if len(gc) else 0
    gc_group = C.group_of_pair(g, gc, n_gc)
    p_seen, p_rows = C.first_index(p)
    p_client = np.full(n_p, -1, dtype=np.int64)
    p_client[p_seen] = gc[p_rows]
    unstable_client = np.bincount(p_client[(p_client >= 0) & ~stable], minlength=n_gc) > 0
    reid_client = np.bincount(p_client[(p_client >= 0) & reid], minlength=n_gc) > 0
    seen = gc_group >= 0
    return {
        "stable_clients": np.bincount(gc_group[seen], weights=~unstable_client[seen],
                                      minlength=n).astype(int),
        "reidentified_clients": np.bincount(gc_group[seen], weights=reid_client[seen],
                                            minlength=n).astype(int),
        "max_values_per_client": C.gmax(p_group, values, n).astype(int),
    }


def resource_features(ex: pd.DataFrame, *, obs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Features per (resource, validator) from a prepared exchanges frame (see prepare)."""
    obs = observations(ex) if obs is None else obs
    if obs.empty:
        return pd.DataFrame(columns=[*KEY, "host", "exchanges", "clients", "values"]).set_index(KEY)
    g, ks = pd.factorize(obs["k"].to_numpy())
    g = g.astype(np.int64)
    n = len(ks)
    keys = key_index(ex, ks)
    cid, val = obs["cid"].to_numpy(), obs["val"].to_numpy()
    ckid, bkid = obs["ckid"].to_numpy(), obs["bkid"].to_numpy()
    issued, is304 = obs["issued"].to_numpy(), obs["is304"].to_numpy()
    hosts = ex["host"].to_numpy(dtype=object)
    hid = obs["hid"].to_numpy()
    first_g, first_row = C.first_index(g, hid >= 0)
    host = np.full(n, None, dtype=object)
    host[first_g] = hosts[obs["row"].to_numpy()[first_row]]
    by = pd.Series(g)
    started = pd.Series(obs["started"].to_numpy())
    f = pd.DataFrame({
        "host": host,
        "exchanges": C.count(g, n),
        "clients": C.nunique(g, cid, n),
        "values": C.nunique(g, val, n),
        "fetches_2xx": C.count(g, n, issued),
        "n304": C.count(g, n, is304),
        "first_seen": started.groupby(by).min().reindex(range(n)).to_numpy(),
        "last_seen": started.groupby(by).max().reindex(range(n)).to_numpy(),
        "third_party": C.count(g, n, obs["third_party"].to_numpy()) > 0,
        "body_size": representation_sizes(ex)[ks // 2],
        "cookie_match": C.count(g, n, obs["cookie_match"].to_numpy()) > 0,
        "query_match": C.count(g, n, obs["query_match"].to_numpy()) > 0,
        "backends": C.nunique(g, bkid, n),
        "clients_304": C.nunique(g, cid, n, is304),
        "issued_values": C.nunique(g, val, n, issued),
        "forced_revalidation": C.count(g, n, obs["forced"].to_numpy()) > 0,
    })
    # stability within clients, sharing across clients
    for name, col in _stability(obs, g, n).items():
        f[name] = col
    pv = C.pair(g, val)
    n_pv = int(pv.max()) + 1 if len(pv) else 0
    pv_group = C.group_of_pair(g, pv, n_pv)
    clients_per_value = C.nunique(pv, cid, n_pv)
    f["max_clients_per_value"] = C.gmax(pv_group, clients_per_value, n).astype(int)
    f["shared_values"] = np.bincount(pv_group, weights=clients_per_value > 1, minlength=n).astype(int)
    # content, like with like: body hashes where every body of the group was hashed, else
    # (size, type) for all; a body missing on one side is no evidence either way
    hkid, zkid = obs["hkid"].to_numpy(), obs["zkid"].to_numpy()
    all_hashed = C.count(g, n, ckid >= 0) == C.count(g, n, hkid >= 0)
    ckid = np.where(all_hashed[np.maximum(g, 0)], hkid, zkid)
    f["content_basis"] = np.where(C.count(g, n, ckid >= 0) == 0, None,
                                  np.where(all_hashed, "body hash", "size and type"))
    f["content_values"] = C.nunique(g, ckid, n)
    # content: one body under several values? values 1:1 with bodies (content-derived)?
    f["value_content_pairs"] = np.bincount(
        pv_group, weights=C.nunique(pv, ckid, n_pv), minlength=n).astype(int)
    f["values_with_content"] = C.nunique(g, val, n, ckid >= 0)
    # per-client content: every client its own body, no body seen by two clients
    gc = C.pair(g, ckid)
    n_gc = int(gc.max()) + 1 if len(gc) else 0
    f["clients_with_content"] = C.nunique(g, cid, n, ckid >= 0)
    f["shared_contents"] = np.bincount(C.group_of_pair(g, gc, n_gc)[C.nunique(gc, cid, n_gc) > 1],
                                       minlength=n).astype(int) if n_gc else np.zeros(n, int)
    f["credentials"] = C.count(g, n, obs["cred"].to_numpy()) > 0
    digest = obs["digest"].to_numpy()
    f["digest_verified"] = C.count(g, n, digest == 1)
    f["digest_refuted"] = C.count(g, n, digest == 0)
    dg, drow = C.first_index(g, digest == 1)
    kind = np.full(n, None, dtype=object)
    kind[dg] = obs["digest_kind"].to_numpy(dtype=object)[drow]
    f["digest_kind"] = kind
    f["last_modified_values"] = C.nunique(g, obs["lid"].to_numpy(), n, issued)
    for name, col in _sequence(obs, g, val, n).items():
        f[name] = col
    for name, col in _scope(obs, g, cid, val, n).items():
        f[name] = col
    # backends: does each value come from one backend? does one backend issue many values?
    # Once over the responses issuing a value, once over every response naming a backend (304s
    # too): a capture of 304s only (values cached before it began) can still follow backends.
    for suffix, mask in (("", (bkid >= 0) & issued), ("_any", bkid >= 0)):
        for name, col in _backend_ties(g, val, bkid, pv, pv_group, mask, n, n_pv).items():
            f[name + suffix] = col
    # lifetimes of values overlap: the server accepted two values at once
    life = started.groupby(pv).agg(["min", "max"])
    life = life[life.index >= 0]
    life["g"] = pv_group[life.index.to_numpy()]
    life = life.sort_values("min")
    running_max = life.groupby("g")["max"].cummax()
    prev_max = running_max.groupby(life["g"]).shift()
    f["overlapping_values"] = np.bincount(
        life["g"].to_numpy(), weights=(life["min"] < prev_max).to_numpy(), minlength=n).astype(int)
    f.index = keys
    f = f.join(_reflection(ex, obs, g, keys))
    f = f.join(_shape_features(ex, obs, g, pv, keys))
    for col in ("reflected_304s", "reflected_values"):
        f[col] = f[col].fillna(0).astype(int)
    return f


def _sequence(obs: pd.DataFrame, g: np.ndarray, val: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """How the values follow each other in time (observations are in time order per group):
    ``value_runs`` (a value that returns after another counts again: alternation), and the
    shortest time between the last sighting of a value and the first of the next
    (``min_change_gap``, seconds; NaN without a change)."""
    if len(g) == 0:
        return {"value_runs": np.zeros(n, int), "min_change_gap": np.full(n, np.nan)}
    same = np.concatenate(([False], g[1:] == g[:-1]))
    change = same & np.concatenate(([False], val[1:] != val[:-1]))
    runs = C.count(g, n, change) + (C.count(g, n) > 0)
    started = obs["started"].to_numpy(dtype=float)
    gap = np.full(len(g), np.nan)
    idx = np.flatnonzero(change)
    gap[idx] = started[idx] - started[idx - 1]
    keep = ~np.isnan(gap)
    out = np.full(n, np.nan)
    if keep.any():
        m = pd.Series(gap[keep]).groupby(g[keep]).min()
        out[m.index.to_numpy()] = m.to_numpy()
    return {"value_runs": runs.astype(int), "min_change_gap": out}


def _scope(obs: pd.DataFrame, g: np.ndarray, cid: np.ndarray, val: np.ndarray, n: int
           ) -> dict[str, np.ndarray]:
    """Top-level sites behind each group (``sites``), and whether one client presented one
    value under two or more of them (``cross_site_values``: the cache was not partitioned) or
    held one value per site (``partitioned_clients``)."""
    fp = obs["fpid"].to_numpy()
    known = fp >= 0
    gc = C.pair(g, cid)
    n_gc = int(gc.max()) + 1 if len(gc) else 0
    gcv = C.pair(gc, val)
    n_gcv = int(gcv.max()) + 1 if len(gcv) else 0
    sites_per_value = C.nunique(gcv, fp, n_gcv, known)
    sites_per_client = C.nunique(gc, fp, n_gc, known)
    values_per_client = C.nunique(gc, val, n_gc)
    partitioned = (sites_per_client >= 2) & (values_per_client >= 2)
    return {
        "sites": C.nunique(g, fp, n, known),
        "cross_site_values": _per_group(C.group_of_pair(g, gc, n_gc),
                                        C.group_of_pair(gc, gcv, n_gcv), sites_per_value >= 2, n),
        "partitioned_clients": np.bincount(C.group_of_pair(g, gc, n_gc)[partitioned],
                                           minlength=n).astype(int) if n_gc else np.zeros(n, int),
    }


def _per_group(client_group: np.ndarray, value_client: np.ndarray, mask: np.ndarray,
               n: int) -> np.ndarray:
    """Count of (group, client, value) triples where ``mask`` holds, per group."""
    if not len(value_client):
        return np.zeros(n, dtype=int)
    groups = client_group[value_client[mask]]
    return np.bincount(groups[groups >= 0], minlength=n).astype(int)


def _backend_ties(g: np.ndarray, val: np.ndarray, bkid: np.ndarray, pv: np.ndarray,
                  pv_group: np.ndarray, mask: np.ndarray, n: int, n_pv: int
                  ) -> dict[str, np.ndarray]:
    """Per group, over the rows in ``mask``: (value, backend) pairs, values with a backend, and
    the most values one backend answered with (classify's ``tied_to_backends`` reads them)."""
    gb = C.pair(g, np.where(mask, bkid, C.MISSING))
    n_gb = int(gb.max()) + 1 if len(gb) else 0
    return {
        "value_backend_pairs": np.bincount(
            pv_group, weights=C.nunique(pv, bkid, n_pv, mask), minlength=n).astype(int),
        "values_with_backend": C.nunique(g, val, n, mask),
        "max_values_per_backend": C.gmax(
            C.group_of_pair(g, gb, n_gb), C.nunique(gb, val, n_gb), n).astype(int),
    }


def _shape_features(ex: pd.DataFrame, obs: pd.DataFrame, g: np.ndarray, pv: np.ndarray,
                    keys: pd.MultiIndex) -> pd.DataFrame:
    """Per resource: the dominant ETag shape, whether a server format was verified against the
    responses (``format_verified``: size field = body length, mtime field = Last-Modified),
    information estimated from variation across the host's values (``min_bits``, with
    ``bits_basis``: how many other values of the host it rests on, 0 = length and alphabet
    only), and how many values remain once content-coding suffixes are stripped."""
    etag = (obs["v"].to_numpy() == 0) & (pv >= 0)
    # one row per value: its first issuing response (which has the size and Last-Modified)
    pref = np.where(obs["issued"].to_numpy(), 0, 1)
    cand = np.flatnonzero(etag)
    order = cand[np.lexsort((cand, pref[cand], pv[cand]))]
    _, first = np.unique(pv[order], return_index=True)
    rows = np.sort(order[first])
    if len(rows) == 0:
        return _empty_keyed(["shape", "known_format", "format_verified", "hash_like", "min_bits",
                             "bits_basis", "value_length", "coding_stems"])
    et = pd.DataFrame({"g": g[rows], "hid": obs["hid"].to_numpy()[rows],
                       "val": pd.Series(value_text(ex, obs["val"].to_numpy()[rows]), dtype=object),
                       "csize": obs["csize"].to_numpy()[rows],
                       "lmts": obs["lmts"].to_numpy()[rows]})
    shapes = etag_shapes(et["val"])
    et = et.join(shapes, on="val")
    et["known"] = et["shape"].isin(KNOWN_SERVER_FORMATS)
    checked = [_verified_format(v, sz, lm) if k else (None, None, None) for v, sz, lm, k in zip(
        et["val"], et["csize"], et["lmts"], et["known"], strict=True)]
    et["checked"] = pd.Series([c[1] for c in checked], index=et.index, dtype=object)
    verified_shape = [c[0] for c in checked]
    et["fields"] = pd.Series([c[2] for c in checked], index=et.index, dtype=object)
    et["shape"] = [vs or sh for vs, sh in zip(verified_shape, et["shape"], strict=True)]
    # information from variation among the host's distinct values
    host_values = et.drop_duplicates(["hid", "val"])
    bits, others = variation_bits(host_values["val"], host_values["hid"], host_values["per_char"])
    varied = pd.DataFrame({"hid": host_values["hid"].to_numpy(), "val": host_values["val"].to_numpy(),
                           "vbits": bits, "others": others})
    et = et.merge(varied, on=["hid", "val"], how="left")
    et["ok_check"] = et["checked"] == True  # noqa: E712 (object column: True, False or None)
    et["bad_check"] = et["checked"] == False  # noqa: E712
    grp = et.groupby("g", sort=False)
    out = grp.agg(
        known_format=("known", "mean"),
        formats_checked=("ok_check", "sum"),
        formats_contradicted=("bad_check", "sum"),
        hash_like=("hash_like", "all"),
        min_bits=("vbits", "min"),
        length_bits=("bits", "min"),
        bits_basis=("others", "min"),
        format_fields=("fields", "first"),
        value_length=("length", "median"),
        coding_stems=("stem", "nunique"),
    )
    counts = et.groupby(["g", "shape"], sort=False).size().rename("n").reset_index()
    dominant = counts.sort_values("n", kind="stable").drop_duplicates("g", keep="last")
    out["shape"] = dominant.set_index("g")["shape"]
    out["known_format"] = out["known_format"] >= 0.5
    out["format_verified"] = out["known_format"] & (out["formats_checked"] > 0) & (
        out["formats_contradicted"] == 0)
    for col in ("inode", "size", "mtime", "change"):
        out[f"differs_{col}"] = grp[col].nunique() > 1
    # counts of ETag validators only: missing (float) for Last-Modified ones and for resources
    # without validators, whichever validators the frame holds (as integers they were 0 for
    # the latter where no frame had a Last-Modified key: one partition could differ from the
    # whole, analysis.engine.dask_engine)
    for col in ("formats_checked", "formats_contradicted", "bits_basis", "coding_stems"):
        out[col] = out[col].astype(float)
    out.index = keys[out.index.to_numpy()]
    return out


def _verified_format(value: str, size: float, lm_ts: float
                     ) -> tuple[str | None, bool | None, str | None]:
    """(the server format whose fields agree with the response, or None; whether any format
    could be checked and agreed: True, disagreed: False, or could not be checked: None; the
    fields checked, e.g. "size+mtime")."""
    seen: bool | None = None
    for name, parts in format_candidates(value):
        if name not in KNOWN_SERVER_FORMATS:
            continue
        checks = verify_format(name, parts, size, lm_ts)
        if checks and all(checks.values()):
            return name, True, "+".join(sorted(checks, key=("size", "mtime").index))
        if checks:
            seen = False
    return None, seen, None
