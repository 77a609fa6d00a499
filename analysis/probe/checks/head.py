"""HEAD must describe the same representation as GET: same ETag and Last-Modified.

Caches and link checkers validate with HEAD; a HEAD that carries other validators than GET
(or none) sends them on a wrong decision (RFC 9110 9.3.2: the same header fields as GET).
"""

from __future__ import annotations

from analysis.probe.checks.base import CheckResult, answer, skipped
from analysis.probe.context import ProbeContext, Sent

FIELDS = ("ETag", "Last-Modified")


def _validators(sent: Sent) -> tuple[str | None, ...]:
    return tuple(sent.response.header(f) for f in FIELDS)


def head_vs_get(ctx: ProbeContext) -> list[CheckResult]:
    name, title = "head-vs-get", "HEAD carries the same ETag and Last-Modified as GET"
    base = ctx.baseline
    if base is None or _validators(base) == (None, None):
        return [skipped(name, title, "The GET response carries no validators to compare.")]
    head = ctx.send("probe-1", "HEAD")
    result = CheckResult(
        name,
        title,
        sent="HEAD (then compared with the first GET)",
        expected=f"2xx, {', '.join(f'{f}: {v}' for f, v in zip(FIELDS, _validators(base), strict=True) if v)}",
        got=answer(head, *FIELDS),
        outcome="pass",
        explanation="HEAD and GET describe the same representation.",
        rfc="RFC 9110 9.3.2",
        exchanges=[head.entry_index],
    )
    gets = [
        s for s in ctx.sent if s.response.request.method == "GET" and s.status in (200, 206, 304)
    ]
    for position, field in enumerate(FIELDS):
        seen = {_validators(s)[position] for s in gets if _validators(s)[position] is not None}
        value = _validators(head)[position]
        if not 200 <= head.status < 300:
            result.outcome = "fail"
            result.explanation = f"GET answers {base.status} but HEAD answers {head.status}."
        elif value in seen:
            continue
        elif len(seen) > 1:
            result.outcome = "skip"
            result.explanation = (
                f"GETs already got {len(seen)} different {field} values, so HEAD's cannot be "
                "compared (see fresh-clients)."
            )
        else:
            result.outcome = "fail"
            result.explanation = (
                f"HEAD reports {field}: {value} where GET reports {next(iter(seen), None)}: a "
                "cache validating with HEAD decides on the wrong representation."
            )
        break
    return [result]
