"""Turn matched exchange rows into finding rows (the shared shape of every rule family)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from analysis.detectors.prepare import exchange_refs
from analysis.findings import FINDING_COLUMNS, RULES

PRECONDITION_FIELDS = (
    "req_if_none_match", "req_if_match", "req_if_modified_since", "req_if_unmodified_since",
    "req_if_range",
)
WRITE_METHODS = ("PUT", "PATCH", "DELETE", "POST")
#: What a finding row needs from its exchange (rule families copy only these plus their own).
FINDING_INPUTS = ["host", "url", "client", "id", "status", "method", "source", "entry_index",
                  "flow_id", "rid"]


def findings(
    rows: pd.DataFrame, rule: str, evidence: Sequence[dict[str, Any]], explanation: Sequence[str]
) -> pd.DataFrame:
    """Finding rows for ``rows`` (prepared exchanges) under ``rule``."""
    r = RULES[rule]
    if rows.empty:
        return empty()
    out = pd.DataFrame({
        "rule": r.id, "severity": r.severity, "rfc": r.rfc,
        "host": rows["host"].to_numpy(), "url": rows["url"].to_numpy(),
        "source": exchange_refs(rows), "client": rows["client"].to_numpy(),
        "exchange_id": _integers(rows["id"]), "status": _integers(rows["status"]),
        "method": rows["method"].to_numpy(),
        "explanation": list(explanation), "evidence": list(evidence),
    })
    return out[FINDING_COLUMNS]


def _integers(values: pd.Series) -> pd.api.extensions.ExtensionArray:
    """Ids and status codes as integers (nullable: a status may be missing), never floats."""
    return pd.array(pd.to_numeric(values, errors="coerce").round(), dtype="Int64")


def empty() -> pd.DataFrame:
    return pd.DataFrame(columns=FINDING_COLUMNS)


def has_preconditions(ex: pd.DataFrame) -> pd.Series:
    return ex[list(PRECONDITION_FIELDS)].notna().any(axis=1)


def plain(v: Any) -> Any:
    """JSON-native scalar (numpy -> Python, NaN -> None)."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    return v
