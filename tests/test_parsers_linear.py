"""Every parser of field values is linear in its input: adversarial values of 256 KiB each
(long runs of the characters each grammar pivots on), and the 1 MB whitespace date that took
hours before. pytest-timeout fails a test that goes quadratic again instead of hanging the run.
"""

from __future__ import annotations

import pytest

from addons.replay_responses import parse_single_range
from analysis.conditional import evaluate
from analysis.detectors.shapes import format_candidates
from analysis.digests import digest_match, stem
from analysis.etag import parse_etag, parse_etag_list, split_list
from analysis.httpdate import NOT_HTTP_DATE, ZONE_NOT_GMT, parse_http_date
from analysis.readers.cookies import parse_cookie_header, set_cookies
from analysis.sites import registrable_domain, url_host
from analysis.urlparts import split_url

SIZE = 256 * 1024


def _run(unit: str) -> str:
    return (unit * (SIZE // len(unit) + 1))[:SIZE]


#: Runs of what the grammars split, strip, quote or repeat on, each with a tail that fails the
#: match only at the end (the shape that makes a backtracking regex rescan).
ADVERSARIAL = {
    "spaces": "x" + _run(" ") + "x!",
    "tabs-newlines": _run("\t\n") + "x",
    "commas": _run(", "),
    "quotes": _run('"'),
    "weak-prefixes": _run("W/"),
    "digits": _run("1") + "-",
    "hex-dashes": _run("a-"),
    "colons": _run(":"),
    "day-names": _run("Mon, "),
    "zones": _run("GMT +0000 "),
    "dates": _run("Sun, 06 Nov 1994 08:49:37 GMT, "),
    "semicolons": _run("; ="),
    "dots": _run("a."),
    "coding-suffixes": _run("-gzip"),
    "spaces-then-comma": _run(" ") + ",Mon",
}

PARSERS = {
    "parse_http_date": parse_http_date,
    "parse_etag": parse_etag,
    "parse_etag_list": parse_etag_list,
    "split_list": split_list,
    "parse_cookie_header": parse_cookie_header,
    "set_cookies": lambda v: set_cookies([v]),
    "split_url path": lambda v: split_url("http://h.test/" + v),
    "split_url host": lambda v: split_url("http://" + v),
    "url_host": lambda v: url_host("https://" + v),
    "registrable_domain": registrable_domain,
    "format_candidates": format_candidates,
    "digest_match": lambda v: digest_match(v, b"body"),
    "stem": stem,
    "range": lambda v: parse_single_range("bytes=" + v, 100),
    "If-None-Match": lambda v: evaluate("GET", {"If-None-Match": v}, etag='"a"'),
    "If-Match": lambda v: evaluate("PUT", {"If-Match": v}, etag='"a"'),
    "If-Modified-Since": lambda v: evaluate(
        "GET", {"If-Modified-Since": v}, last_modified="Sun, 06 Nov 1994 08:49:37 GMT"
    ),
    "If-Range": lambda v: evaluate("GET", {"If-Range": v, "Range": "bytes=0-1"}, etag='"a"'),
}


@pytest.mark.timeout(3)
@pytest.mark.parametrize("parser", list(PARSERS))
def test_parser_is_linear_on_adversarial_values(parser):
    parse = PARSERS[parser]
    for value in ADVERSARIAL.values():
        parse(value)  # the assertion is the timeout: 15 values of 256 KiB in 3 s


@pytest.mark.timeout(2)
def test_megabyte_of_whitespace_in_a_date_is_read_at_once():
    # "x" + 30,000 spaces + "x!" took 72 s; 1 MB never finished
    parsed = parse_http_date("x" + " " * 1_000_000 + "x!")
    assert not parsed.valid and parsed.violations == (NOT_HTTP_DATE,)


@pytest.mark.timeout(2)
def test_diagnosis_survives_the_linear_rewrite():
    # the zone diagnosis still sees through any amount of whitespace before the zone
    parsed = parse_http_date("Sun, 06 Nov 1994 08:49:37" + " " * 100_000 + "UTC")
    assert parsed.violations == (NOT_HTTP_DATE, ZONE_NOT_GMT)


@pytest.mark.timeout(60)
def test_adversarial_values_in_every_header_go_through_ingest_and_analyze(tmp_path):
    """The whole path (readers, record building, the detectors' preparation, the report) meets
    each adversarial value in every field it parses, cut to the 64 KiB field cap."""
    from har_builder import Har

    from analysis.cli import main

    har = Har()
    names = ("ETag", "Last-Modified", "Date", "Cache-Control", "Vary", "Set-Cookie", "Age",
             "Expires", "Content-Length", "Content-Type", "Content-Encoding", "Location")
    for i, value in enumerate(ADVERSARIAL.values()):
        cut = value[: 60 * 1024]
        har.get(f"https://a.test/r{i}?q={cut[:100]}", at=1_700_000_000 + i, body="x",
                headers=[(n, cut) for n in names],
                req_headers=[("If-None-Match", cut), ("If-Modified-Since", cut), ("Cookie", cut)])
    path = har.write(tmp_path / "adversarial.har")
    db = tmp_path / "s.sqlite"
    assert main(["ingest", str(path), "--db", str(db), "--no-progress"]) == 0
    import sqlite3

    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM exchanges").fetchone()[0] == len(ADVERSARIAL)
    out = tmp_path / "out.json"
    assert main(["analyze", str(db), "--json", str(out)]) == 0
    assert out.stat().st_size > 0
