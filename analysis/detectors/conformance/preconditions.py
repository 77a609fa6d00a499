"""Did the server answer conditional requests as RFC 9110 13.2.2 says? (analysis.conditional)

Only conditional requests are judged, and identical inputs are evaluated once. Reads whose
answer a plain comparison settles (one well-formed If-None-Match tag, or If-Modified-Since alone)
and whose status agrees with it cannot break a rule and are not evaluated one by one. The current
validators are the response's own for reads (a 304 without an ETag borrows the last ETag the
resource served), and the last ones served *before* the request for writes (the response to a
write describes the new state). A write whose prior state the capture never showed is not judged.
Invalid (e.g. unquoted) tags are re-quoted leniently on both sides so a server that sends and
accepts ``abc`` is judged on what it meant; etag-syntax reports the syntax itself.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from analysis.conditional import evaluate
from analysis.detectors.codes import last_before, map_distinct
from analysis.detectors.conformance.base import (
    FINDING_INPUTS,
    PRECONDITION_FIELDS,
    WRITE_METHODS,
    empty,
    findings,
    has_preconditions,
    plain,
)
from analysis.etag import EntityTag, parse_etag, parse_etag_list
from analysis.httpdate import parse_http_date

_READS = ("GET", "HEAD")
_INPUTS = ["method", "inm", "req_if_match", "req_if_modified_since", "req_if_unmodified_since",
           "req_if_range", "req_range", "cur_etag", "cur_lm", "exists", "uncond"]


def _requote_one(value: str) -> str:
    tag = parse_etag(value).tag
    return str(tag) if tag is not None else value


def _requote_list(value: str) -> str:
    parsed = parse_etag_list(value)
    if parsed.star or not parsed.tags or not parsed.violations:
        return value
    return ", ".join(str(t) for t in parsed.tags)


def _map_unique(s: pd.Series, fn) -> pd.Series:  # type: ignore[no-untyped-def]
    uniq = s.dropna().unique()
    return s.map({u: fn(u) for u in uniq})


def _current_validators(ex: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """prev_etag / prev_lm of ``rows``: the last ETag / Last-Modified the resource served before
    each of them."""
    status = ex["status"].to_numpy(dtype=float)
    served = ex["ok"].to_numpy(dtype=bool) & (((status >= 200) & (status <= 299)) | (status == 304))
    rid = ex["rid"].to_numpy()
    out = {}
    for name, col in (("prev_etag", "etag"), ("prev_lm", "last_modified")):
        values = ex[col].to_numpy(dtype=object)
        last = last_before(served & ~pd.isna(values), rid)[rows]
        out[name] = np.where(last >= 0, np.append(values, None)[last], None)
    return pd.DataFrame(out, index=ex.index[rows], dtype=object)


#: One entity-tag in RFC 9110 syntax (ASCII etagc only): a lenient re-parse is the identity.
_STRICT_TAG = re.compile(r'[ \t]*(?:W/)?"([!#-~]*)"[ \t]*')


def _strict_opaque(values: pd.Series) -> pd.Series:
    """Opaque tag of values that are exactly one well-formed entity-tag, else None."""
    def one(uniq: pd.Series) -> pd.Series:
        found = [_STRICT_TAG.fullmatch(u) for u in uniq]
        return pd.Series([m.group(1) if m else None for m in found], dtype=object)

    return pd.Series(map_distinct(values.to_numpy(dtype=object), one), index=values.index,
                     dtype=object)


def _is_star(values: pd.Series) -> pd.Series:
    star = map_distinct(values.to_numpy(dtype=object), lambda u: u.str.strip() == "*")
    return pd.Series(star == True, index=values.index)  # noqa: E712 (None is not a star)


def _valid_ts(value: str) -> float | None:
    parsed = parse_http_date(value)
    return parsed.timestamp if parsed.valid else None


def _date_ts(values: pd.Series) -> pd.Series:
    """Epoch seconds of values that are one valid HTTP-date, else NaN (per distinct value)."""
    def one(uniq: pd.Series) -> pd.Series:
        return pd.Series([_valid_ts(str(u)) for u in uniq], dtype=object)

    out = map_distinct(values.to_numpy(dtype=object), one)
    return pd.to_numeric(pd.Series(out, index=values.index), errors="coerce")


def _needs_evaluation(sub: pd.DataFrame) -> pd.Series:
    """False for reads whose RFC answer is certain from a plain comparison and agrees with the
    status, so no rule can fire: If-None-Match holding one well-formed tag against a well-formed
    current ETag (match: 304, else 200), or If-Modified-Since alone with valid dates (not later:
    304, else 200). Everything else goes through analysis.conditional.evaluate."""
    status = sub["status"]
    ok2xx = status.between(200, 299)
    simple = (sub["method"].isin(_READS) & sub["req_if_match"].isna()
              & sub["req_if_unmodified_since"].isna() & sub["req_range"].isna()
              & ~status.isin((404, 410)))
    inm = simple & sub["req_if_none_match"].notna()
    inm_tag = _strict_opaque(sub["req_if_none_match"].where(inm))
    cur_tag = _strict_opaque(sub["cur_etag"].where(inm))
    inm = inm & inm_tag.notna() & cur_tag.notna()
    match = inm_tag == cur_tag
    settled = inm & ((match & ~ok2xx) | (~match & ~status.isin((304, 412))))
    ims = simple & sub["req_if_none_match"].isna() & sub["req_if_modified_since"].notna()
    ims_ts = _date_ts(sub["req_if_modified_since"].where(ims))
    lm_ts = _date_ts(sub["cur_lm"].where(ims))
    ims = ims & ims_ts.notna() & lm_ts.notna()
    not_modified = lm_ts <= ims_ts
    settled |= ims & ((not_modified & ~ok2xx) | (~not_modified & ~status.isin((304, 412))))
    return ~settled


def precondition_findings(ex: pd.DataFrame) -> pd.DataFrame:
    """missed-304, missed-304-date, false-304, lost-update, weak-if-match, needless-412,
    conflict-not-412 for prepared exchanges ``ex``."""
    # only statuses some rule judges: 2xx, 304, 409, 412
    status = ex["status"]
    judged = status.between(200, 299) | status.isin((304, 409, 412))
    cond = (ex["ok"] & judged & has_preconditions(ex)
            & ~ex["method"].isin(("CONNECT", "OPTIONS", "TRACE")))
    if not cond.any():
        return empty()
    rows = np.flatnonzero(cond.to_numpy())
    cols = list(dict.fromkeys([*FINDING_INPUTS, *PRECONDITION_FIELDS, "req_range", "etag",
                               "last_modified"]))
    sub = ex.iloc[rows][cols].join(_current_validators(ex, rows))
    write = ~sub["method"].isin(_READS)
    own_etag = sub["etag"].where(sub["status"].between(200, 299) | (sub["status"] == 304))
    own_lm = sub["last_modified"].where(sub["status"].between(200, 299) | (sub["status"] == 304))
    sub["cur_etag"] = own_etag.where(~write & own_etag.notna(), sub["prev_etag"])
    sub["cur_lm"] = own_lm.where(~write & own_lm.notna(), sub["prev_lm"])
    # the validator a precondition compares with must be known (the browser may hold one
    # from before the capture); otherwise the exchange is not judged
    unknown = pd.Series(False, index=sub.index)
    no_tag = sub[sub["cur_etag"].isna()]
    if not no_tag.empty:
        needs_tag = (no_tag["req_if_none_match"].notna() & ~_is_star(no_tag["req_if_none_match"])) | (
            no_tag["req_if_match"].notna() & ~_is_star(no_tag["req_if_match"]))
        unknown[needs_tag[needs_tag].index] = True
    needs_date = (sub["req_if_none_match"].isna() & sub["req_if_modified_since"].notna()) | (
        sub["req_if_match"].isna() & sub["req_if_unmodified_since"].notna())
    sub = sub[~unknown & (~needs_date | sub["cur_lm"].notna())]
    if sub.empty:
        return empty()
    sub = sub[_needs_evaluation(sub)]
    if sub.empty:
        return empty()
    sub["cur_etag"] = _map_unique(sub["cur_etag"], _requote_one)
    sub["inm"] = _map_unique(sub["req_if_none_match"], _requote_list)
    sub["exists"] = ~sub["status"].isin((404, 410))
    sub["uncond"] = sub["status"].where(sub["status"].isin((404, 410)))
    keys = sub[_INPUTS].astype(object).where(sub[_INPUTS].notna(), None)
    uniq = keys.drop_duplicates()
    decided: dict[tuple, tuple[int, str, str]] = {}
    for row in uniq.itertuples(index=False):
        headers = [(name, value) for name, value in (
            ("If-None-Match", row.inm), ("If-Match", row.req_if_match),
            ("If-Modified-Since", row.req_if_modified_since),
            ("If-Unmodified-Since", row.req_if_unmodified_since),
            ("If-Range", row.req_if_range), ("Range", row.req_range),
        ) if value is not None]
        d = evaluate(row.method, headers, etag=row.cur_etag, last_modified=row.cur_lm,
                     exists=bool(row.exists),
                     unconditional_status=int(row.uncond) if row.uncond is not None else None)
        decided[tuple(row)] = (d.status, d.reason, d.rfc)
    results = [decided[tuple(r)] for r in keys.itertuples(index=False)]
    sub["expected"] = [r[0] for r in results]
    sub["reason"] = [r[1] for r in results]
    sub["rfc_step"] = [r[2] for r in results]
    actual = sub["status"]
    is_write = ~sub["method"].isin(_READS)
    ok2xx = actual.between(200, 299)
    weak_if_match = sub["req_if_match"].fillna("").map(_has_weak_match_for(sub))
    rules = {
        "missed-304": ~is_write & (sub["expected"] == 304) & ok2xx & sub["inm"].notna(),
        "missed-304-date": ~is_write & (sub["expected"] == 304) & ok2xx & sub["inm"].isna(),
        "false-304": (actual == 304) & sub["expected"].isin((200, 206)),
        "weak-if-match": is_write & (sub["expected"] == 412) & ok2xx & weak_if_match,
        "lost-update": is_write & (sub["expected"] == 412) & ok2xx & ~weak_if_match,
        "needless-412": (actual == 412) & sub["expected"].between(200, 299),
        "conflict-not-412": is_write & (sub["expected"] == 412) & (actual == 409),
    }
    out = []
    for rule, mask in rules.items():
        hit = sub[mask & sub["method"].isin((*_READS, *WRITE_METHODS))]
        if hit.empty:
            continue
        ev = [
            {"request": {k: plain(v) for k, v in (
                ("method", r.method), ("If-None-Match", r.req_if_none_match),
                ("If-Match", r.req_if_match), ("If-Modified-Since", r.req_if_modified_since),
                ("If-Unmodified-Since", r.req_if_unmodified_since)) if plain(v) is not None},
             "current_etag": plain(r.cur_etag), "current_last_modified": plain(r.cur_lm),
             "current_from": "this response" if r.method in _READS else "last response before",
             "status": int(r.status), "expected_status": int(r.expected),
             "rfc_reasoning": r.reason, "rfc_step": r.rfc_step}
            for r in hit.itertuples(index=False)
        ]
        text = [f"{int(r.status)} where RFC 9110 expects {int(r.expected)}: {r.reason}"
                for r in hit.itertuples(index=False)]
        out.append(findings(hit, rule, ev, text))
    return pd.concat(out, ignore_index=True) if out else empty()


def _has_weak_match_for(sub: pd.DataFrame):  # type: ignore[no-untyped-def]
    """If-Match values holding a weak tag (the telltale of weak comparison being used)."""

    def weak(value: str) -> bool:
        if not value:
            return False
        parsed = parse_etag_list(value)
        return any(isinstance(t, EntityTag) and t.weak for t in parsed.tags)

    return {v: weak(v) for v in sub["req_if_match"].fillna("").unique()}
