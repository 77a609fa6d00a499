"""Unprotected writes: PUT / PATCH / DELETE without If-Match or If-Unmodified-Since to a
resource that has validators, so a client could have protected itself against lost updates."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.detectors.conformance.base import findings

#: POST is left out: it usually creates a subordinate resource rather than replacing this one.
PROTECTABLE = ("PUT", "PATCH", "DELETE")


def unprotected_write_findings(ex: pd.DataFrame) -> pd.DataFrame:
    """One info finding per resource (its first unprotected write)."""
    writes = ex[ex["ok"] & ex["method"].isin(PROTECTABLE) & ex["req_if_match"].isna()
                & ex["req_if_unmodified_since"].isna() & ex["status"].between(200, 299)]
    if writes.empty:  # most captures: no resource to look up validators for
        return findings(writes, "unprotected-write", [], [])
    # resources with a validator on any of their exchanges (codes: no groupby over text)
    rid = ex["rid"].to_numpy()
    validated = (ex["etag"].notna() | ex["last_modified"].notna()).to_numpy() & (rid >= 0)
    has = np.zeros(int(rid.max()) + 2, dtype=bool)
    has[rid[validated]] = True
    writes = writes[has[writes["rid"].to_numpy()]]
    counts = writes.groupby("resource", observed=True).size()
    hit = writes.drop_duplicates("resource")
    ev = [{"method": m, "unprotected_writes": int(counts[r]),
           "hint": "send If-Match with the ETag read (a server may require it with 428)"}
          for m, r in zip(hit["method"], hit["resource"], strict=True)]
    text = [f"{e['unprotected_writes']} {e['method']} without If-Match / If-Unmodified-Since "
            "although the resource has validators" for e in ev]
    return findings(hit, "unprotected-write", ev, text)
