"""Revalidation: the validators a server issued must bring back 304 Not Modified.

A client that holds a fresh copy saves the transfer only if the origin honours If-None-Match
(compared weakly, so W/"x" matches "x") and If-Modified-Since; and a 304 must carry the ETag a
200 would have carried, or caches cannot keep validating (RFC 9110 15.4.5).
"""

from __future__ import annotations

from analysis.etag import EntityTag
from analysis.probe.checks.base import CheckResult, judged_get, skipped
from analysis.probe.context import ProbeContext, Sent

RFC_304_FIELDS = "RFC 9110 15.4.5"


def _judge(
    ctx: ProbeContext, name: str, title: str, headers: dict[str, str], sent: Sent, why: str
) -> CheckResult:
    result, decision, _ = judged_get(ctx, name, title, headers, sent=sent, fields=("ETag",))
    issued = ctx.baseline.etag if ctx.baseline else None
    got_etag = sent.etag
    if result.outcome == "fail":
        if decision.status == 304 and sent.status == 200 and got_etag not in (None, issued):
            result.explanation = (
                f"The server answered 200 with another ETag ({got_etag}) than the one it issued "
                f"({issued}): its validator changes between requests (see fresh-clients), so "
                f"{why} fails and the body is sent again."
            )
        elif decision.status == 304 and sent.status == 200:
            result.explanation = (
                f"The server ignored {next(iter(headers))} and sent the whole body again: "
                f"{why} never saves a transfer."
            )
        else:
            result.explanation = (
                f"RFC 9110 expects {decision.status} here; the server answered {sent.status}."
            )
    elif sent.status == 304 and issued is not None and got_etag is None:
        result.outcome = "fail"
        result.rfc = RFC_304_FIELDS
        result.explanation = (
            "The 304 leaves out the ETag the 200 carried; a 304 must repeat it (and Date, Vary, "
            "Cache-Control, Expires, Content-Location), or caches lose the validator."
        )
    else:
        result.explanation = f"The server honours {why}."
    return result


def revalidate_etag(ctx: ProbeContext) -> list[CheckResult]:
    name, title = "revalidate-etag", "If-None-Match with the ETag just received brings 304"
    if ctx.etag is None:
        return [skipped(name, title, "The response carries no ETag to revalidate with.")]
    headers = {"If-None-Match": str(ctx.etag)}
    sent = ctx.send("probe-1", "GET", headers)
    return [_judge(ctx, name, title, headers, sent, "revalidation with its own ETag")]


def revalidate_weak_etag(ctx: ProbeContext) -> list[CheckResult]:
    name, title = "revalidate-weak-etag", "If-None-Match with W/ + the strong ETag brings 304"
    tag = ctx.etag
    if tag is None:
        return [skipped(name, title, "The response carries no ETag.")]
    if tag.weak:
        return [skipped(name, title, "The ETag is already weak; nothing to weaken.")]
    headers = {"If-None-Match": str(EntityTag(tag.opaque, weak=True))}
    sent = ctx.send("probe-1", "GET", headers)
    return [
        _judge(
            ctx,
            name,
            title,
            headers,
            sent,
            'the weak comparison If-None-Match requires (W/"x" matches "x"), used by caches '
            "and by servers that weaken tags when they compress",
        )
    ]


def if_modified_since(ctx: ProbeContext) -> list[CheckResult]:
    name, title = "if-modified-since", "If-Modified-Since equal to Last-Modified brings 304"
    if ctx.last_modified is None:
        return [skipped(name, title, "The response carries no Last-Modified.")]
    headers = {"If-Modified-Since": ctx.last_modified}
    sent = ctx.send("probe-1", "GET", headers)
    return [_judge(ctx, name, title, headers, sent, "date-based revalidation")]
