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

STORY_COLUMNS = ("when", "client", "method", "status", "sent_if_none_match",
                 "sent_if_modified_since", "etag",
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


def resource_story(data: ReportData, resource: str, *, keys: pd.Series | None = None
                   ) -> pd.DataFrame:
    """The exchanges of ``resource`` (a resource key: URL after the ignored query parameters),
    oldest first. ``held`` is the ETag the client holds afterwards: the one a 2xx carried, or
    the one a 304 confirmed (its If-None-Match). ``keys`` (``resource_keys(data)``) saves
    recomputing every exchange's key when telling many resources' stories."""
    ex = data.exchanges
    if ex.empty:
        return pd.DataFrame(columns=list(STORY_COLUMNS))
    keys = resource_keys(data) if keys is None else keys
    sub = ex[keys == resource].sort_values("started")
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
        "sent_if_modified_since": sub["req_if_modified_since"],
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


TIMELINE_COLUMNS = ("client", "values_held", "first_seen", "last_seen", "responses_2xx", "n304",
                    "times_304", "sequence")


def run_length(items: list[str]) -> str:
    """``200 304 304 304`` as ``200 304×3``: the order of outcomes, compact ("failed": no
    response)."""
    runs: list[list] = []
    for item in items:
        if runs and runs[-1][0] == item:
            runs[-1][1] += 1
        else:
            runs.append([item, 1])
    return " ".join(v if n == 1 else f"{v}×{n}" for v, n in runs)


def _stamp(when: pd.Timestamp, day: object = None) -> str:
    """A time to the millisecond (UTC); the date only when it is not ``day``."""
    if pd.isna(when):
        return "unknown"
    fmt = "%H:%M:%S.%f" if day is not None and when.date() == day else "%Y-%m-%d %H:%M:%S.%f"
    return when.strftime(fmt)[:-3]


def client_timeline(story: pd.DataFrame, validator: str = "etag", *, max_times: int = 10
                    ) -> pd.DataFrame:
    """Per client, what makes an identifier case: the values it held (in order), first and
    last seen, its full responses and 304s, when each 304 came (the first ``max_times``;
    time of day when on the client's first day) and the run-length sequence of statuses.

    ``validator`` "last_modified" follows Last-Modified (and If-Modified-Since) instead."""
    if story.empty:
        return pd.DataFrame(columns=list(TIMELINE_COLUMNS))
    status = pd.to_numeric(story["status"], errors="coerce")
    if validator == "last_modified":
        held = story["last_modified"].where(status.between(200, 299))
        held = held.where(held.notna(), story["sent_if_modified_since"].where(status == 304))
    else:
        held = story["held"]
    story = story.assign(_status=status, _held=held)
    rows = []
    for client, group in story.groupby("client", sort=False, observed=True):
        group = group.sort_values("when")
        first, last = group["when"].min(), group["when"].max()
        day = first.date() if pd.notna(first) else None
        times = [_stamp(w, day) for w in group.loc[group["_status"] == 304, "when"]]
        shown = ", ".join(times[:max_times])
        if len(times) > max_times:
            shown += f" (+{len(times) - max_times} more)"
        codes = ["failed" if pd.isna(c) else str(int(c)) for c in group["_status"]]
        rows.append({
            "client": client,
            "values_held": list(dict.fromkeys(str(v) for v in group["_held"] if pd.notna(v))),
            "first_seen": _stamp(first),
            "last_seen": _stamp(last, day),
            "responses_2xx": int(group["_status"].between(200, 299).sum()),
            "n304": len(times),
            "times_304": shown,
            "sequence": run_length(codes),
        })
    return pd.DataFrame(rows, columns=list(TIMELINE_COLUMNS))
