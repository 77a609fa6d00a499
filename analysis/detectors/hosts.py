"""Per-host summary: how a host uses validators, what they cost, what was found."""

from __future__ import annotations

import pandas as pd

from analysis.detectors.verdicts import VERDICTS
from analysis.findings import SEVERITIES


def host_summary(
    prepared: pd.DataFrame, resources: pd.DataFrame, findings: pd.DataFrame
) -> pd.DataFrame:
    """One row per host: exchanges; shares with ETag / Last-Modified / weak ETag among real
    responses; revalidations and their 304 rate; resources per verdict; findings per severity;
    wasted revalidations and bytes. Worst hosts first."""
    ex = prepared.assign(host=prepared["host"].fillna("(no host)"))
    ok = ex["ok"]
    reval = ok & (ex["req_if_none_match"].notna() | ex["req_if_modified_since"].notna())
    cols = pd.DataFrame({
        "host": ex["host"], "exchange": 1, "response": ok.astype(int),
        "with_etag": (ok & ex["etag"].notna()).astype(int),
        "with_last_modified": (ok & ex["last_modified"].notna()).astype(int),
        "weak_etag": (ok & ex["etag"].notna() & ex["etag_weak"].fillna(False).astype(bool)).astype(int),
        "revalidations": reval.astype(int),
        "not_modified": (reval & (ex["status"] == 304)).astype(int),
    })
    h = cols.groupby("host").sum()
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
        ["identifier", "likely-identifier", "churn", "error", "wasted_bytes", "exchanges"],
        ascending=False, kind="stable",
    )
    order = ["host", "exchanges", "responses", "etag_share", "last_modified_share",
             "weak_etag_share", "revalidations", "not_modified", "revalidation_304_rate",
             *VERDICTS, *SEVERITIES, "wasted_revalidations", "wasted_bytes"]
    return h[order].reset_index(drop=True)
