"""The fast paths give the answers of the slow ones.

The precondition pass skips reads whose RFC answer a plain comparison settles and whose status
agrees with it; the integer-code helpers replace pandas groupbys. Both are checked here against
the straightforward computation on random captures.
"""

from __future__ import annotations

import exchange_factory as xf
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analysis.detectors import codes as C
from analysis.detectors import prepare
from analysis.detectors.conformance import preconditions

URL = "https://api.example.com/r"
TAGS = ['"a"', '"b"', 'W/"a"', "a", '"a", "b"', "*", '"c" ', 'w/"b"', '"caf\u00e9"']
DATES = [xf.T0 - 100, xf.T0, xf.T0 + 100]

exchange = st.fixed_dictionaries({
    "method": st.sampled_from(["GET", "GET", "HEAD", "PUT"]),
    "status": st.sampled_from([200, 200, 304, 304, 206, 412, 404, 409, 500]),
    "etag": st.one_of(st.none(), st.sampled_from([*TAGS[:3], '"c"', "bare"])),
    "inm": st.one_of(st.none(), st.sampled_from(TAGS)),
    "ims": st.one_of(st.none(), st.sampled_from(DATES)),
    "lm": st.one_of(st.none(), st.sampled_from(DATES)),
    "if_match": st.one_of(st.none(), st.none(), st.sampled_from(TAGS)),
    "range": st.one_of(st.none(), st.none(), st.just("bytes=0-1")),
    "url": st.sampled_from([URL, URL + "/2"]),
})


def _records(rows: list[dict]) -> list:
    out = []
    for i, r in enumerate(rows):
        extra = {k: v for k, v in (("req_if_match", r["if_match"]), ("req_range", r["range"]))
                 if v is not None}
        out.append(xf.exchange(client="c", url=r["url"], status=r["status"], method=r["method"],
                               etag=r["etag"], inm=r["inm"], ims=r["ims"],
                               last_modified=r["lm"], started=xf.T0 + i, **extra))
    return out


def _canonical(found: pd.DataFrame) -> list:
    return sorted((r["rule"], int(r["exchange_id"]), r["explanation"]) for _, r in found.iterrows())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(exchange, min_size=1, max_size=12))
def test_precondition_shortcut_changes_no_finding(rows: list[dict]) -> None:
    ex = prepare(xf.frame(_records(rows)))
    fast = preconditions.precondition_findings(ex)
    original = preconditions._needs_evaluation
    preconditions._needs_evaluation = lambda sub: pd.Series(True, index=sub.index)
    try:
        slow = preconditions.precondition_findings(ex)
    finally:
        preconditions._needs_evaluation = original
    assert _canonical(fast) == _canonical(slow)


def test_shortcut_skips_the_settled_cases() -> None:
    """The common cases never reach evaluate: a matching 304 and a non-matching 200."""
    ex = prepare(xf.frame([
        xf.exchange(client="c", url=URL, etag='"a"'),
        xf.exchange(client="c", url=URL, status=304, etag='"a"', inm='"a"'),
        xf.exchange(client="c", url=URL, etag='"b"', inm='"a"'),
        xf.exchange(client="c", url=URL, etag='"b"', inm='"b"'),  # missed 304: evaluated
    ]))
    sub = ex[ex["req_if_none_match"].notna()].assign(cur_etag=ex["etag"], cur_lm=None)
    assert list(preconditions._needs_evaluation(sub)) == [False, False, True]


codes = st.lists(st.integers(-1, 6), min_size=1, max_size=60)


@given(codes, codes)
def test_nunique_matches_pandas(group: list[int], x: list[int]) -> None:
    n = min(len(group), len(x))
    g, v = np.array(group[:n]), np.array(x[:n])
    ref = (pd.DataFrame({"g": g, "v": np.where(v >= 0, v, np.nan)})[g >= 0]
           .groupby("g")["v"].nunique().reindex(range(7), fill_value=0))
    assert list(C.nunique(g, v, 7)) == list(ref)


def _copy(value: object) -> object:
    """An equal value in an object of its own (the loader shares one object per chunk only)."""
    return (value + ".")[:-1] if isinstance(value, str) else value


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "caf\u00e9", "", None, np.nan, "x" * 40]),
                          st.booleans()), min_size=1, max_size=30),
       st.booleans())
