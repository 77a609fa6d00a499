"""Range with If-Range: a partial response only while the client's copy is current.

If-Range lets a client resume a download only when its validator is still current (strong
comparison); otherwise the server must send the whole new representation, or the client glues
pieces of two versions together (RFC 9110 13.1.5, 13.2.2 step 5). A server may ignore Range
altogether (14.2); then there is nothing to test.
"""

from __future__ import annotations

import secrets
from email.utils import formatdate

from analysis.probe.checks.base import CheckResult, answer, judged_get, request_line, skipped
from analysis.probe.context import ProbeContext

RANGE = "bytes=0-9"


def _stale_validator(ctx: ProbeContext) -> str:
    if ctx.etag is not None:
        return f'"etagwatch-stale-{secrets.token_hex(8)}"'
    ts = ctx.last_modified_ts or 0.0
    return formatdate(ts - 86400, usegmt=True)


def _why(got_etag: str | None, validator: str, why: str) -> str:
    if got_etag and validator.startswith(('"', "W/")) and got_etag != validator:
        return (
            f"The server's ETag changed from {validator} to {got_etag} between requests (see "
            "fresh-clients), so a resumed download restarts from zero."
        )
    return why


def _check(
    ctx: ProbeContext, name: str, title: str, validator: str, why: str, *, current: bool
) -> CheckResult:
    headers = {"Range": RANGE, "If-Range": validator}
    result, _, sent = judged_get(ctx, name, title, headers, fields=("Content-Range",))
    result.explanation = (
        "The server handles If-Range correctly."
        if result.outcome == "pass"
        else _why(sent.etag, validator, why)
    )
    return result


def if_range(ctx: ProbeContext) -> list[CheckResult]:
    current_name, current_title = (
        "if-range-current",
        "Range with a current If-Range brings the part",
    )
    stale_name, stale_title = "if-range-stale", "Range with a stale If-Range brings the whole body"
    current = str(ctx.etag) if ctx.etag is not None else ctx.last_modified
    if current is None:
        why = "The response carries no validator for If-Range."
        return [skipped(current_name, current_title, why), skipped(stale_name, stale_title, why)]
    probe = ctx.send("probe-1", "GET", {"Range": RANGE})
    if probe.status != 206:
        why = f"The server ignores Range ({probe.status} to {RANGE}), which RFC 9110 14.2 allows."
        results = [skipped(current_name, current_title, why), skipped(stale_name, stale_title, why)]
        for r in results:
            r.sent, r.got, r.exchanges = (
                request_line("GET", {"Range": RANGE}),
                answer(probe),
                [probe.entry_index],
            )
        return results
    return [
        _check(
            ctx,
            current_name,
            current_title,
            current,
            "The client's copy is current, yet the server did not send the part it asked for.",
            current=True,
        ),
        _check(
            ctx,
            stale_name,
            stale_title,
            _stale_validator(ctx),
            "The server sent a part although the client's copy is stale: the client would splice "
            "bytes of two versions together.",
            current=False,
        ),
    ]
