"""Verdicts settled by probing: the outcomes `etagwatch probe --candidates` stored, applied to
the verdicts the capture gave (docs/verdicts.md, "Settled by probe").

Applied after every other detector, on the resources table alone, so the detectors themselves
never depend on whether a store was probed. For each resource, the latest outcome that confirms
or clears counts (the latest of any other kind when there is none), and only for a verdict a
probe can speak to:

- confirms (``probe-echo``, ``probe-reflection``, ``probe-per-client``,
  ``probe-per-client-content``): identifier, likely-identifier or undetermined -> ``identifier``;
- clears (``probe-shared`` -> ``stable``, ``probe-unstable`` -> ``unstable``): likely-identifier
  or undetermined -> that verdict; an ``identifier`` the capture showed from several clients
  becomes ``undetermined`` (kind ``probe-contradicts``: the capture and the probe disagree, so
  neither accusation nor acquittal holds), one shown by reflection stays;
- inconclusive, error, skipped: the verdict stays; the evidence says what the probe saw;
- a resource whose verdict is no longer one of those three (a later capture made it churn,
  stable, ...) keeps it: ``settled`` is ``outdated``.

Only ETag verdicts move (the probe tests ETags). Every settled resource keeps its capture
evidence, with ``settled_by: "probe"``, ``probe`` (outcome, rule, reason, when, the requests
sent and what came back) and ``before`` (the verdict, kind and confidence it replaced).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd

from analysis.detectors.prepare import strip_query_params
from analysis.detectors.verdicts import RANK, VERDICTS

CONFIRMS, CLEARS = "confirms", "clears"
#: What ``settled`` says on a resource for each outcome applied.
SETTLED = ("confirmed", "cleared", "contradicted", "inconclusive", "error", "skipped",
           "outdated")
OPEN = ("likely-identifier", "undetermined")
#: The verdicts a probe speaks to: what `probe --candidates` probes.
CANDIDATES = ("identifier", *OPEN)


def latest_outcomes(outcomes: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """url -> the outcome that counts: the latest conclusive one, else the latest."""
    out: dict[str, dict[str, Any]] = {}
    for row in outcomes.sort_values("probed_at", kind="stable").to_dict("records"):
        held = out.get(row["url"])
        if held is None or row["outcome"] in (CONFIRMS, CLEARS) or held["outcome"] not in (
                CONFIRMS, CLEARS):
            out[row["url"]] = row
    return out


def _when(ts: float) -> str:
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _apply(row: dict[str, Any], o: dict[str, Any]) -> dict[str, Any]:
    """The resource row with the outcome applied (a new dict)."""
    verdict = row["verdict"]
    ev = dict(row["evidence"]) if isinstance(row["evidence"], dict) else {}
    stored = o["evidence"] if isinstance(o["evidence"], dict) else {}
    probe = {"outcome": o["outcome"], "rule": o["rule"], "reason": o["reason"],
             "probed_at": _when(o["probed_at"]), "verdict_before": o["verdict_before"],
             "settles": o["settles"], "clients": stored.get("clients"),
             "forged_tag": stored.get("forged_tag"), "requests": stored.get("requests") or []}
    is_etag = row.get("validator") in (None, "etag")
    new, kind, settled = verdict, ev.get("kind"), o["outcome"]
    if verdict not in CANDIDATES:
        # later captures gave a verdict a probe does not settle (churn, stable...): theirs holds
        settled = "outdated"
        probe["reason"] += f" (the verdict is {verdict} now, on later evidence)"
    elif o["outcome"] == CONFIRMS and is_etag:
        new, kind, settled = "identifier", o["rule"], "confirmed"
    elif o["outcome"] == CLEARS and is_etag:
        if verdict in OPEN:
            new, kind, settled = o["settles"], o["rule"], "cleared"
        elif ev.get("kind") == "reflection":
            settled = "contradicted"  # a 304 to a never-issued value stays decisive
        else:
            new, kind, settled = "undetermined", "probe-contradicts", "contradicted"
    elif o["outcome"] in (CONFIRMS, CLEARS):
        settled = "inconclusive"  # a Last-Modified verdict: the probe tested the ETag
        probe["reason"] += " (the probe tests the ETag; this verdict is on Last-Modified)"
    out = dict(row)
    if new != verdict:
        ev["before"] = {"verdict": verdict, "kind": ev.get("kind"),
                        "confidence": row["confidence"], "explanation": row["explanation"]}
        for done in ("confirm_with", "settle_with"):  # what the capture asked for: done now
            if done in ev:
                ev["before"][done] = ev.pop(done)
        ev["kind"] = kind
        confidence = stored.get("confidence")
        out["confidence"] = float(confidence) if confidence is not None else 0.5
        out["verdict"] = new
        out["explanation"] = (f"{new} (was {verdict}), settled by probe {probe['probed_at']}: "
                              f"{o['reason']}")
        if new == "identifier" and not ev.get("scope"):
            ev["scope"] = "unknown"
            ev.setdefault("scope_basis", "a probe has no page context")
        if new not in ("identifier", "likely-identifier"):
            ev.pop("scope", None)
    elif settled == "contradicted":
        out["explanation"] = f"{row['explanation']} (a probe disagrees: {o['reason']})"
    ev["settled_by"] = "probe"
    ev["probe"] = probe
    out["evidence"] = ev
    out["settled"] = settled
    out["verdict_before"] = verdict
    out["scope"] = ev.get("scope")
    return out


def settle(analysis: Any, outcomes: pd.DataFrame | None) -> Any:
    """``analysis`` (analysis.detectors.Analysis) with the stored probe outcomes applied to its
    resources (columns ``settled`` and ``verdict_before``, None where no probe spoke), and its
    summary (``settled`` counts) and host verdict counts redone."""
    res: pd.DataFrame = analysis.resources.copy()
    res["settled"] = None
    res["verdict_before"] = None
    ignored = analysis.summary.get("ignore_params") or ()
    if outcomes is not None and not outcomes.empty and ignored:  # resources grouped as analyzed
        outcomes = outcomes.assign(url=strip_query_params(outcomes["url"], ignored))
    counts = latest_outcomes(outcomes) if outcomes is not None and not outcomes.empty else {}
    hit = res["url"].isin(counts.keys()) if len(res) else pd.Series(False, index=res.index)
    if hit.any():
        dtypes = res.dtypes
        rows = [_apply(r, counts[r["url"]]) for r in res[hit].to_dict("records")]
        res = pd.concat([res[~hit], pd.DataFrame(rows, columns=res.columns)], ignore_index=True)
        for col, dtype in dtypes.items():
            if dtype.kind in "fiub" and res[col].notna().all():
                res[col] = res[col].astype(dtype)
        res = res.assign(_rank=res["verdict"].map(RANK)).sort_values(
            ["_rank", "confidence", "wasted_bytes"], ascending=[True, False, False],
            kind="stable").drop(columns="_rank").reset_index(drop=True)
        analysis.hosts = _hosts(analysis.hosts, res)
    analysis.resources = res
    analysis.summary = _summary(analysis.summary, res)
    return analysis


def _summary(summary: dict[str, Any], res: pd.DataFrame) -> dict[str, Any]:
    counts = res["verdict"].value_counts()
    settled = res["settled"].value_counts()
    return {**summary, "verdicts": {v: int(counts.get(v, 0)) for v in VERDICTS},
            "settled": {s: int(settled.get(s, 0)) for s in SETTLED}}


def _hosts(hosts: pd.DataFrame, res: pd.DataFrame) -> pd.DataFrame:
    """The per-host verdict counts from the settled resources (the other columns stay)."""
    if hosts.empty:
        return hosts
    by = pd.crosstab(res["host"].fillna("(no host)"), res["verdict"]).reindex(
        columns=list(VERDICTS), fill_value=0)
    h = hosts.set_index("host")
    h[list(VERDICTS)] = by.reindex(h.index).fillna(0).astype(int)
    # as run_all orders hosts: ties by name (its groupby's order), not by the former counts
    h = h.reset_index().sort_values(
        ["identifier", "likely-identifier", "churn", "error", "wasted_bytes", "warning",
         "exchanges", "host"], ascending=[False] * 7 + [True], kind="stable")
    return h.reset_index(drop=True)
