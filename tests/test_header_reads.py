"""The header lists a store loader leaves out (analysis.detectors.header_reads) change nothing:
the detectors find the same on the partial columns as on the whole ones."""

from __future__ import annotations

import json
from pathlib import Path

import exchange_factory as xf
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analysis import store_arrow
from analysis.detectors import INPUT_COLUMNS, run_all
from analysis.detectors.header_reads import PARTIAL_READS
from analysis.etag import parse_etag_list
from analysis.store import load_exchanges

URLS = ["https://a.example/r", "https://a.example/s", "https://b.example/t"]
# every form the syntax rule's pattern treats differently: one tag, lists, spaces, a quote
# inside, unquoted, lower-case w/, an empty tag, no ETag field value at all
TAGS = ['"a"', 'W/"a"', '"b"', ' "a"', '"a" ', '"a", "b"', 'w/"a"', "a", '"a"b"', '""', "W/",
        '"', 'W/"x"y"', '"caf\u00e9"', "\t\"a\""]
DATES = [xf.T0 - 100, xf.T0, xf.T0 + 100]
BAD_DATES = ["yesterday", "Mon, 32 Jan 2024 00:00:00 GMT", ""]

row = st.fixed_dictionaries({
    "url": st.sampled_from(URLS),
    "client": st.sampled_from(["c1", "c2"]),
    "status": st.sampled_from([200, 200, 304, 304, 412, 206, 404]),
    "method": st.sampled_from(["GET", "GET", "HEAD", "PUT"]),
    "etag": st.one_of(st.none(), st.sampled_from(TAGS)),
    # violations as ingest records them (None when valid), or a former record's "[]"
    "violations": st.sampled_from(["ingest", "ingest", "empty-list", "none"]),
    "etag_count": st.sampled_from([None, 0, 1, 1, 2]),
    # a field the response repeated (the column keeps one value, resp_headers every line)
    "repeated": st.sampled_from([None, None, "etag", "last-modified", "date"]),
    "lm": st.one_of(st.none(), st.sampled_from(DATES), st.sampled_from(BAD_DATES)),
    "lm_ts_kept": st.booleans(),
    "date_ts_kept": st.booleans(),
    "inm": st.one_of(st.none(), st.sampled_from(TAGS[:4])),
    "auth": st.sampled_from([None, "authorization", "x-authorization-hint"]),
    "headers_recorded": st.sampled_from(["fields", "empty", "none"]),
})


def _record(i: int, r: dict) -> object:
    started = xf.T0 + i
    extra: dict[str, object] = {}
    if r["violations"] == "ingest":
        violations = parse_etag_list(r["etag"]).violations if r["etag"] is not None else []
        extra["etag_violations"] = json.dumps(list(violations)) if violations else None
    else:
        extra["etag_violations"] = "[]" if r["violations"] == "empty-list" else None
    lm = r["lm"]
    rec = xf.exchange(client=r["client"], url=r["url"], status=r["status"], method=r["method"],
                      etag=r["etag"], inm=r["inm"], started=started, **extra,
                      last_modified=None if isinstance(lm, str) else lm)
    fields: dict[str, object] = {
        "etag_count": r["etag_count"] if r["etag"] is not None else 0,
        "last_modified_ts": rec.last_modified_ts if r["lm_ts_kept"] else None,
        "date_ts": rec.date_ts if r["date_ts_kept"] else None,
    }
    lines = json.loads(rec.resp_headers or "[]")
    if isinstance(lm, str):  # a Last-Modified no parser reads
        fields["last_modified"] = lm
        lines.append(["last-modified", lm])
    lines += [[name, "W/\"other\"" if name == "etag" else "Mon, 01 Jan 2024 00:00:00 GMT"]
              for name, _ in lines if name == r["repeated"]]
    fields["resp_headers"] = json.dumps(lines)
    if r["repeated"] == "etag" and r["etag"] is not None:
        fields["etag_count"] = 2
    request = json.loads(rec.req_headers or "[]")
    if r["auth"]:
        request.append([r["auth"], "k:0f3a"])
    fields["req_headers"] = {"fields": json.dumps(request), "empty": " [] ",
                             "none": None}[r["headers_recorded"]]
    return type(rec)(**{**{f: getattr(rec, f) for f in rec.__struct_fields__}, **fields})


