"""If-Match on GET: a precondition that fails must bring 412, and only a strong match counts.

Servers that ignore If-Match (or compare it weakly) let conditional writes overwrite each
other's changes: the lost-update problem If-Match exists to prevent. GET shows the server's
evaluation without changing anything.
"""

from __future__ import annotations

import secrets

from analysis.etag import EntityTag
from analysis.probe.checks.base import CheckResult, judged_get, skipped
from analysis.probe.context import ProbeContext


def _judge(
    ctx: ProbeContext, name: str, title: str, headers: dict[str, str], why: str
) -> CheckResult:
    result, decision, sent = judged_get(ctx, name, title, headers)
    result.explanation = (
        "The server evaluates If-Match as RFC 9110 requires."
        if result.outcome == "pass"
        else f"RFC 9110 expects {decision.status}; the server answered {sent.status}: {why}"
    )
    return result


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
