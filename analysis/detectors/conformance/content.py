"""One strong ETag for different content: bodies or content codings (gzip vs identity)."""

from __future__ import annotations

import pandas as pd

from analysis.detectors.conformance.base import empty, findings


def strong_etag_reuse_findings(ex: pd.DataFrame) -> pd.DataFrame:
    """The first exchange per (resource, strong tag) whose body or coding differs from the first
    body / coding served under that tag. Weak tags may cover equivalent content; strong may not."""
    rows = ex[ex["ok"] & ex["status"].between(200, 299) & ex["tag"].notna()
              & ~ex["etag_weak"].fillna(False).astype(bool)
              & ex["method"].isin(("GET", "HEAD"))]
    if rows.empty:
        return empty()
    coding = rows["content_encoding"].fillna("identity").str.lower().str.strip()
    coding = coding.where(coding != "", "identity")
    rows = rows.assign(coding=coding)
    key = [rows["resource"], rows["tag"]]
    first_body = rows.groupby(key)["content_hash"].transform("first")
    first_coding = rows.groupby(key)["coding"].transform("first")
    body_differs = rows["content_hash"].notna() & first_body.notna() & (
        rows["content_hash"] != first_body)
    coding_differs = rows["coding"] != first_coding
    hit = rows[body_differs | coding_differs]
    hit = hit.drop_duplicates(["resource", "tag"])
    if hit.empty:
        return empty()
    fb = first_body.loc[hit.index]
    fc = first_coding.loc[hit.index]
    ev = [{"etag": r.etag, "first_coding": c, "this_coding": r.coding,
           "same_body": (r.content_hash == b) if isinstance(b, str) and isinstance(r.content_hash, str) else None}
          for r, b, c in zip(hit.itertuples(index=False), fb, fc, strict=True)]
    text = [f"strong ETag {e['etag']} reused for "
            + ("a different coding" if e["first_coding"] != e["this_coding"] else "different content")
            + f" ({e['first_coding']} then {e['this_coding']})" for e in ev]
    return findings(hit, "strong-etag-reused", ev, text)
