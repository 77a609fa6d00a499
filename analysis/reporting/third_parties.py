"""Which third parties identify clients on which first-party sites.

The detectors judge resources; this joins their identifier and likely-identifier verdicts back
to the exchanges, so each accusation names the first-party sites (registrable domains of the
pages) under which the third party's validator was handed out, with the tracking scope the
detectors inferred (per-site or cross-site) and why.
"""

from __future__ import annotations

import pandas as pd

from analysis.reporting.data import ReportData
from analysis.reporting.identifiers import IDENTIFYING
from analysis.sites import registrable_domain

COLUMNS = ("third_party", "host", "url", "verdict", "confidence", "first_party_sites", "sites",
           "clients", "values", "scope", "scope_basis")


def resource_keys(data: ReportData) -> pd.Series:
    """Each exchange's resource key, as the detectors key resources (URL without fragment and
    the ignored query parameters)."""
    from analysis.detectors.prepare import strip_query_params

    return strip_query_params(data.exchanges["url"].astype(object), data.ignore_params)


def identifying_third_parties(data: ReportData, *, third_party_only: bool = True) -> pd.DataFrame:
    """One row per identifier / likely-identifier resource: its third party (registrable
    domain), the first-party sites it was seen under, and the detectors' scope evidence.

    ``third_party_only`` keeps resources loaded from another site than the page's (the usual
    question); False adds first-party identifiers too. Empty (with COLUMNS) when none.
    """
    res = data.resources
    if res.empty or data.exchanges.empty or "verdict" not in res.columns:
        return pd.DataFrame(columns=list(COLUMNS))
    hits = res[res["verdict"].isin(IDENTIFYING)]
    if third_party_only and "third_party" in hits.columns:
        hits = hits[hits["third_party"].fillna(False).astype(bool)]
    if hits.empty:
        return pd.DataFrame(columns=list(COLUMNS))

    ex = data.exchanges.assign(resource=resource_keys(data))
    ex = ex[ex["resource"].isin(set(hits["url"]))]
    sites = (ex.dropna(subset=["first_party"]).groupby("resource")["first_party"]
             .agg(lambda s: ", ".join(sorted(set(map(str, s))))))

    def basis(evidence: object) -> object:
        return evidence.get("scope_basis") if isinstance(evidence, dict) else None

    out = pd.DataFrame({
        "third_party": hits["host"].map(registrable_domain),
        "host": hits["host"],
        "url": hits["url"],
        "verdict": hits["verdict"],
        "confidence": hits["confidence"],
        "first_party_sites": hits["url"].map(sites).fillna(""),
        "sites": hits.get("sites"),
        "clients": hits.get("clients"),
        "values": hits.get("values"),
        "scope": hits.get("scope"),
        "scope_basis": hits["evidence"].map(basis) if "evidence" in hits else None,
    })
    order = {v: i for i, v in enumerate(IDENTIFYING)}
    out = out.assign(_rank=out["verdict"].map(order))
    return (out.sort_values(["third_party", "_rank", "confidence"], ascending=[True, True, False])
            .drop(columns="_rank").reset_index(drop=True))


def sites_by_third_party(table: pd.DataFrame) -> pd.DataFrame:
    """The short answer: per third party, the first-party sites where it identifies clients
    and its strongest verdict (from ``identifying_third_parties``)."""
    if table.empty:
        return pd.DataFrame(columns=["third_party", "first_party_sites", "verdict", "resources"])
    rows = []
    for party, group in table.groupby("third_party", sort=True):
        found = sorted({s for cell in group["first_party_sites"] for s in cell.split(", ") if s})
        verdict = next(v for v in IDENTIFYING if v in set(group["verdict"]))
        rows.append({"third_party": party, "first_party_sites": ", ".join(found),
                     "verdict": verdict, "resources": len(group)})
    return pd.DataFrame(rows)
