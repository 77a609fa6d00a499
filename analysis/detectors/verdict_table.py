"""Assemble the resources table: one row per resource with verdict, confidence, evidence."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from analysis.detectors import codes as C
from analysis.detectors import evidence as evidence_mod
from analysis.detectors.churn import backends_by_value, churn_costs
from analysis.detectors.resources import KEY, observations, resource_features
from analysis.detectors.verdicts import RANK, classify, pick_per_resource

RESOURCE_COLUMNS = [
    "url", "host", "verdict", "confidence", "validator", "explanation", "evidence", "clients",
    "exchanges", "values", "n304", "wasted_revalidations", "wasted_bytes", "third_party",
]


def features_with_costs(ex: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(features joined with churn costs, observations) for a prepared frame."""
    obs = observations(ex)
    f = resource_features(ex, obs=obs)
    if f.empty:
        return f, obs
    f = f.join(churn_costs(ex, obs))
    f["wasted_revalidations"] = f["wasted_revalidations"].fillna(0).astype(int)
    f["wasted_bytes"] = f["wasted_bytes"].fillna(0).astype(int)
    return f, obs


def per_resource(ex: pd.DataFrame) -> pd.DataFrame:
    """host (first known), exchanges and clients of every resource, in resource order."""
    rid = ex["rid"].to_numpy()
    present, _ = C.first_index(rid)
    n = int(rid.max()) + 1 if len(rid) else 0
    exchanges = C.count(rid, n)
    clients = C.nunique(rid, ex["cid"].to_numpy(), n)
    hid = ex["hid"].to_numpy()
    hg, hrow = C.first_index(rid, hid >= 0)
    host = np.full(n, None, dtype=object)
    host[hg] = ex["host"].to_numpy(dtype=object)[hrow]
    names = np.asarray(ex["resource"].cat.categories, dtype=object)
    return pd.DataFrame(
        {"host": host[present], "exchanges": exchanges[present], "clients": clients[present]},
        index=pd.Index(names[present], name="resource", dtype=object),
    )


def _picked(ex: pd.DataFrame, f: pd.DataFrame, obs: pd.DataFrame) -> pd.DataFrame:
    """The verdict and validator columns of each resource that has a validator."""
    classified = classify(f)
    churny = classified.index[(classified["verdict"] == "churn")]
    if len(churny):
        classified["value_backends"] = backends_by_value(ex, obs, churny)
    picked = pick_per_resource(classified)
    # the resource's own counts come from every exchange; the validator's stay as such
    return picked.drop(columns=["host", "exchanges"]).rename(
        columns={"clients": "validator_clients"})


@functools.cache
def _validator_columns() -> pd.DataFrame:
    """``_picked``'s columns and dtypes, without rows, taken from a one-exchange capture with
    an ETag: a frame without any validator gives its resources the same columns (counts 0,
    the rest missing) as a frame where others have validators, so a resource's row does not
    depend on which resources share its frame (the engines split the exchanges by host)."""
    from analysis.detectors.prepare import prepare

    one = prepare(pd.DataFrame({"url": ["http://template.invalid/"], "method": ["GET"],
                                "status": [200], "etag": ['"t"'], "client": ["c"],
                                "started": [0.0]}))
    f, obs = features_with_costs(one)
    return _picked(one, f, obs).iloc[:0]


def verdict_table(ex: pd.DataFrame, f: pd.DataFrame, obs: pd.DataFrame) -> pd.DataFrame:
    """Classify features and add resources without validators as ``none``."""
    every = per_resource(ex)
    # no validator at all: the columns resources have beside validated ones
    picked = _validator_columns() if f.empty else _picked(ex, f, obs)
    out = every.join(picked, how="left")
    out["verdict"] = out["verdict"].fillna("none")
    out["confidence"] = out["confidence"].fillna(1.0)
    # counts stay integers: a resource without validators has none of anything
    counts = [c for c in picked.columns if picked[c].dtype.kind in "iu"]
    out[counts] = out[counts].fillna(0).astype(int)
    out["third_party"] = out["third_party"].fillna(False).astype(bool)
    for col in ("body_size", "value_length"):  # medians of byte / character counts
        if col in out.columns:
            out[col] = pd.array(out[col].round(), dtype="Int64")
    out["url"] = out.index
    # a content change between visits costs nothing a server could have saved
    changed = (out["verdict"] == "changed").to_numpy()
    out.loc[changed, ["wasted_revalidations", "wasted_bytes"]] = 0
    ev, text = evidence_mod.build(out.assign(validator=out["validator"]))
    out["evidence"] = ev
    out["explanation"] = text
    out["scope"] = [e.get("scope") for e in ev]
    if "sites" not in out.columns:
        out["sites"] = 0
    out["sites"] = out["sites"].fillna(0).astype(int)
    out["_rank"] = out["verdict"].map(RANK)
    out = out.sort_values(["_rank", "confidence", "wasted_bytes"], ascending=[True, False, False],
                          kind="stable")
    rest = [c for c in out.columns if c not in RESOURCE_COLUMNS and not c.startswith("_")]
    return out[RESOURCE_COLUMNS + rest].reset_index(drop=True)


__all__ = ["KEY", "RESOURCE_COLUMNS", "features_with_costs", "verdict_table"]
