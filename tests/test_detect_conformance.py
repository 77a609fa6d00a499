"""Conformance findings: each rule fires on the exchange that breaks it, and not on a correct one."""

from __future__ import annotations

import json

import exchange_factory as xf
import pandas as pd

from analysis.detectors import conformance_findings

URL = "https://api.example.com/doc/1"


def rules(records) -> pd.DataFrame:
    return conformance_findings(xf.frame(records))


def only(found: pd.DataFrame, rule: str) -> pd.Series:
    hit = found[found["rule"] == rule]
    assert len(hit) == 1, found[["rule", "explanation"]]
    row = hit.iloc[0]
    json.dumps(row["evidence"])
    assert row["source"].startswith("synthetic/") and "#" in row["source"]
    return row


def test_missed_304_and_correct_304() -> None:
    found = rules([
        xf.exchange(client="c", url=URL, etag='"v1"'),
        xf.exchange(client="c", url=URL, etag='"v1"', inm='"v1"'),  # should have been 304
        xf.exchange(client="c", url=URL, status=304, etag='"v1"', inm='"v1"'),  # right
    ])
    row = only(found, "missed-304")
    assert row["evidence"]["expected_status"] == 304 and row["severity"] == "warning"
    assert "13.2.2 step 3" in row["evidence"]["rfc_step"]
    assert "false-304" not in set(found["rule"])


def test_missed_304_on_satisfied_if_modified_since() -> None:
    lm = xf.T0 - 1000
    found = rules([xf.exchange(client="c", url=URL, last_modified=lm, ims=lm)])
    assert only(found, "missed-304-date")["evidence"]["expected_status"] == 304


def test_false_304() -> None:
    found = rules([
        xf.exchange(client="c", url=URL, etag='"v2"'),
        xf.exchange(client="c", url=URL, status=304, etag='"v2"', inm='"v1"'),
    ])
    row = only(found, "false-304")
    assert row["severity"] == "error" and row["evidence"]["expected_status"] == 200


def test_304_missing_headers_the_200_carried() -> None:
    found = rules([
        xf.exchange(client="c", url=URL, etag='"v1"', cache_control="max-age=60", vary="Accept"),
        xf.exchange(client="c", url=URL, status=304, etag=None, inm='"v1"', date=None),
    ])
    row = only(found, "304-missing-headers")
    assert row["evidence"]["missing"] == ["ETag", "Cache-Control", "Date", "Vary"]


def test_unconditional_304_and_412() -> None:
    found = rules([
        xf.exchange(client="c", url=URL, status=304),
        xf.exchange(client="c", url=URL + "x", method="PUT", status=412),
        xf.exchange(client="c", url=URL + "y", status=304, req_headers="[]"),  # not recorded
    ])
    assert only(found, "unconditional-304")["url"] == URL
    assert only(found, "unconditional-412")["method"] == "PUT"


def test_lost_update_needless_412_and_conflict() -> None:
    found = rules([
        xf.exchange(client="a", url=URL, etag='"v1"'),
        xf.exchange(client="a", url=URL, method="PUT", status=204, req_if_match='"v0"', body=None),
        xf.exchange(client="b", url=URL + "/2", etag='"w1"'),
        xf.exchange(client="b", url=URL + "/2", method="PATCH", status=412, req_if_match='"w1"'),
        xf.exchange(client="b", url=URL + "/3", etag='"z1"'),
        xf.exchange(client="b", url=URL + "/3", method="PUT", status=409, req_if_match='"z0"'),
        xf.exchange(client="b", url=URL + "/4", etag='"k1"'),
        xf.exchange(client="b", url=URL + "/4", method="PUT", status=200, req_if_match='"k1"'),
    ])
    assert only(found, "lost-update")["evidence"]["current_etag"] == '"v1"'
    assert only(found, "needless-412")["url"] == URL + "/2"
    assert only(found, "conflict-not-412")["url"] == URL + "/3"
    assert not (found["url"] == URL + "/4").any()


def test_weak_tag_accepted_by_if_match() -> None:
    found = rules([
        xf.exchange(client="a", url=URL, etag='W/"v1"'),
        xf.exchange(client="a", url=URL, method="PUT", status=200, req_if_match='W/"v1"'),
    ])
    assert only(found, "weak-if-match")["severity"] == "error"
    assert "lost-update" not in set(found["rule"])


def test_write_against_unknown_state_is_not_judged() -> None:
    found = rules([xf.exchange(client="a", url=URL, method="PUT", status=200, req_if_match='"q"')])
    assert found.empty


def test_strong_etag_for_gzip_and_identity() -> None:
    found = rules([
        xf.exchange(client="a", url=URL, etag='"s1"', body="plain"),
        xf.exchange(client="b", url=URL, etag='"s1"', body="plain", content_encoding="gzip"),
        xf.exchange(client="c", url=URL + "/w", etag='W/"s1"', body="plain"),
        xf.exchange(client="d", url=URL + "/w", etag='W/"s1"', body="other"),
    ])
    row = only(found, "strong-etag-reused")
    assert row["evidence"]["this_coding"] == "gzip" and row["url"] == URL


def test_strong_etag_for_different_bodies() -> None:
    found = rules([xf.exchange(client="a", url=URL, etag='"s1"', body="one"),
                   xf.exchange(client="b", url=URL, etag='"s1"', body="two")])
    assert only(found, "strong-etag-reused")["evidence"]["same_body"] is False


def test_syntax_rules_with_httplint_notes() -> None:
    found = rules([
        xf.exchange(client="a", url=URL, etag="unquoted", etag_opaque="unquoted",
                    etag_violations=json.dumps(["entity-tag not in double quotes (RFC 9110 8.8.3)"])),
        xf.exchange(client="a", url=URL + "/r", etag='"a", "b"', etag_count=2,
                    resp_headers=json.dumps([["etag", '"a"'], ["etag", '"b"']])),
        _with(xf.exchange(client="a", url=URL + "/l"),
              last_modified="Thu, 26 May 2011 15:59:36 UTC"),
        xf.exchange(client="a", url=URL + "/f", started=xf.T0, last_modified=xf.T0 + 86400),
    ])
    syntax = only(found, "etag-syntax")
    assert any(n.startswith("BAD_SYNTAX") for n in syntax["evidence"]["httplint"])
    assert any(n.startswith("SINGLE_HEADER_REPEAT")
               for n in only(found, "etag-repeated")["evidence"]["httplint"])
    assert only(found, "last-modified-syntax")["url"] == URL + "/l"
    future = only(found, "last-modified-future")
    assert future["evidence"]["seconds_ahead"] == 86400
    assert any(n.startswith("LM_FUTURE") for n in future["evidence"]["httplint"])


def test_unprotected_write_is_info() -> None:
    found = rules([
        xf.exchange(client="a", url=URL, etag='"v1"'),
        xf.exchange(client="a", url=URL, method="PUT", status=204, body=None),
        xf.exchange(client="a", url=URL, method="DELETE", status=204, body=None),
        xf.exchange(client="a", url=URL + "/n", method="PUT", status=204, body=None),
    ])
    row = only(found, "unprotected-write")
    assert row["severity"] == "info" and row["evidence"]["unprotected_writes"] == 2


def test_errors_sort_first() -> None:
    found = rules([
        xf.exchange(client="c", url=URL, status=304),
        xf.exchange(client="a", url=URL + "/z", etag='"v1"'),
        xf.exchange(client="a", url=URL + "/z", method="PUT", status=204, body=None),
    ])
    assert list(found["severity"]) == ["error", "info"]


def _with(record, **changes):
    import msgspec

    return msgspec.structs.replace(record, **changes)
