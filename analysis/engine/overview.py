"""What a capture holds before any judgement (the report's "Capture overview"), as counts an
engine can compute partition by partition and add up: a report of a result dataset shows them
without loading the exchanges."""

from __future__ import annotations

from typing import Any

import pandas as pd

#: How an exchange ended, in the order the report's bars stack them.
OUTCOMES = ("full response (2xx)", "not modified (304)", "from browser cache",
            "other status / failed")


def _col(ex: pd.DataFrame, name: str) -> pd.Series:
    """A column, or missing values when the frame lacks it (frames built by hand)."""
    return ex[name] if name in ex.columns else pd.Series(None, index=ex.index, dtype=object)


def overview_counts(ex: pd.DataFrame) -> dict[str, Any]:
    """Sums (and the time span) over ``ex``; distinct clients and sources are counted by the
    caller across partitions."""
    started = pd.to_numeric(_col(ex, "started"), errors="coerce").dropna()
    conditional = _col(ex, "req_if_none_match").notna() | _col(ex, "req_if_modified_since").notna()
    return {
        "exchanges": len(ex),
        "source_kinds": {str(k): int(n) for k, n in _col(ex, "source_kind").value_counts().items()},
        "started_min": float(started.min()) if len(started) else None,
        "started_max": float(started.max()) if len(started) else None,
        "etag": int(_col(ex, "etag").notna().sum()),
        "last_modified": int(_col(ex, "last_modified").notna().sum()),
        "conditional": int(conditional.sum()),
    }


def host_outcomes(ex: pd.DataFrame) -> pd.DataFrame:
    """Exchanges per host split by outcome: ``host`` plus one column per outcome."""
    status = pd.to_numeric(_col(ex, "status"), errors="coerce")
    from_cache = _col(ex, "from_cache").astype("boolean").fillna(False).astype(bool)
    outcome = pd.Series(OUTCOMES[3], index=ex.index)
    outcome[status.between(200, 299)] = OUTCOMES[0]
    outcome[status == 304] = OUTCOMES[1]
    outcome[from_cache] = OUTCOMES[2]
    table = pd.crosstab(_col(ex, "host").fillna("(no host)").astype(object), outcome)
    table = table.reindex(columns=list(OUTCOMES), fill_value=0).astype("int64")
    table.columns.name = None
    return table.rename_axis("host").reset_index()
