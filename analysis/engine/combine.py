"""Adding up what the parts of an analysis counted: each part holds whole hosts, so its
resources, findings and hosts are its own, and the summary and overview of the whole are sums,
minima and maxima of the parts', plus the distinct clients and sources across them (a client
or a capture file spans hosts). Used by both engines that split by host (Dask and processes)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis.detectors import summary_of
from analysis.detectors.settled import SETTLED
from analysis.findings import RULES, SEVERITY_RANK


def distinct_values(frame: pd.DataFrame) -> dict[str, set]:
    """Values counted across parts (a client or a file spans hosts)."""
    return {c: set(frame[c].dropna().unique()) for c in ("client", "source")}


def combine_counts(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the parts' counts: numbers add, dicts add key by key, anything else is kept."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, bool) or not isinstance(value, int | float | dict):
                out.setdefault(key, value)
            elif isinstance(value, dict):
                merged = out.setdefault(key, {})
                for k, v in value.items():
                    merged[k] = merged.get(k, 0) + v
            else:
                out[key] = out.get(key, 0) + value
    return out


def spanned(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Overview counts that are minima and maxima rather than sums."""
    lo = [p["started_min"] for p in parts if p.get("started_min") is not None]
    hi = [p["started_max"] for p in parts if p.get("started_max") is not None]
    return {"started_min": min(lo) if lo else None, "started_max": max(hi) if hi else None}


def _first_seen(rule: str) -> tuple[int, str]:
    """Where a rule's first finding stands in run_all's findings (``worst_first``: severity,
    then rule): run_all's summary lists rules of equal counts in that order (value_counts
    keeps the first seen first)."""
    found = RULES.get(rule)
    return (SEVERITY_RANK[found.severity] if found else len(SEVERITY_RANK)), rule


def combined_summary(parts: list[dict[str, Any]], rows: int, clients: int,
                     ignore: tuple[str, ...]) -> dict[str, Any]:
    """The summary as run_all's ``summarise`` makes it, from the parts' summaries."""
    total = combine_counts(parts)
    empty = pd.DataFrame({"verdict": [], "severity": [], "rule": []})
    base = summary_of({"exchanges": rows, "responses": total.get("responses", 0),
                       "clients": clients, "hosts": total.get("hosts", 0)}, empty, empty, ignore)
    rules = sorted(total.get("rules", {}).items(), key=lambda kv: (-kv[1], *_first_seen(kv[0])))
    return {**base, "resources": total.get("resources", 0),
            "verdicts": {v: int(total.get("verdicts", {}).get(v, 0)) for v in base["verdicts"]},
            "findings": {s: int(total.get("findings", {}).get(s, 0)) for s in base["findings"]},
            "rules": {k: int(v) for k, v in rules},
            "wasted_revalidations": int(total.get("wasted_revalidations", 0)),
            "wasted_bytes": int(total.get("wasted_bytes", 0)),
            "settled": {k: int(total.get("settled", {}).get(k, 0)) for k in SETTLED}}
