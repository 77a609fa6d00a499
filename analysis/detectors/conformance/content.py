"""One strong ETag for different content: bodies or content codings (gzip vs identity).

Bodies are compared only where they are the representation: a 206 carries a part of it and a
HEAD response none, so neither can show "different content" (both still show their coding)."""

from __future__ import annotations

import pandas as pd

from analysis.detectors.codes import map_distinct, pair
from analysis.detectors.conformance.base import FINDING_INPUTS, empty, findings


def strong_etag_reuse_findings(ex: pd.DataFrame) -> pd.DataFrame:
    """The first exchange per (resource, strong tag) whose body or coding differs from the first
    body / coding served under that tag. Weak tags may cover equivalent content; strong may not."""
    mask = (ex["ok"] & ex["status"].between(200, 299) & (ex["tid"] >= 0) & (ex["rid"] >= 0)
            & ~ex["etag_weak"].fillna(False).astype(bool) & ex["method"].isin(("GET", "HEAD")))
    rows = ex.loc[mask, [*FINDING_INPUTS, "tid", "etag", "content_hash", "content_encoding"]]
    if rows.empty:
        return empty()
    coding = pd.Series(map_distinct(rows["content_encoding"].to_numpy(dtype=object),
                                    lambda u: u.str.lower().str.strip()), index=rows.index)
    coding = coding.where(coding.notna() & (coding != ""), "identity")
    body = rows["content_hash"].where((rows["status"] != 206) & (rows["method"] == "GET"))
    rows = rows.assign(coding=coding, body=body)
    key = pd.Series(pair(rows["rid"].to_numpy(), rows["tid"].to_numpy()), index=rows.index)
    first_body = rows.groupby(key)["body"].transform("first")
    first_coding = rows.groupby(key)["coding"].transform("first")
    body_differs = rows["body"].notna() & first_body.notna() & (rows["body"] != first_body)
    coding_differs = rows["coding"] != first_coding
    hit_mask = body_differs | coding_differs
    hits = rows[hit_mask]
    hit = hits[~key[hit_mask].duplicated().to_numpy()]
    if hit.empty:
        return empty()
    fb = first_body.loc[hit.index]
    fc = first_coding.loc[hit.index]
    ev = [{"etag": r.etag, "first_coding": c, "this_coding": r.coding,
           "same_body": (r.body == b) if isinstance(b, str) and isinstance(r.body, str) else None}
          for r, b, c in zip(hit.itertuples(index=False), fb, fc, strict=True)]
    text = [f"strong ETag {e['etag']} reused for "
            + ("a different coding" if e["first_coding"] != e["this_coding"] else "different content")
            + f" ({e['first_coding']} then {e['this_coding']})" for e in ev]
    return findings(hit, "strong-etag-reused", ev, text)
