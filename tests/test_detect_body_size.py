"""A resource's body size (the ``small_body`` context signal) comes from its representations:
2xx responses carrying the body, never the 0 bytes of a 304."""

from __future__ import annotations

import json

import exchange_factory as xf
import pandas as pd
import pytest

from analysis.detectors import resource_verdicts
from analysis.detectors.verdicts import SMALL_BODY

URL = "https://www.example.org/big.bin"
TAG = '"Zq81hR2mK0pL7sX4vW9yB3nC"'  # opaque, high-entropy: a single client's suspect value


def row_of(records: list, url: str = URL) -> pd.Series:
    res = resource_verdicts(xf.frame(records))
    return res[res["url"] == url].iloc[0]


def revalidated(body: str, revisits: int, **kw: object) -> list:
    return xf.visits("c", URL, TAG, revisits=revisits, body=body, **kw)


def test_large_file_revalidated_often_is_not_small() -> None:
    """200 kB once, then 20 revalidations answered 304 (0 bytes each): the median of every
    response was 0, which made the file look like a tracking pixel."""
    row = row_of(revalidated("x" * 200_000, revisits=20))
    assert row["n304"] == 20
    assert row["body_size"] == 200_000
    assert not row["small_body"]
    assert row["evidence"]["small_body"] is False and row["evidence"]["body_size"] == 200_000
    # small_body was its only context signal: without it the one client's value is no suspect,
    # and one client alone is no evidence of benignity either
    assert row["verdict"] == "undetermined"


def test_pixel_keeps_its_size_and_stays_small() -> None:
    row = row_of(revalidated("GIF89a" + "\0" * 37, revisits=20))
    assert row["body_size"] == 43 and row["small_body"]
    assert row["verdict"] == "likely-identifier"
    assert row["evidence"]["small_body"] is True and row["evidence"]["body_size"] == 43


def test_wire_bytes_are_preferred_to_the_decoded_size() -> None:
    """A compressed transfer: body_size (wire) 3 kB of a 30 kB decoded body."""
    first = xf.exchange(client="c", url=URL, etag=TAG, body="y" * 30_000, body_size=3_000)
    row = row_of([first, xf.exchange(client="c", url=URL, status=304, etag=TAG, inm=TAG)])
    assert row["body_size"] == 3_000 and row["small_body"]


@pytest.mark.parametrize("wire", [0, None])
def test_cache_hit_size_comes_from_the_decoded_body(wire: int | None) -> None:
    """A browser-cache hit moved no bytes (body_size 0 or unknown) but its decoded size says
    how big the resource is."""
    hit = xf.exchange(client="c", url=URL, etag=TAG, body="z" * 9_000, body_size=wire,
                      from_cache=True)
    reval = xf.exchange(client="c", url=URL, status=304, etag=TAG, inm=TAG)
    row = row_of([hit, reval])
    assert row["body_size"] == 9_000 and not row["small_body"]


def test_empty_network_200_counts_as_a_zero_byte_body() -> None:
    """A real 200 with an empty body (a beacon) is known to be small; a cache hit with no
    size at all tells nothing."""
    beacon = xf.exchange(client="c", url=URL, etag=TAG, body=None)
    assert row_of([beacon])["body_size"] == 0
    unknown = xf.exchange(client="c", url=URL, etag=TAG, body=None, body_size=None,
                          from_cache=True, started=xf.T0)
    reval = xf.exchange(client="c", url=URL, status=304, etag=TAG, inm=TAG, started=xf.T0 + 1)
    assert pd.isna(row_of([unknown, reval])["body_size"])


def test_304_only_resource_has_no_size_and_no_small_body() -> None:
    records = [xf.exchange(client="c", url=URL, status=304, etag=TAG, inm=TAG, started=xf.T0 + i)
               for i in range(3)]
    row = row_of(records)
    assert pd.isna(row["body_size"]) and not row["small_body"]
    # the evidence says "unknown" in JSON, not a pandas NA that json.dumps rejects
    assert row["evidence"]["body_size"] is None
    json.dumps(row["evidence"], allow_nan=False)


def test_partial_head_and_no_content_responses_are_not_the_body() -> None:
    """206 ranges, HEAD and 204 carry no (whole) representation: only the 200 sets the size."""
    big = "b" * (SMALL_BODY * 10)
    records = [xf.exchange(client="c", url=URL, etag=TAG, body=big, started=xf.T0)]
    records += [xf.exchange(client="c", url=URL, status=206, etag=TAG, body="b" * 100,
                            started=xf.T0 + i) for i in range(1, 6)]
    records += [xf.exchange(client="c", url=URL, method="HEAD", etag=TAG, body_size=0,
                            started=xf.T0 + 10 + i) for i in range(5)]
    records += [xf.exchange(client="c", url=URL, status=204, etag=TAG, body=None,
                            started=xf.T0 + 20 + i) for i in range(5)]
    assert row_of(records)["body_size"] == len(big)
