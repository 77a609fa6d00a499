"""One resource's story: every exchange for it in time order, which client held which
validator value after it, with the status and the backend that answered.

This is the raw material behind a verdict: an identifier shows one value per client, kept
across visits; churn shows values alternating with the backend for the same bytes.
"""

from __future__ import annotations

import pandas as pd

from analysis.reporting.churn import backend_labels
from analysis.reporting.data import ReportData
from analysis.reporting.third_parties import resource_keys

STORY_COLUMNS = ("when", "client", "method", "status", "sent_if_none_match", "etag",
                 "last_modified", "held", "backend", "from_cache", "body_size", "page_url")


def pick_resource(data: ReportData) -> str | None:
    """A resource worth reading: the detectors' worst verdict (they sort worst first), else
    the most fetched URL; None for an empty capture."""
    if not data.resources.empty and "url" in data.resources.columns:
        judged = data.resources
        if "verdict" in judged.columns:
            judged = judged[judged["verdict"] != "none"]
        if not judged.empty:
            return str(judged["url"].iloc[0])
    if data.exchanges.empty:
        return None
    return str(resource_keys(data).mode().iloc[0])


def resource_story(data: ReportData, resource: str) -> pd.DataFrame:
    """The exchanges of ``resource`` (a resource key: URL after the ignored query parameters),
    oldest first. ``held`` is the ETag the client holds afterwards: the one a 2xx carried, or
    the one a 304 confirmed (its If-None-Match)."""
    ex = data.exchanges
    if ex.empty:
        return pd.DataFrame(columns=list(STORY_COLUMNS))
    sub = ex[resource_keys(data) == resource].sort_values("started")
    status = pd.to_numeric(sub["status"], errors="coerce")
    ok = status.between(200, 299)
    held = sub["etag"].where(ok).where(sub["etag"].notna())
    held = held.where(held.notna(), sub["req_if_none_match"].where(status == 304))
    return pd.DataFrame({
        "when": pd.to_datetime(sub["started"], unit="s", utc=True),
        "client": sub["client"],
        "method": sub["method"],
        "status": sub["status"],
        "sent_if_none_match": sub["req_if_none_match"],
        "etag": sub["etag"],
        "last_modified": sub["last_modified"],
        "held": held,
        "backend": backend_labels(sub["backend"], sub["server_ip"]),
        "from_cache": sub["from_cache"],
        "body_size": sub["body_size"],
        "page_url": sub["page_url"],
    }).reset_index(drop=True)


def values_by_client(story: pd.DataFrame) -> pd.DataFrame:
    """Per client: the distinct values it held, in order, and its status counts. One value per
    client that no other client shares is what an identifier looks like."""
    if story.empty:
        return pd.DataFrame(columns=["client", "first", "last", "exchanges", "values_held",
                                     "statuses"])
    rows = []
    for client, group in story.groupby("client", sort=True, observed=True):
        held = list(dict.fromkeys(v for v in group["held"] if pd.notna(v)))
        statuses = group["status"].value_counts().sort_index()
        rows.append({
            "client": client,
            "first": group["when"].min(),
            "last": group["when"].max(),
            "exchanges": len(group),
            "values_held": ", ".join(map(str, held)),
            "statuses": ", ".join(f"{int(s)}×{n}" for s, n in statuses.items()),
        })
    return pd.DataFrame(rows)
