"""One strong ETag for different content: bodies or content codings (gzip vs identity).

Bodies are compared only where they are the representation: a 206 carries a part of it and a
HEAD response none, so neither can show "different content" (both still show their coding)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.detectors.codes import first_index, map_distinct, pair
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
    # the first body and coding under each (resource, tag), from integer codes: a groupby
    # "first" over text hashes every value again
    key = pair(rows["rid"].to_numpy(), rows["tid"].to_numpy())
    n = int(key.max()) + 1
    body_v = rows["body"].to_numpy(dtype=object)
    coding_v = rows["coding"].to_numpy(dtype=object)
    has_body = ~pd.isna(body_v)
    first_body = np.full(n, None, dtype=object)
    groups, at = first_index(key, has_body)  # "first" skips missing bodies
    first_body[groups] = body_v[at]
    first_coding = np.full(n, None, dtype=object)
    groups, at = first_index(key)
    first_coding[groups] = coding_v[at]
    fb_rows, fc_rows = first_body[key], first_coding[key]
    body_differs = has_body & ~pd.isna(fb_rows) & (body_v != fb_rows)
    hit_mask = body_differs | (coding_v != fc_rows)
    hit_rows = np.flatnonzero(hit_mask)
    _, once = np.unique(key[hit_rows], return_index=True)  # the first hit per key
    hit_rows = hit_rows[np.sort(once)]
    hit = rows.iloc[hit_rows]
    if hit.empty:
        return empty()
    fb = fb_rows[hit_rows]
    fc = fc_rows[hit_rows]
    ev = [{"etag": r.etag, "first_coding": c, "this_coding": r.coding,
           "same_body": (r.body == b) if isinstance(b, str) and isinstance(r.body, str) else None}
          for r, b, c in zip(hit.itertuples(index=False), fb, fc, strict=True)]
    text = [f"strong ETag {e['etag']} reused for "
            + ("a different coding" if e["first_coding"] != e["this_coding"] else "different content")
            + f" ({e['first_coding']} then {e['this_coding']})" for e in ev]
    return findings(hit, "strong-etag-reused", ev, text)
