"""Per-host summary: how a host uses validators, what they cost, what was found."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.detectors.verdicts import VERDICTS
from analysis.findings import SEVERITIES


def _counts_per_host(ex: pd.DataFrame) -> pd.DataFrame:
    """Exchange counts per host name (missing hosts as '(no host)'), sorted by name."""
    hid = ex["hid"].to_numpy()
    n = int(hid.max()) + 2 if len(hid) else 1  # the last slot: no host
    names = np.full(n, "(no host)", dtype=object)
    names[hid[hid >= 0]] = ex["host"].to_numpy(dtype=object)[hid >= 0]
    slot = np.where(hid >= 0, hid, n - 1)
    status = ex["status"].to_numpy(dtype=float)
    ok = ex["ok"].to_numpy(dtype=bool)
    etag = ~pd.isna(ex["etag"].to_numpy(dtype=object))
    weak = ex["etag_weak"].to_numpy(dtype=object)
    weak = ~pd.isna(weak) & (weak == True)  # noqa: E712 (object column: True, False or None)
    reval = ok & (~pd.isna(ex["req_if_none_match"].to_numpy(dtype=object))
                  | ~pd.isna(ex["req_if_modified_since"].to_numpy(dtype=object)))
    masks = {
        "exchange": None, "response": ok, "with_etag": ok & etag,
        "with_last_modified": ok & ~pd.isna(ex["last_modified"].to_numpy(dtype=object)),
        "weak_etag": ok & etag & weak, "revalidations": reval,
        "not_modified": reval & (status == 304),
    }
    counts = {k: np.bincount(slot if m is None else slot[m], minlength=n) for k, m in masks.items()}
    h = pd.DataFrame(counts, index=pd.Index(names, name="host"))
    h = h[h["exchange"] > 0]
    return h.groupby(level="host").sum().sort_index()


def host_summary(
    prepared: pd.DataFrame, resources: pd.DataFrame, findings: pd.DataFrame
) -> pd.DataFrame:
    """One row per host: exchanges; shares with ETag / Last-Modified / weak ETag among real
    responses; revalidations and their 304 rate; resources per verdict; findings per severity;
    wasted revalidations and bytes. Worst hosts first: identifiers, churn, errors, wasted bytes,
    warnings, then the busiest."""
    h = _counts_per_host(prepared)
    h = h.rename(columns={"exchange": "exchanges", "response": "responses"})
    denom = h["responses"].where(h["responses"] > 0)
    h["etag_share"] = (h["with_etag"] / denom).round(3).fillna(0.0)
    h["last_modified_share"] = (h["with_last_modified"] / denom).round(3).fillna(0.0)
    h["weak_etag_share"] = (h["weak_etag"] / h["with_etag"].where(h["with_etag"] > 0)).round(3).fillna(0.0)
    h["revalidation_304_rate"] = (
        h["not_modified"] / h["revalidations"].where(h["revalidations"] > 0)
    ).round(3)
    res = resources.assign(host=resources["host"].fillna("(no host)"))
    verdicts = pd.crosstab(res["host"], res["verdict"]).reindex(columns=list(VERDICTS), fill_value=0)
    h = h.join(verdicts, how="left")
    if not findings.empty:
        f = findings.assign(host=findings["host"].fillna("(no host)"))
        sev = pd.crosstab(f["host"], f["severity"]).reindex(columns=list(SEVERITIES), fill_value=0)
    else:
        sev = pd.DataFrame(columns=list(SEVERITIES))
    h = h.join(sev, how="left")
    waste = res.groupby("host")[["wasted_revalidations", "wasted_bytes"]].sum()
    h = h.join(waste, how="left")
    counts = [*VERDICTS, *SEVERITIES, "wasted_revalidations", "wasted_bytes"]
    h[counts] = h[counts].fillna(0).astype(int)
    h = h.reset_index()
    h = h.sort_values(
        ["identifier", "likely-identifier", "churn", "error", "wasted_bytes", "warning",
         "exchanges"],
        ascending=False, kind="stable",
    )
    order = ["host", "exchanges", "responses", "etag_share", "last_modified_share",
             "weak_etag_share", "revalidations", "not_modified", "revalidation_304_rate",
             *VERDICTS, *SEVERITIES, "wasted_revalidations", "wasted_bytes"]
    return h[order].reset_index(drop=True)
