"""Evidence (a JSON-serialisable dict) and a one-line explanation for each resource verdict.

Runs once per resource (not per exchange). The evidence always states the counts behind the
verdict and, for accusations, what rules out the benign explanations (load balancing, content
change); for likely-identifier, what a second client would confirm.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

_COUNTS = [
    "validator", "clients", "exchanges", "values", "fetches_2xx", "n304", "clients_304",
    "stable_clients", "reidentified_clients", "max_clients_per_value", "shared_values", "content_values",
    "content_identical", "content_derived", "backends", "tied_to_backends", "overlapping_values",
    "shape", "min_bits", "third_party", "cookie_match", "forced_revalidation", "small_body",
    "wasted_revalidations", "wasted_bytes", "reflected_304s", "reflected_values",
]
_CAUSES = {
    "differs_inode": "inode differs (Apache FileETag INode: each backend's copy has its own inode)",
    "differs_mtime": "mtime differs (unsynchronised deploys: same bytes, different modification times)",
    "differs_change": "change number differs (IIS farm: per-server metabase change numbers)",
}


def _plain(v: Any) -> Any:
    """numpy / pandas scalars to JSON-native values; NaN to None."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _plain_column(col: pd.Series) -> list[Any]:
    """A column as JSON-native values (what _plain gives per value, without its per-value cost
    where the dtype already guarantees it)."""
    kind = col.dtype.kind
    if kind in "iub":
        return col.tolist()
    if kind == "f":
        return [None if v != v else v for v in col.tolist()]
    return [_plain(v) for v in col.tolist()]


def churn_cause(row: dict[str, Any]) -> str | None:
    causes = [text for col, text in _CAUSES.items() if row.get(col) is True]
    if not causes:
        return None
    return f"{row.get('shape')}: " + "; ".join(causes)


def build(resources: pd.DataFrame) -> tuple[list[dict[str, Any]], list[str]]:
    """(evidence, explanation) lists aligned with the rows of ``resources``."""
    evidence: list[dict[str, Any]] = []
    explanation: list[str] = []
    cols = [c for c in _COUNTS if c in resources.columns]
    extra = [c for c in (*_CAUSES, "reflected_examples", "value_backends", "verdict")
             if c in resources.columns]
    plain_cols = [_plain_column(resources[c]) for c in cols]
    extra_cols = [resources[c].tolist() for c in extra]
    for values, extras in zip(zip(*plain_cols, strict=True) if cols else ([()] * len(resources)),
                              zip(*extra_cols, strict=True), strict=True):
        ev = dict(zip(cols, values, strict=True))
        row = {**ev, **dict(zip(extra, extras, strict=True))}
        verdict = row["verdict"]
        text: str
        if verdict == "identifier" and (ev.get("reflected_304s") or 0) > 0:
            ev["reflection"] = {"examples": list(row.get("reflected_examples") or [])}
            ev["rules_out_churn"] = (
                "the server answered 304 to If-None-Match values it never issued, sent by a "
                "client that held another value: a server validating its own tags cannot do that"
            )
            text = (f"identifier by reflection: {ev['reflected_304s']} 304s to never-issued "
                    f"If-None-Match values")
        elif verdict == "identifier":
            ruled = ["each value seen by exactly one client (load balancing shares values)",
                     "identical content under every value (not a content change)",
                     "values not tied to backends and not a known server format"]
            if ev.get("overlapping_values"):
                ruled.append("the server accepted several values during the same period")
            if ev.get("reidentified_clients"):
                ruled.append(f"{ev['reidentified_clients']} client(s) got a new value only on an "
                             "unconditional refetch and then kept it with 304s (re-identified)")
            ev["rules_out_churn"] = "; ".join(ruled)
            text = (f"identifier: {ev['clients']} clients each kept their own "
                    f"{ev['validator']} value and got 304s for identical content")
        elif verdict == "likely-identifier":
            ev["confirm_with"] = (
                "fetch this URL from a second, fresh client: a different value that then stays "
                "stable with 304s confirms an identifier; the same value rules it out"
            )
            text = (f"likely identifier: one client kept a high-entropy {ev['validator']} "
                    f"value with {ev['n304']} 304s; needs a second client to confirm")
        elif verdict == "churn":
            cause = churn_cause(row)
            if cause:
                ev["cause"] = cause
            if row.get("value_backends") is not None:
                ev["value_backends"] = row["value_backends"]
            text = (f"churn: {ev['values']} {ev['validator']} values for identical content"
                    + (f" across {ev['backends']} backends" if ev.get("backends") else "")
                    + f"; {ev.get('wasted_revalidations') or 0} wasted revalidations, "
                    f"{ev.get('wasted_bytes') or 0} bytes" + (f" ({cause})" if cause else ""))
        elif verdict == "unstable":
            text = (f"unstable: {ev['values']} {ev['validator']} values over "
                    f"{ev['fetches_2xx']} responses, never a 304")
        elif verdict == "stable":
            kind = "content-derived" if ev.get("content_derived") else "stable"
            ev["kind"] = kind
            text = f"{kind}: {ev['values']} {ev['validator']} value(s) following the content"
        else:
            text = "no validator"
        evidence.append(ev)
        explanation.append(text)
    return evidence, explanation
