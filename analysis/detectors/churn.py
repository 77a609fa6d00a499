"""The cost of validator churn: revalidations that fetched bytes the client already had.

A revalidation is wasted when the client sent a validator the same resource had issued with a
body, and the answer was a 2xx carrying that very body again (same content key). Its wasted
bytes are the body bytes on the wire (``body_size``, else the decoded size).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.detectors.backends import describe
from analysis.detectors.resources import KEY, key_index, value_text

#: Values listed per churn resource in its evidence (the count of all is ``values``).
MAX_VALUES = 10


def wasted_revalidations(obs: pd.DataFrame) -> pd.DataFrame:
    """Observation rows (see resources.observations) that are wasted revalidations, with
    ``wasted_bytes``; a revalidation carrying both If-None-Match and If-Modified-Since counts
    once, under ``etag``."""
    k, val, sent = obs["k"].to_numpy(), obs["val"].to_numpy(), obs["sent"].to_numpy()
    ckid = obs["ckid"].to_numpy()
    width = int(max(val.max(initial=0), sent.max(initial=0))) + 1
    issued = np.flatnonzero(obs["issued"].to_numpy() & (ckid >= 0))
    keys, first = np.unique(k[issued] * width + val[issued], return_index=True)
    body = ckid[issued][first]  # the body first served under each (resource, value)
    status = obs["status"].to_numpy()
    reval = np.flatnonzero((sent >= 0) & (status >= 200) & (status <= 299))
    probe = k[reval] * width + sent[reval]
    pos = np.searchsorted(keys, probe)
    pos = np.minimum(pos, len(keys) - 1) if len(keys) else pos
    known = (len(keys) > 0) & (keys[pos] == probe) if len(keys) else np.zeros(len(reval), bool)
    same = np.zeros(len(reval), dtype=bool)
    same[known] = body[pos[known]] == ckid[reval][known]
    wasted = obs.iloc[reval[same]].sort_values("v", kind="stable").drop_duplicates(
        "id", keep="first").copy()
    size = pd.to_numeric(wasted["body_size"], errors="coerce")
    wasted["wasted_bytes"] = size.where(size > 0).fillna(0).astype(int)
    return wasted


def churn_costs(ex: pd.DataFrame, obs: pd.DataFrame) -> pd.DataFrame:
    """Per (resource, validator): wasted revalidations and their bytes."""
    wasted = wasted_revalidations(obs)
    cost = wasted.groupby("k").agg(
        wasted_revalidations=("id", "size"), wasted_bytes=("wasted_bytes", "sum")
    )
    cost.index = key_index(ex, cost.index.to_numpy())
    return cost


def backends_by_value(ex: pd.DataFrame, obs: pd.DataFrame, keys: pd.Index) -> pd.Series:
    """For the given (resource, validator) keys only: {value: [backend objects]} (see
    analysis.detectors.backends; at most ``MAX_VALUES`` values per key), for evidence."""
    if len(keys) == 0:
        return pd.Series(dtype=object)
    sub = obs[obs["issued"]]
    names = key_index(ex, sub["k"].to_numpy())
    sub = sub[names.isin(keys)]
    sub = sub.drop_duplicates(["k", "val", "bkid"])
    backends = np.asarray(ex["backend_key"].cat.categories, dtype=object)
    pairs: dict[tuple[str, str], dict[str, list[object]]] = {}
    for key, val, backend in zip(key_index(ex, sub["k"].to_numpy()),
                                 value_text(ex, sub["val"].to_numpy()), sub["bkid"], strict=True):
        mapping = pairs.setdefault(key, {})
        if len(mapping) < MAX_VALUES or val in mapping:
            mapping.setdefault(val, []).append(backends[backend] if backend >= 0 else None)
    out: dict[tuple[str, str], dict[str, list[dict[str, object]]]] = {}
    for key, mapping in pairs.items():
        described = describe(b for bs in mapping.values() for b in bs)
        out[key] = {val: [described[b] for b in bs] for val, bs in mapping.items()}
    return pd.Series(out, dtype=object).rename_axis(KEY)