def test_factorize_by_identity_matches_pandas(items: list[tuple[object, bool]], sort: bool) -> None:
    """Shared objects, equal text in distinct objects and both kinds of missing, repeated past
    the size where factorize groups by object identity first: pandas' codes and values."""
    base = np.array([_copy(v) if fresh else v for v, fresh in items], dtype=object)
    values = np.concatenate([base] * (C._BY_IDENTITY_FROM // len(base) + 1)
                            + [np.array([_copy(v) for v in base], dtype=object)])
    assert len(values) >= C._BY_IDENTITY_FROM
    codes, uniques = C.factorize(pd.Series(values), sort=sort)
    ref_codes, ref_uniques = pd.factorize(values, sort=sort)
    assert codes.dtype == np.int64 and list(codes) == list(ref_codes)
    assert list(uniques) == list(np.asarray(ref_uniques, dtype=object))


@given(st.lists(st.tuples(st.integers(-1, 3), st.booleans()), min_size=1, max_size=40))
def test_last_before_matches_grouped_shift_ffill(rows: list[tuple[int, bool]]) -> None:
    rows = sorted(rows, key=lambda r: (r[0] < 0, r[0]))  # frames are sorted by resource
    group = np.array([r[0] for r in rows])
    mask = np.array([r[1] for r in rows])
    pos = pd.Series(np.where(mask, np.arange(len(rows)), np.nan))
    key = pd.Series(np.where(group >= 0, group, np.nan))
    ref = pos.groupby(key).shift().groupby(key).ffill().fillna(-1).astype(int)
    ref[group < 0] = -1
    assert list(C.last_before(mask, group)) == list(ref)


@pytest.mark.parametrize("mask", [None, np.array([True, False, True, True, False, True])])
def test_first_index(mask) -> None:  # type: ignore[no-untyped-def]
    group = np.array([2, 0, 2, -1, 0, 0])
    groups, rows = C.first_index(group, mask)
    frame = pd.DataFrame({"g": group, "i": range(6)})
    if mask is not None:
        frame = frame[mask]
    expect = frame[frame["g"] >= 0].groupby("g")["i"].first()
    assert list(groups) == list(expect.index) and list(rows) == list(expect)


def test_etag_shapes_of_known_formats() -> None:
    """The one-pass shape reader still tells the server formats (field notes section 3)."""
    from analysis.detectors.shapes import etag_shapes

    got = etag_shapes(pd.Series([
        "1a2b-5d2-5e1c2f3a4b5c6", "5e1c2f3a-5d2", "5d2-5e1c2f3a4b5c6-gzip",
        "a0b1c2d3e4f5a6b7:1f", "d41d8cd98f00b204e9800998ecf8427e", "uid-Zq81hR2mK0pL7sX4vW9y",
        "abc",
    ]))
    assert list(got["shape"]) == ["apache-inode-size-mtime", "nginx-mtime-size",
                                  "apache-size-mtime", "iis", "digest", "other", "other"]
    assert got.loc["1a2b-5d2-5e1c2f3a4b5c6", "inode"] == "1a2b"
    assert got.loc["5e1c2f3a-5d2", "mtime"] == "5e1c2f3a"
    assert got.loc["a0b1c2d3e4f5a6b7:1f", "change"] == "1f"
    assert bool(got.loc["d41d8cd98f00b204e9800998ecf8427e", "hash_like"])
    assert not bool(got.loc["abc", "hash_like"]) and got.loc["abc", "bits"] == 12.0


_HEX = "0123456789abcdefABCDEF"
_ETAG_LIKE = st.one_of(
    st.text(alphabet=_HEX + "-:", max_size=40),
    st.builds(lambda a, b, c, sfx: f"{a}-{b}-{c}{sfx}", st.text(_HEX, min_size=1, max_size=17),
              st.text(_HEX, min_size=1, max_size=17), st.text(_HEX, min_size=7, max_size=17),
              st.sampled_from(["", "-gzip", ";br", "--GZIP", ":zstd", "+deflate", "-identity"])),
    st.builds(lambda a, b: f"{a}:{b}", st.text(_HEX, min_size=7, max_size=17),
              st.text(_HEX, min_size=1, max_size=5)),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-=",
            min_size=20, max_size=45),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
)


