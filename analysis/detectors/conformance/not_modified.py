"""304 responses: sent without preconditions, or missing headers the 200 carried (15.4.5)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.detectors.codes import last_before
from analysis.detectors.conformance.base import empty, findings, has_preconditions

#: Fields a 304 must repeat when the 200 would have carried them (RFC 9110 15.4.5).
REPEATED_IN_304 = {
    "etag": "ETag", "cache_control": "Cache-Control", "content_location": "Content-Location",
    "date": "Date", "expires": "Expires", "vary": "Vary",
}


def unconditional_findings(ex: pd.DataFrame) -> pd.DataFrame:
    """304 or 412 to a request without preconditions. Skipped when the capture did not record
    the request headers at all (Safari cache entries, stubs): absence there proves nothing."""
    cand = ex[ex["ok"] & ex["status"].isin((304, 412))]
    recorded = cand["req_headers"].notna() & (cand["req_headers"].fillna("[]").str.strip() != "[]")
    bare = recorded & ~has_preconditions(cand)
    out = []
    for status, rule in ((304, "unconditional-304"), (412, "unconditional-412")):
        hit = cand[bare & (cand["status"] == status)]
        ev = [{"method": m, "status": status, "request_preconditions": []} for m in hit["method"]]
        text = [f"{status} to a {m} without If-Match, If-None-Match, If-Modified-Since, "
                "If-Unmodified-Since or If-Range" for m in hit["method"]]
        out.append(findings(hit, rule, ev, text))
    return pd.concat(out, ignore_index=True)


def missing_header_findings(ex: pd.DataFrame) -> pd.DataFrame:
    """304s lacking a field the resource's last 200 (before it) carried."""
    is200 = (ex["ok"] & ex["status"].between(200, 299)
             & ex["method"].isin(("GET", "HEAD"))).to_numpy()
    is304 = (ex["ok"] & (ex["status"] == 304)).to_numpy()
    if not is304.any():
        return empty()
    rows = np.flatnonzero(is304)
    last200 = last_before(is200, ex["rid"].to_numpy(), inclusive=True)[rows]
    known = last200 >= 0
    rows, last200 = rows[known], last200[known]
    missing = pd.DataFrame({
        col: (~pd.isna(ex[col].to_numpy(dtype=object)[last200]))
        & pd.isna(ex[col].to_numpy(dtype=object)[rows])
        for col in REPEATED_IN_304}, index=rows)
    hit_mask = missing.any(axis=1)
    hit = ex.iloc[rows[hit_mask.to_numpy()]]
    if hit.empty:
        return empty()
    names = [[REPEATED_IN_304[c] for c in REPEATED_IN_304 if row[c]]
             for row in missing[hit_mask].to_dict("records")]
    ev = [{"missing": n, "compared_with": "the resource's last 2xx response before this 304"}
          for n in names]
    text = [f"304 without {', '.join(n)} that the 200 carried" for n in names]
    return findings(hit, "304-missing-headers", ev, text)
