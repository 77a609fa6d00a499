"""Evidence (a JSON-serialisable dict) and a one-line explanation for each resource verdict.

Runs once per resource (not per exchange). The evidence always states the counts behind the
verdict and, for accusations, what rules out the benign explanations (load balancing, content
change); for likely-identifier, what would confirm it (a second client; a body under two
values, or a probe, when several clients kept values for content never seen).
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
    "body_size",
    "wasted_revalidations", "wasted_bytes", "reflected_304s", "reflected_values",
]
_CAUSES = {
    "differs_inode": "inode differs (Apache FileETag INode: each backend's copy has its own inode)",
    "differs_mtime": "mtime differs (unsynchronised deploys: same bytes, different modification times)",
    "differs_change": "change number differs (IIS farm: per-server metabase change numbers)",
}


def _plain(v: Any) -> Any:
    """numpy / pandas scalars to JSON-native values; NaN to None."""
    if v is pd.NA:
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _plain_column(col: pd.Series) -> list[Any]:
    """A column as JSON-native values (what _plain gives per value, without its per-value cost
    where the dtype already guarantees it)."""
    kind = col.dtype.kind
    if kind in "iub" and not (isinstance(col.dtype, pd.api.extensions.ExtensionDtype)
                              and col.isna().any()):  # nullable Int64 holds pd.NA
        return col.tolist()
    if kind == "f":
        return [None if v != v else v for v in col.tolist()]
    return [_plain(v) for v in col.tolist()]


#: How reports name a validator.
VALIDATOR_NAMES = {"etag": "ETag", "last-modified": "Last-Modified"}


def validator_name(validator: object) -> str:
    return VALIDATOR_NAMES.get(str(validator), str(validator))


def human_bytes(n: float) -> str:
    """1368 -> '1.4 kB' (SI units, as browsers' network panels show them)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} GB"


def churn_cause(row: dict[str, Any]) -> str | None:
    """What differs between the values, when they are in a known server format."""
    causes = [text for col, text in _CAUSES.items() if row.get(col) is True]
    if not causes:
        return None
    return f"{row.get('shape')}: " + "; ".join(causes)


def _fallback_cause(ev: dict[str, Any]) -> str:
    """The churn cause when no known format says which part differs."""
    name = validator_name(ev.get("validator"))
    if ev.get("tied_to_backends"):
        return (f"values follow the backends: each backend sends its own {name} for the same "
                f"bytes ({name} not derived from the content)")
    return (f"identical bytes under {ev.get('values')} {name} values shared by several clients "
            f"({name} not derived from the content)")


def _none_evidence(ev: dict[str, Any]) -> dict[str, Any]:
    return {k: ev[k] for k in ("validator", "clients", "exchanges", "values", "n304",
                               "third_party", "wasted_revalidations", "wasted_bytes") if k in ev}


def _identifier(ev: dict[str, Any], row: dict[str, Any]) -> str:
    name = validator_name(ev["validator"])
    if (ev.get("reflected_304s") or 0) > 0:
        ev["reflection"] = {"examples": list(row.get("reflected_examples") or [])}
        ev["rules_out_churn"] = (
            "the server answered 304 to If-None-Match values it never issued, sent by a "
            "client that held another value: a server validating its own tags cannot do that"
        )
        return (f"identifier by reflection: {ev['reflected_304s']} 304s to "
                f"{ev.get('reflected_values') or 0} never-issued If-None-Match values")
    ruled = ["each value seen by exactly one client (load balancing shares values)",
             "identical content under every value (not a content change)",
             "values not tied to backends and not a known server format"]
    if ev.get("overlapping_values"):
        ruled.append("the server accepted several values during the same period")
    if ev.get("reidentified_clients"):
        ruled.append(f"{ev['reidentified_clients']} client(s) got a new value only on an "
                     "unconditional refetch and then kept it with 304s (re-identified)")
    ev["rules_out_churn"] = "; ".join(ruled)
    return (f"identifier: {ev['clients']} clients each kept their own {name} value "
            f"and got {ev['n304']} 304s for identical content")


def _unseen_content(ev: dict[str, Any]) -> str:
    """Several clients, one value each, 304s only: what rules out the benign readings, what
    keeps it from ``identifier`` and what would settle it."""
    name = validator_name(ev["validator"])
    ev["content_unseen"] = True
    ev["rules_out_churn"] = (
        "each value seen by exactly one client (load balancing shares values); values not tied "
        "to backends, not a known server format, a digest or content-coding variants of one "
        "value; each client kept its one value with 304s"
    )
    ev["not_identifier_because"] = (
        f"no 2xx response with a body was seen ({ev.get('fetches_2xx') or 0} issued the {name}), "
        "so identical content under every value is unknown (a content change between clients "
        "could explain the values), and a browser may have cached its value before the capture"
    )
    ev["confirm_with"] = (
        "a 200 response with the same body under two values, or `etagwatch probe URL`, whose "
        "forged-tag test shows reflection directly"
    )
    return (f"likely identifier: {ev['clients']} clients each kept their own high-entropy {name} "
            f"value ({ev['values']} values, none shared) with {ev['n304']} 304s; no 2xx body "
            "seen, so identical content is unconfirmed")


def _churn(ev: dict[str, Any], row: dict[str, Any]) -> str:
    name = validator_name(ev["validator"])
    cause = churn_cause(row)
    ev["cause"] = cause or _fallback_cause(ev)
    mapping = row.get("value_backends")
    if isinstance(mapping, dict):
        ev["value_backends"] = mapping
        ev["backend_labels"] = sorted({b["label"] for bs in mapping.values() for b in bs})
    across = f" across {ev['backends']} backends" if ev.get("backends") else ""
    return (f"churn: {ev['values']} {name} values for identical content{across}; "
            f"{ev.get('wasted_revalidations') or 0} revalidations answered 200 with the same body "
            f"({human_bytes(ev.get('wasted_bytes') or 0)} resent); cause: {ev['cause']}")


def build(resources: pd.DataFrame) -> tuple[list[dict[str, Any]], list[str]]:
    """(evidence, explanation) lists aligned with the rows of ``resources``."""
    evidence: list[dict[str, Any]] = []
    explanation: list[str] = []
    cols = [c for c in _COUNTS if c in resources.columns]
    extra = [c for c in (*_CAUSES, "reflected_examples", "value_backends", "verdict",
                         "content_unseen")
             if c in resources.columns]
    plain_cols = [_plain_column(resources[c]) for c in cols]
    extra_cols = [resources[c].tolist() for c in extra]
    for values, extras in zip(zip(*plain_cols, strict=True) if cols else ([()] * len(resources)),
                              zip(*extra_cols, strict=True), strict=True):
        ev = dict(zip(cols, values, strict=True))
        row = {**ev, **dict(zip(extra, extras, strict=True))}
        verdict = row["verdict"]
        name = validator_name(ev.get("validator"))
        text: str
        if verdict == "identifier":
            text = _identifier(ev, row)
        elif verdict == "likely-identifier" and row.get("content_unseen") is True:
            text = _unseen_content(ev)
        elif verdict == "likely-identifier":
            ev["confirm_with"] = (
                "fetch this URL from a second, fresh client: a different value that then stays "
                "stable with 304s confirms an identifier; the same value rules it out"
            )
            text = (f"likely identifier: one client kept a high-entropy {name} "
                    f"value with {ev['n304']} 304s; needs a second client to confirm")
        elif verdict == "churn":
            text = _churn(ev, row)
        elif verdict == "unstable":
            text = (f"unstable: {ev['values']} {name} values over "
                    f"{ev['fetches_2xx']} responses, never a 304")
        elif verdict == "stable":
            kind = "content-derived" if ev.get("content_derived") else "stable"
            ev["kind"] = kind
            if kind == "content-derived" and ev.get("values") == 1:
                text = (f"content-derived: one {name} value, a digest of the body, "
                        f"{ev['n304']} 304s")
            elif kind == "content-derived":
                text = (f"content-derived: {ev['values']} {name} values, one per body, "
                        f"{ev['n304']} 304s")
            elif ev.get("values") == 1:
                text = f"stable: one {name} value for every client, {ev['n304']} 304s"
            else:
                text = (f"stable: {ev['values']} {name} values, no sign of identifier, churn "
                        f"or instability")
        else:
            ev = _none_evidence(ev)
            text = "no validator: neither ETag nor Last-Modified seen"
        evidence.append(ev)
        explanation.append(text)
    return evidence, explanation
