"""Per-resource features of validators: who saw which value, how stable, over what content.

One row per (resource, validator) where validator is ``etag`` or ``last-modified``: the same
reasoning (stable within a client? unique across clients? tied to backends? tied to content?)
applies to both. Everything is a groupby over a long frame of validator observations.
"""

from __future__ import annotations

import pandas as pd

from analysis.detectors.shapes import KNOWN_SERVER_FORMATS, etag_shapes

KEY = ["resource", "validator"]

#: Cache-Control directives that make every reuse a revalidation (a tracker's friend).
_FORCED_REVALIDATION = r"no-cache|max-age\s*=\s*0\b"


def observations(ex: pd.DataFrame) -> pd.DataFrame:
    """Long frame: one row per (exchange, validator kind) the exchange tells something about.

    ``val`` is the value the client holds after the exchange: the response's validator, or for
    a 304 without one, the value the client revalidated (it keeps it)."""
    resp = ex[ex["ok"] & (ex["status"].between(200, 299) | (ex["status"] == 304))]
    is304 = resp["status"] == 304
    common = [
        "id", "resource", "host", "client", "status", "started", "content_key", "backend_key",
        "third_party", "body_size", "cache_control", "xid", "method",
    ]
    etag = resp[common].assign(
        validator="etag",
        val=resp["tag"].where(resp["tag"].notna() | ~is304, resp["inm_tag"]),
        sent=resp["inm_tag"],
        from_header=resp["tag"].notna(),
        cookie_match=_cookie_match(resp),
    )
    lm = resp[common].assign(
        validator="last-modified",
        val=resp["last_modified"].where(resp["last_modified"].notna() | ~is304,
                                         resp["req_if_modified_since"]),
        sent=resp["req_if_modified_since"],
        from_header=resp["last_modified"].notna(),
        cookie_match=False,
    )
    obs = pd.concat([etag[etag["val"].notna()], lm[lm["val"].notna()]], ignore_index=True)
    obs["third_party"] = obs["third_party"].fillna(False).astype(bool)
    obs["is304"] = obs["status"] == 304
    obs["issued"] = obs["status"].between(200, 299) & obs["from_header"]
    return obs


def _cookie_match(resp: pd.DataFrame) -> pd.Series:
    """ETag value equal to a cookie value, through the keyed hashes (never the values)."""
    both = resp["etag_hash"].notna() & resp["cookie_hashes"].notna()
    out = pd.Series(False, index=resp.index)
    if both.any():
        sub = resp.loc[both, ["etag_hash", "cookie_hashes"]]
        out.loc[both] = [h in c for h, c in zip(sub["etag_hash"], sub["cookie_hashes"], strict=True)]
    return out


def _empty_keyed(columns: list[str]) -> pd.DataFrame:
    index = pd.MultiIndex.from_arrays([[], []], names=KEY)
    return pd.DataFrame(index=index, columns=columns)


def _reflection(obs: pd.DataFrame) -> pd.DataFrame:
    """304s to a value never issued to anyone for the resource, sent by a client that (in the
    capture) held another value, or by a client that sent two different never-issued values.
    A browser only sends the value it stored last, so the server accepted a value it never
    handed out: evercookie's echo."""
    issued = obs.loc[obs["issued"], [*KEY, "val"]].drop_duplicates().assign(_was_issued=True)
    cand = obs[obs["is304"] & obs["sent"].notna()][[*KEY, "client", "sent", "started", "id"]]
    if cand.empty:
        return _empty_keyed(["reflected_304s", "reflected_values", "reflected_examples"])
    cand = cand.merge(issued.rename(columns={"val": "sent"}), on=[*KEY, "sent"], how="left")
    cand = cand[cand["_was_issued"].isna()]
    if cand.empty:
        return _empty_keyed(["reflected_304s", "reflected_values", "reflected_examples"])
    # did this client earlier receive a different value for the resource?
    held = obs.loc[obs["issued"], [*KEY, "client", "val", "started"]].sort_values("started")
    cand = cand.sort_values("started")
    cand = pd.merge_asof(
        cand, held.rename(columns={"val": "held_before"}), on="started",
        by=[*KEY, "client"], allow_exact_matches=False,
    )
    per_client = cand.groupby([*KEY, "client"])["sent"].transform("nunique")
    decisive = (cand["held_before"].notna() & (cand["held_before"] != cand["sent"])) | (
        per_client >= 2
    )
    cand = cand[decisive]
    return cand.groupby(KEY).agg(
        reflected_304s=("sent", "size"), reflected_values=("sent", "nunique"),
        reflected_examples=("sent", lambda s: list(pd.unique(s))[:3]),
    )


