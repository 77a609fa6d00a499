"""Each probe check against the deliberately buggy origin: a correct origin passes every check,
and each bug makes exactly the checks that test for it fail."""

from __future__ import annotations

import json

import pytest
from origins.buggy_origin import serve

from analysis.privacy import new_key
from analysis.probe.checks import CHECKS, CheckResult, fresh_clients
from analysis.probe.context import ProbeContext, ProbeOptions


def run_checks(url: str, **options: object) -> tuple[ProbeContext, list[CheckResult]]:
    ctx = ProbeContext(url, ProbeOptions(**options), new_key())  # type: ignore[arg-type]
    try:
        fresh_clients.collect(ctx)
        results = [r for check in CHECKS for r in check(ctx)]
    finally:
        ctx.close()
    return ctx, results


def failing(results: list[CheckResult]) -> set[str]:
    return {r.name for r in results if r.outcome == "fail"}


def test_correct_origin_passes_every_check() -> None:
    with serve() as url:
        _, results = run_checks(url)
    assert [r.outcome for r in results] == ["pass"] * len(results)
    assert {r.name for r in results} == {
        "revalidate-etag", "revalidate-weak-etag", "forged-etag", "if-modified-since",
        "if-match-wrong", "if-match-weak", "head-vs-get", "gzip-vs-identity",
        "if-range-current", "if-range-stale",
    }
    assert not any(r.tracking for r in results)


@pytest.mark.parametrize(
    ("bug", "fails"),
    [
        ("ignore-inm", {"revalidate-etag", "revalidate-weak-etag"}),
        ("no-etag-304", {"revalidate-etag", "revalidate-weak-etag", "if-modified-since"}),
        ("weak-if-match", {"if-match-weak"}),
        ("same-etag-gzip", {"gzip-vs-identity"}),
    ],
)
def test_each_conformance_bug_fails_its_checks(bug: str, fails: set[str]) -> None:
    with serve(bug) as url:
        _, results = run_checks(url)
    assert failing(results) == fails
    assert not any(r.tracking for r in results)
    for r in results:
        if r.name in fails:  # expectations come from the RFC 9110 evaluator, with its section
            assert r.rfc and r.rfc.startswith("RFC 9110"), r
            assert r.explanation and r.got != r.expected


def test_ignored_if_none_match_is_explained_as_a_wasted_transfer() -> None:
    with serve("ignore-inm") as url:
        _, results = run_checks(url)
    r = next(r for r in results if r.name == "revalidate-etag")
    assert r.expected.startswith("304") and r.got.startswith("200")
    assert "ignored If-None-Match" in r.explanation


def test_304_without_etag_cites_the_304_rule() -> None:
    with serve("no-etag-304") as url:
        _, results = run_checks(url)
    r = next(r for r in results if r.name == "revalidate-etag")
    assert r.got.startswith("304") and "no ETag" in r.got
    assert r.rfc == "RFC 9110 15.4.5"


@pytest.mark.parametrize("bugs", [("reflect-inm",), ("reflect-inm", "random-etag")])
def test_reflecting_origin_is_a_tracking_mechanism(bugs: tuple[str, ...]) -> None:
    with serve(*bugs) as url:
        ctx, results = run_checks(url)
    forged = next(r for r in results if r.name == "forged-etag")
    assert forged.outcome == "fail" and forged.tracking
    assert "echoed the forged value" in forged.explanation
    # the forged request came from a client of its own
    (row,) = [e for e in ctx.exchanges if e.entry_index == forged.exchanges[-1]]
    assert row.client == "probe-forged" and row.status == 304
    assert row.req_if_none_match and row.req_if_none_match.strip('"') in (row.etag or "")


def test_churning_origin_is_not_called_a_tracker() -> None:
    with serve("churn") as url:
        _, results = run_checks(url)
    assert not any(r.tracking for r in results)
    r = next(r for r in results if r.name == "revalidate-etag")
    assert r.outcome == "fail" and "another ETag" in r.explanation


def test_every_request_is_an_exchange_with_secrets_hashed() -> None:
    secret = "Bearer very-secret-token"
    with serve() as url:
        ctx, results = run_checks(url, clients=2, headers=(("Authorization", secret),))
        served = len(url.server.requests)
    assert len(ctx.exchanges) == len(ctx.sent) == served
    assert [e.entry_index for e in ctx.exchanges] == list(range(len(ctx.exchanges)))
    assert {e.client for e in ctx.exchanges} == {"probe-1", "probe-2", "probe-forged"}
    assert {(e.source, e.source_kind) for e in ctx.exchanges} == {(f"probe:{url}", "probe")}
    for e in ctx.exchanges:
        text = json.dumps([e.req_headers, e.resp_headers])
        assert "very-secret-token" not in text and "hmac:" in text
        if e.status == 200:  # the origin sets a cookie on every 200
            assert e.cookies_set == '["session"]' and e.cookie_hashes
    mentioned = {i for r in results for i in r.exchanges}
    assert mentioned <= {e.entry_index for e in ctx.exchanges}
    heads = [e for e in ctx.exchanges if e.method == "HEAD"]
    assert len(heads) == 1 and heads[0].content_hash is None
    gets = [e for e in ctx.exchanges if e.method == "GET" and e.status == 200]
    assert len({e.content_hash for e in gets}) == 1  # gzip and identity decode to one body


def test_fresh_clients_each_fetch_then_revalidate() -> None:
    with serve("random-etag", "reflect-inm") as url:
        ctx = ProbeContext(url, ProbeOptions(clients=3), new_key())
        seen = fresh_clients.collect(ctx)
        ctx.close()
    assert [h.name for h in seen.histories] == ["probe-1", "probe-2", "probe-3"]
    firsts = [h.first.etag for h in seen.histories]
    assert len(set(firsts)) == 3  # one value each
    for h in seen.histories:
        assert [s.status for s in h.revalidations] == [304, 304]
        assert h.kept_etag
    assert "3 distinct ETags" in seen.describe()
    assert ctx.baseline is seen.histories[0].first