@given(st.lists(_ETAG_LIKE, max_size=40))
@settings(max_examples=300, deadline=None)
def test_shapes_in_arrow_read_as_shape_of_does(values: list[str]) -> None:
    """The array reader (RE2 in Arrow) gives every printable-ASCII value the shape, format
    parts, alphabet, mix and stem of the one-value reader (Python's re)."""
    from analysis.detectors.shapes import _PART_COLUMNS, _shape_of, _shapes_in_arrow
    from analysis.digests import CODING_SUFFIX

    got = _shapes_in_arrow(values)
    for i, v in enumerate(values):
        shape, parts, per_char, mixed = _shape_of(v)
        assert (got["shape"][i], got["per_char"][i], bool(got["mixed"][i])) == (
            shape, per_char, mixed), v
        assert {c: got[c][i] for c in _PART_COLUMNS} == {c: parts.get(c) for c in _PART_COLUMNS}, v
        assert got["stem"][i] == CODING_SUFFIX.sub("", v), v


def test_etag_shapes_reads_other_values_one_by_one() -> None:
    """Values outside printable ASCII (a Unicode digit, a trailing newline: where RE2 and re
    differ) take the one-value reader; the frame is the same either way."""
    from analysis.detectors.shapes import _shape_of, etag_shapes

    values = ["5e1c2f3a-5d2\n", "abc\u0663", "d41d8cd98f00b204e9800998ecf8427e", "x-gzip"]
    got = etag_shapes(pd.Series(values))
    for v in values:
        assert got.loc[v, "shape"] == _shape_of(v)[0]
    assert got.loc["5e1c2f3a-5d2\n", "shape"] == "nginx-mtime-size"  # re's $ before a newline


def _strong_reuse_by_groupby(ex: pd.DataFrame) -> list:
    """strong-etag-reused as first written: groupby "first" over the rows' text (reference)."""
    mask = (ex["ok"] & ex["status"].between(200, 299) & (ex["tid"] >= 0) & (ex["rid"] >= 0)
            & ~ex["etag_weak"].fillna(False).astype(bool) & ex["method"].isin(("GET", "HEAD")))
    rows = ex.loc[mask]
    if rows.empty:
        return []
    coding = rows["content_encoding"].str.lower().str.strip()
    coding = coding.where(coding.notna() & (coding != ""), "identity")
    body = rows["content_hash"].where((rows["status"] != 206) & (rows["method"] == "GET"))
    key = rows["rid"].astype(str) + "/" + rows["tid"].astype(str)
    first_body = body.groupby(key).transform("first")
    first_coding = coding.groupby(key).transform("first")
    differs = (body.notna() & first_body.notna() & (body != first_body)) | (coding != first_coding)
    hit = rows[differs & ~key.where(differs).duplicated()]
    return sorted(int(i) for i in hit["id"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from([URL, URL + "/2"]),
                          st.sampled_from(['"a"', '"b"', 'W/"a"', None]),
                          st.sampled_from(["one", "two", None]),
                          st.sampled_from([None, "gzip", " GZIP", "", "br"]),
                          st.sampled_from([("GET", 200), ("GET", 206), ("HEAD", 200),
                                           ("PUT", 200), ("GET", 304)])),
                min_size=1, max_size=14))
@example(rows=[(URL, '"a"', None, None, ("HEAD", 200)),  # "first" skips the bodiless HEAD
               (URL, '"a"', "one", None, ("GET", 200)), (URL, '"a"', "two", None, ("GET", 200))])
@example(rows=[(URL, '"a"', "one", None, ("GET", 200)), (URL, '"a"', "one", "gzip", ("GET", 200)),
               (URL, '"a"', "two", "gzip", ("GET", 200))])  # one finding per (resource, tag)
def test_strong_reuse_by_codes_matches_groupby(rows: list[tuple]) -> None:
    from analysis.detectors.conformance.content import strong_etag_reuse_findings

    records = [xf.exchange(client="c", url=url, etag=etag, body=body, method=method,
                           status=status, started=xf.T0 + i,
                           resp_headers=[["content-encoding", coding]] if coding is not None
                           else None, content_encoding=coding)
               for i, (url, etag, body, coding, (method, status)) in enumerate(rows)]
    ex = prepare(xf.frame(records))
    found = strong_etag_reuse_findings(ex)
    assert sorted(int(i) for i in found["exchange_id"]) == _strong_reuse_by_groupby(ex)
