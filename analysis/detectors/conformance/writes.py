"""Unprotected writes: PUT / PATCH / DELETE without If-Match or If-Unmodified-Since to a
resource that has validators, so a client could have protected itself against lost updates."""

from __future__ import annotations

import pandas as pd

from analysis.detectors.conformance.base import findings

#: POST is left out: it usually creates a subordinate resource rather than replacing this one.
PROTECTABLE = ("PUT", "PATCH", "DELETE")


def unprotected_write_findings(ex: pd.DataFrame) -> pd.DataFrame:
    """One info finding per resource (its first unprotected write)."""
    has_validators = (ex["etag"].notna() | ex["last_modified"].notna()).groupby(
        ex["resource"]).transform("any")
    writes = ex[ex["ok"] & ex["method"].isin(PROTECTABLE) & has_validators
                & ex["req_if_match"].isna() & ex["req_if_unmodified_since"].isna()
                & ex["status"].between(200, 299)]
    counts = writes.groupby("resource").size()
    hit = writes.drop_duplicates("resource")
    ev = [{"method": m, "unprotected_writes": int(counts[r]),
           "hint": "send If-Match with the ETag read (a server may require it with 428)"}
          for m, r in zip(hit["method"], hit["resource"], strict=True)]
    text = [f"{e['unprotected_writes']} {e['method']} without If-Match / If-Unmodified-Since "
            "although the resource has validators" for e in ev]
    return findings(hit, "unprotected-write", ev, text)