def resource_features(ex: pd.DataFrame, *, obs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Features per (resource, validator) from a prepared exchanges frame (see prepare)."""
    obs = observations(ex) if obs is None else obs
    if obs.empty:
        return pd.DataFrame(columns=[*KEY, "host", "exchanges", "clients", "values"]).set_index(KEY)
    g = obs.groupby(KEY, sort=False)
    f = g.agg(
        host=("host", "first"),
        exchanges=("id", "size"),
        clients=("client", "nunique"),
        values=("val", "nunique"),
        fetches_2xx=("issued", "sum"),
        n304=("is304", "sum"),
        first_seen=("started", "min"),
        last_seen=("started", "max"),
        third_party=("third_party", "any"),
        body_size=("body_size", "median"),
        cookie_match=("cookie_match", "any"),
        content_values=("content_key", "nunique"),
        backends=("backend_key", "nunique"),
    )
    f["clients_304"] = obs[obs["is304"]].groupby(KEY)["client"].nunique()
    f["issued_values"] = obs[obs["issued"]].groupby(KEY)["val"].nunique()
    forced = obs["cache_control"].fillna("").str.contains(_FORCED_REVALIDATION, case=False)
    f["forced_revalidation"] = forced.groupby([obs[k] for k in KEY]).any()
    # stability within clients, sharing across clients
    per_client = obs.groupby([*KEY, "client"], sort=False)["val"].nunique()
    f["stable_clients"] = (per_client == 1).groupby(level=KEY).sum()
    f["max_values_per_client"] = per_client.groupby(level=KEY).max()
    per_value = obs.groupby([*KEY, "val"], sort=False)["client"].nunique()
    f["max_clients_per_value"] = per_value.groupby(level=KEY).max()
    f["shared_values"] = (per_value > 1).groupby(level=KEY).sum()
    # content: one body under several values? values 1:1 with bodies (content-derived)?
    with_content = obs[obs["content_key"].notna()]
    pairs = with_content.drop_duplicates([*KEY, "val", "content_key"]).groupby(KEY).size()
    vals_with_content = with_content.groupby(KEY)["val"].nunique()
    f["value_content_pairs"] = pairs
    f["values_with_content"] = vals_with_content
    # backends: does each value come from one backend? does one backend issue many values?
    with_backend = obs[obs["backend_key"].notna() & obs["issued"]]
    bpairs = with_backend.drop_duplicates([*KEY, "val", "backend_key"]).groupby(KEY).size()
    f["value_backend_pairs"] = bpairs
    f["values_with_backend"] = with_backend.groupby(KEY)["val"].nunique()
    f["max_values_per_backend"] = (
        with_backend.groupby([*KEY, "backend_key"])["val"].nunique().groupby(level=KEY).max()
    )
    # lifetimes of values overlap: the server accepted two values at once
    life = obs.groupby([*KEY, "val"], sort=False)["started"].agg(["min", "max"])
    life = life.sort_values("min")
    running_max = life.groupby(level=KEY)["max"].cummax()
    prev_max = running_max.groupby(level=KEY).shift()
    f["overlapping_values"] = (life["min"] < prev_max).groupby(level=KEY).sum()
    f = f.join(_reflection(obs))
    f = f.join(_shape_features(obs))
    ints = ["clients_304", "issued_values", "stable_clients", "max_values_per_client",
            "max_clients_per_value", "shared_values", "value_content_pairs",
            "values_with_content", "value_backend_pairs", "values_with_backend",
            "max_values_per_backend", "overlapping_values", "reflected_304s", "reflected_values",
            "fetches_2xx", "n304"]
    for col in ints:
        f[col] = f[col].fillna(0).astype(int)
    f["forced_revalidation"] = f["forced_revalidation"].fillna(False).astype(bool)
    f["cookie_match"] = f["cookie_match"].fillna(False).astype(bool)
    return f


def _shape_features(obs: pd.DataFrame) -> pd.DataFrame:
    """Per resource: the dominant ETag shape, share of known server formats, randomness."""
    et = obs[obs["validator"] == "etag"].drop_duplicates([*KEY, "val"])[[*KEY, "val"]]
    if et.empty:
        return _empty_keyed(["shape", "known_format", "hash_like", "min_bits", "value_length"])
    shapes = etag_shapes(et["val"])
    et = et.join(shapes, on="val")
    et["known"] = et["shape"].isin(KNOWN_SERVER_FORMATS)
    g = et.groupby(KEY, sort=False)
    out = g.agg(
        known_format=("known", "mean"),
        hash_like=("hash_like", "all"),
        min_bits=("bits", "min"),
        value_length=("length", "median"),
    )
    counts = et.groupby([*KEY, "shape"], sort=False).size().rename("n").reset_index()
    dominant = counts.sort_values("n", kind="stable").drop_duplicates(KEY, keep="last")
    out["shape"] = dominant.set_index(KEY)["shape"]
    out["known_format"] = out["known_format"] >= 0.5
    for col in ("inode", "size", "mtime", "change"):
        out[f"differs_{col}"] = g[col].nunique() > 1
    return out