def _loads(path: Path, *, connectorx: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The store read whole and with the partial reads (through connectorx, or through the
    sqlite3 module: the same SQL, without a child process per read)."""
    columns = [*INPUT_COLUMNS, "source_kind"]
    with pytest.MonkeyPatch.context() as mp:
        if not connectorx:
            mp.setattr(store_arrow, "available", lambda: False)
        return (load_exchanges(path, columns),
                load_exchanges(path, columns, partial=PARTIAL_READS))


def _same_analysis(whole: pd.DataFrame, partial: pd.DataFrame) -> None:
    a, b = run_all(whole), run_all(partial)
    for name in ("resources", "findings", "hosts"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), obj=name)
    assert a.summary == b.summary


def _row(**changes: object) -> list[dict]:
    """One response (a 200 with a quoted ETag) with ``changes``, for the examples below."""
    return [{"url": URLS[0], "client": "c1", "status": 200, "method": "GET", "etag": '"a"',
             "violations": "ingest", "etag_count": 1, "lm": None, "lm_ts_kept": True,
             "date_ts_kept": True, "inm": None, "auth": None, "headers_recorded": "fields",
             "repeated": None, **changes}]


# one example per condition of the partial reads: each fails if its condition is dropped
# (a repeated field is what makes the lines of resp_headers differ from the columns)
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(row, min_size=1, max_size=14))
@example(_row(repeated="etag"))  # etag_count > 1
@example(_row(status=304))  # a 304 without preconditions, its request headers recorded
@example(_row(etag="a", repeated="date"))  # violations recorded
@example(_row(etag="a", violations="none", repeated="date"))  # none recorded: re-checked
@example(_row(lm="yesterday", repeated="last-modified"))  # Last-Modified without timestamp
@example(_row(lm=DATES[2], repeated="date"))  # later than the Date
@example(_row(lm=DATES[2], date_ts_kept=False, repeated="date"))  # Date without timestamp
@example(_row(auth="authorization", headers_recorded="fields") * 2
         + [{**_row(client="c2")[0], "etag": '"b"'}])  # credentials
def test_partial_header_columns_change_no_finding(tmp_path_factory, rows: list[dict]) -> None:
    path = xf.store(tmp_path_factory.mktemp("h") / "s.sqlite",
                    [_record(i, r) for i, r in enumerate(rows)])
    whole, partial = _loads(path, connectorx=False)
    _same_analysis(whole, partial)


def test_partial_reads_leave_out_the_rows_no_rule_reads(tmp_path: Path) -> None:
    """The saving is real: plain 200s without Authorization keep neither header list."""
    plain = [xf.exchange(client="c", url=URLS[0], etag='"v1"', last_modified=xf.T0 - 50,
                         started=xf.T0 + i) for i in range(5)]
    flagged = xf.exchange(client="c", url=URLS[1], etag="unquoted", started=xf.T0 + 9,
                          etag_violations='["entity-tag not in double quotes"]')
    bare = xf.exchange(client="c", url=URLS[2], status=304, etag='"v1"', started=xf.T0 + 10)
    whole, partial = _loads(xf.store(tmp_path / "s.sqlite", [*plain, flagged, bare]))
    by_url = partial.set_index("url")
    assert partial["resp_headers"].notna().sum() == 1
    assert by_url.loc[URLS[1], "resp_headers"] == whole.set_index("url").loc[URLS[1], "resp_headers"]
    assert partial["req_headers"].notna().sum() == 1  # the 304: unconditional-304 reads it
    assert pd.notna(by_url.loc[URLS[2], "req_headers"])
    _same_analysis(whole, partial)


def test_a_store_lacking_a_named_column_is_read_whole(tmp_path: Path) -> None:
    """A former schema without a column a condition names: the header list is read whole."""
    import sqlite3

    path = xf.store(tmp_path / "s.sqlite", [xf.exchange(client="c", url=URLS[0], etag='"v"')])
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE exchanges DROP COLUMN date_ts")
    whole, partial = _loads(path)
    assert partial["resp_headers"].tolist() == whole["resp_headers"].tolist()
    assert partial["resp_headers"].notna().all()


@pytest.mark.parametrize("read", sorted(PARTIAL_READS))
def test_each_partial_read_names_the_columns_it_uses(read: str) -> None:
    sql, needs = PARTIAL_READS[read]
    import re

    named = set(re.findall(r"\b([a-z_]+)\b", re.sub(r"'[^']*'", "", sql)))
    from analysis.exchange import COLUMNS

    assert named & set(COLUMNS) == needs
