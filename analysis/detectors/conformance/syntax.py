"""Validator syntax: invalid ETag, repeated ETag fields, invalid or future Last-Modified.

Candidates are found with vectorised tests on the record's parsed columns (analysis.etag's
violations, analysis.httpdate's timestamps). httplint (a maintained message linter) then lints
each distinct flagged header set and its notes (BAD_SYNTAX, SINGLE_HEADER_REPEAT,
BAD_DATE_SYNTAX, LM_FUTURE, DATE_OBSOLETE, ...) go into the evidence. httplint is not run on every
exchange: it costs ~110 us per message (about 2 minutes per million exchanges), so it only
confirms what the vectorised pass flagged; at most HTTPLINT_LIMIT distinct header sets per run.
One finding per (rule, resource, value), at its first exchange, with the number of occurrences.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pandas as pd

from analysis.detectors.codes import map_distinct
from analysis.detectors.conformance.base import empty, findings
from analysis.httpdate import parse_http_date

HTTPLINT_LIMIT = 5000
_HTTPLINT_SUBJECTS = ("field-etag", "field-last-modified", "field-date")
#: httplint notes about caching policy rather than validator syntax.
_HTTPLINT_IGNORED = frozenset({"FRESHNESS_HEURISTIC"})


def _timestamps(values: pd.Series, parsed: pd.Series) -> pd.Series:
    """Parsed HTTP-date timestamps, filling gaps the record left by parsing distinct values."""
    parsed = pd.to_numeric(parsed, errors="coerce")
    gap = values.notna() & parsed.isna()
    if gap.any():
        uniq = values[gap].unique()
        ts = {u: parse_http_date(str(u)).timestamp for u in uniq}
        parsed = parsed.where(~gap, values.map(ts))
    return pd.to_numeric(parsed, errors="coerce")


@lru_cache(maxsize=HTTPLINT_LIMIT)
def httplint_notes(status: int, fields: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """httplint's notes about ETag / Last-Modified / Date for one response header set."""
    from httplint import HttpResponseLinter

    linter = HttpResponseLinter()
    linter.process_response_topline(b"HTTP/1.1", str(status).encode(), b"")
    linter.process_headers([(k.encode(), v.encode("utf-8", "replace")) for k, v in fields])
    linter.finish_content(True)
    return tuple(
        f"{type(n).__name__}: {n.summary}"
        for n in linter.notes
        if n.subject in _HTTPLINT_SUBJECTS and n.level.name in ("BAD", "WARN")
        and type(n).__name__ not in _HTTPLINT_IGNORED
    )


def _fields(row: object) -> tuple[tuple[str, str], ...]:
    """The ETag / Last-Modified / Date lines of a response (repeats kept from resp_headers)."""
    wanted = {"etag", "last-modified", "date"}
    raw = getattr(row, "resp_headers", None)
    if isinstance(raw, str):
        try:
            lines = [(str(k), str(v)) for k, v in json.loads(raw) if str(k).lower() in wanted]
            if lines:
                return tuple(lines)
        except (ValueError, TypeError):
            pass
    out = []
    for name, col in (("ETag", "etag"), ("Last-Modified", "last_modified"), ("Date", "date")):
        value = getattr(row, col, None)
        if isinstance(value, str):
            out.append((name, value))
    return tuple(out)


def syntax_findings(ex: pd.DataFrame, *, use_httplint: bool = True) -> pd.DataFrame:
    ok = ex["ok"].to_numpy(dtype=bool)
    violations = map_distinct(ex["etag_violations"].to_numpy(dtype=object), lambda u: u != "[]")
    unparsed = map_distinct(ex["etag"].to_numpy(dtype=object), lambda u: ~u.str.fullmatch(
        r'\s*(?:W/)?"[^"]*"\s*(?:,\s*(?:W/)?"[^"]*"\s*)*').astype(bool))
    no_violations = pd.isna(ex["etag_violations"].to_numpy(dtype=object))
    lm_ts = _timestamps(ex["last_modified"], ex["last_modified_ts"])
    date_ts = _timestamps(ex["date"], ex["date_ts"])
    candidates = {
        "etag-syntax": ok & ((violations == True) | (no_violations & (unparsed == True))),  # noqa: E712
        "etag-repeated": ok & (pd.to_numeric(ex["etag_count"], errors="coerce").fillna(0) > 1),
        "last-modified-syntax": ok & ex["last_modified"].notna() & lm_ts.isna(),
        "last-modified-future": ok & lm_ts.notna() & date_ts.notna() & (lm_ts > date_ts),
    }
    resp = ex
    value_col = {"etag-syntax": "etag", "etag-repeated": "etag",
                 "last-modified-syntax": "last_modified", "last-modified-future": "last_modified"}
    out = []
    budget = [HTTPLINT_LIMIT]
    for rule, mask in candidates.items():
        hit = resp[np.asarray(mask, dtype=bool)]
        if hit.empty:
            continue
        hit = hit.assign(lmts=lm_ts[hit.index], datets=date_ts[hit.index])
        col = value_col[rule]
        counts = hit.groupby(["resource", col]).size()
        first = hit.drop_duplicates(["resource", col])
        ev = []
        for r in first.itertuples(index=False):
            e: dict[str, object] = {"value": getattr(r, col),
                                    "occurrences": int(counts[(r.resource, getattr(r, col))])}
            if rule == "etag-syntax" and isinstance(r.etag_violations, str):
                e["violations"] = json.loads(r.etag_violations)
            if rule == "last-modified-future":
                e["date"] = r.date
                e["seconds_ahead"] = round(float(r.lmts - r.datets), 1)
            if use_httplint and budget[0] > 0:
                budget[0] -= 1
                e["httplint"] = list(httplint_notes(int(r.status), _fields(r)))
            ev.append(e)
        text = [f"{rule.replace('-', ' ')}: {e['value']!s}"
                + (f" ({e['occurrences']} times)" if e["occurrences"] > 1 else "") for e in ev]
        out.append(findings(first, rule, ev, text))
    return pd.concat(out, ignore_index=True) if out else empty()
