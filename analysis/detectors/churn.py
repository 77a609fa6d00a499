"""The cost of validator churn: revalidations that fetched bytes the client already had.

A revalidation is wasted when the client sent a validator the same resource had issued with a
body, and the answer was a 2xx carrying that very body again (same content key). Its wasted
bytes are the body bytes on the wire (``body_size``, else the decoded size).
"""

from __future__ import annotations

import pandas as pd

from analysis.detectors.resources import KEY


def wasted_revalidations(obs: pd.DataFrame) -> pd.DataFrame:
    """Observation rows (see resources.observations) that are wasted revalidations, with
    ``wasted_bytes``; a revalidation carrying both If-None-Match and If-Modified-Since counts
    once, under ``etag``."""
    issued = obs[obs["issued"] & obs["content_key"].notna()]
    value_body = issued.drop_duplicates([*KEY, "val"])[[*KEY, "val", "content_key"]]
    value_body = value_body.rename(columns={"val": "sent", "content_key": "sent_body"})
    reval = obs[obs["sent"].notna() & obs["status"].between(200, 299)]
    reval = reval.merge(value_body, on=[*KEY, "sent"], how="inner")
    wasted = reval[reval["sent_body"] == reval["content_key"]].copy()
    wasted = wasted.sort_values("validator").drop_duplicates("id", keep="first")
    size = pd.to_numeric(wasted["body_size"], errors="coerce")
    wasted["wasted_bytes"] = size.where(size > 0).fillna(0).astype(int)
    return wasted


def churn_costs(obs: pd.DataFrame) -> pd.DataFrame:
    """Per (resource, validator): wasted revalidations and their bytes, and the backends seen."""
    wasted = wasted_revalidations(obs)
    cost = wasted.groupby(KEY).agg(
        wasted_revalidations=("id", "size"), wasted_bytes=("wasted_bytes", "sum")
    )
    return cost


def backends_by_value(obs: pd.DataFrame, keys: pd.Index) -> pd.Series:
    """For the given (resource, validator) keys only: {value: [backends]}, for evidence."""
    if len(keys) == 0:
        return pd.Series(dtype=object)
    sub = obs[obs["issued"]].set_index(KEY)
    sub = sub[sub.index.isin(keys)].reset_index()
    sub = sub.drop_duplicates([*KEY, "val", "backend_key"])
    out: dict[tuple[str, str], dict[str, list[str]]] = {}
    for res, kind, val, backend in sub[[*KEY, "val", "backend_key"]].itertuples(index=False):
        mapping = out.setdefault((res, kind), {})
        if len(mapping) < 10 or val in mapping:
            mapping.setdefault(val, []).append(backend if isinstance(backend, str) else "unknown")
    return pd.Series(out, dtype=object).rename_axis(KEY)
