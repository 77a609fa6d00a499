"""Content comparisons only use bodies that are the representation.

A HEAD response has no body (captures still record the hash of the empty body), a 206 carries a
part, and 304 / 412 carry none of it: none of them may make content look different (a false
"one strong ETag for different content") or identical (a false "content-derived" validator).
"""

from __future__ import annotations

import exchange_factory as xf

from analysis.detectors import conformance_findings, resource_features, resource_verdicts

URL = "https://cdn.example.com/big.bin"
EMPTY = xf.body_hash("")


def test_head_with_empty_body_hash_is_not_different_content() -> None:
    records = [
        xf.exchange(client="a", url=URL, etag='"s1"', body="the whole file"),
        xf.exchange(client="a", url=URL, etag='"s1"', method="HEAD", content_hash=EMPTY,
                    content_size=0),
    ]
    found = conformance_findings(xf.frame(records))
    assert "strong-etag-reused" not in set(found["rule"])


def test_range_responses_are_not_different_content() -> None:
    records = [
        xf.exchange(client="a", url=URL, etag='"s1"', body="the whole file"),
        xf.exchange(client="a", url=URL, status=206, etag='"s1"', body="the w", req_range="bytes=0-4"),
        xf.exchange(client="b", url=URL, status=206, etag='"s1"', body="hole ", req_range="bytes=5-9"),
    ]
    found = conformance_findings(xf.frame(records))
    assert "strong-etag-reused" not in set(found["rule"])


def test_different_full_bodies_under_one_strong_tag_are_still_found() -> None:
    records = [
        xf.exchange(client="a", url=URL, method="HEAD", etag='"s1"', content_hash=EMPTY),
        xf.exchange(client="a", url=URL, etag='"s1"', body="one"),
        xf.exchange(client="b", url=URL, status=206, etag='"s1"', body="o", req_range="bytes=0-0"),
        xf.exchange(client="b", url=URL, etag='"s1"', body="two"),
    ]
    hit = conformance_findings(xf.frame(records))
    hit = hit[hit["rule"] == "strong-etag-reused"]
    assert len(hit) == 1 and hit.iloc[0]["evidence"]["same_body"] is False


def test_only_representation_bodies_count_as_content() -> None:
    tag = '"' + "0" * 31 + '1"'
    records = [
        xf.exchange(client="a", url=URL, etag=tag, body="the whole file"),
        xf.exchange(client="a", url=URL, etag=tag, method="HEAD", content_hash=EMPTY),
        xf.exchange(client="b", url=URL, status=206, etag=tag, body="part", req_range="bytes=0-3"),
        xf.exchange(client="b", url=URL, status=412, etag=tag, body="precondition failed",
                    req_if_match='"other"'),
    ]
    f = resource_features(xf.frame(records)).loc[(URL, "etag")]
    assert f["content_values"] == 1 and f["values_with_content"] == 1


def test_head_only_resource_is_not_content_derived() -> None:
    """A HEAD's empty-body hash says nothing about the representation."""
    tag = '"a296c6e224c118b0d08cd77e8c08f4b1"'
    row = resource_verdicts(xf.frame([
        xf.exchange(client="a", url=URL, etag=tag, method="HEAD", content_hash=EMPTY,
                    content_size=0)])).iloc[0]
    assert row["evidence"]["content_values"] == 0
    assert row["evidence"]["content_derived"] is False
