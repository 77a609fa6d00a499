"""If-Match on GET: a precondition that fails must bring 412, and only a strong match counts.

Servers that ignore If-Match (or compare it weakly) let conditional writes overwrite each
other's changes: the lost-update problem If-Match exists to prevent. GET shows the server's
evaluation without changing anything.
"""

from __future__ import annotations

import secrets

from analysis.etag import EntityTag
from analysis.probe.checks.base import CheckResult, answer, request_line, skipped, status_name
from analysis.probe.context import ProbeContext


def _judge(
    ctx: ProbeContext, name: str, title: str, headers: dict[str, str], why: str
) -> CheckResult:
    sent = ctx.send("probe-1", "GET", headers)
    decision = ctx.expect("GET", headers)
    ok = sent.status == decision.status
    return CheckResult(
        name,
        title,
        sent=request_line("GET", headers),
        expected=f"{status_name(decision.status)} ({decision.reason})",
        got=answer(sent),
        outcome="pass" if ok else "fail",
        explanation=(
            "The server evaluates If-Match as RFC 9110 requires."
            if ok
            else f"RFC 9110 expects {decision.status}; the server answered {sent.status}: {why}"
        ),
        rfc=decision.rfc,
        exchanges=[sent.entry_index],
    )


def wrong_if_match(ctx: ProbeContext) -> list[CheckResult]:
    headers = {"If-Match": f'"etagwatch-wrong-{secrets.token_hex(8)}"'}
    return [
        _judge(
            ctx,
            "if-match-wrong",
            "If-Match with a tag that is not current brings 412",
            headers,
            "it ignores If-Match, so conditional updates cannot prevent lost updates.",
        )
    ]


def weak_if_match(ctx: ProbeContext) -> list[CheckResult]:
    name, title = "if-match-weak", "If-Match with a weak tag brings 412 (strong comparison)"
    tag = ctx.etag
    if tag is None:
        return [skipped(name, title, "The response carries no ETag.")]
    headers = {"If-Match": str(EntityTag(tag.opaque, weak=True))}
    return [
        _judge(
            ctx,
            name,
            title,
            headers,
            "it compares If-Match weakly, but a weak tag never matches there; two "
            "representations with different bytes would pass the same precondition.",
        )
    ]
