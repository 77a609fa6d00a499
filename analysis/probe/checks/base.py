"""A probe check's result and the phrasing shared by all checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from analysis.conditional import Decision
from analysis.probe.context import ProbeContext, Sent

Outcome = Literal["pass", "fail", "skip"]


@dataclass
class CheckResult:
    """One probe test: what was sent, what RFC 9110 expects, what came back, and why it matters.

    ``tracking`` marks evidence of an ETag tracking mechanism (exit status 1 whatever the rest).
    ``exchanges`` are the ``entry_index`` values of the stored exchanges this check sent.
    """

    name: str
    title: str
    sent: str
    expected: str
    got: str
    outcome: Outcome
    explanation: str
    rfc: str | None = None
    tracking: bool = False
    exchanges: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "title": self.title,
            "sent": self.sent,
            "expected": self.expected,
            "got": self.got,
            "outcome": self.outcome,
            "passed": self.outcome == "pass",
            "explanation": self.explanation,
            "rfc": self.rfc,
            "tracking": self.tracking,
            "exchanges": list(self.exchanges),
        }


def request_line(method: str, headers: Mapping[str, str] | None = None) -> str:
    """``GET with If-None-Match: "x"`` (the fields a check added to the request)."""
    if not headers:
        return method
    return f"{method} with " + ", ".join(f"{k}: {v}" for k, v in headers.items())


def answer(sent: Sent, *fields: str) -> str:
    """``304 Not Modified, ETag: "x"``: a status and the fields a check looked at."""
    text = f"{sent.status} {sent.response.reason}".strip()
    for name in fields:
        value = sent.response.header(name)
        text += f", {name}: {value}" if value is not None else f", no {name}"
    return text


def status_name(status: int) -> str:
    return {
        200: "200 OK",
        206: "206 Partial Content",
        304: "304 Not Modified",
        412: "412 Precondition Failed",
    }.get(status, str(status))


def skipped(name: str, title: str, why: str) -> CheckResult:
    """A check that does not apply to this resource (no ETag to revalidate, ...)."""
    return CheckResult(
        name, title, sent="nothing", expected="-", got="-", outcome="skip", explanation=why
    )


def judged_get(
    ctx: ProbeContext,
    name: str,
    title: str,
    headers: dict[str, str],
    *,
    sent: Sent | None = None,
    fields: tuple[str, ...] = (),
) -> tuple[CheckResult, Decision, Sent]:
    """A conditional GET judged by RFC 9110: sends it (unless ``sent`` is given), asks
    ``analysis.conditional.evaluate`` what it should bring, and fills in the result with
    ``outcome`` pass or fail on the status; the caller words the explanation."""
    if sent is None:
        sent = ctx.send("probe-1", "GET", headers)
    decision = ctx.expect("GET", headers)
    result = CheckResult(
        name,
        title,
        sent=request_line("GET", headers),
        expected=f"{status_name(decision.status)} ({decision.reason})",
        got=answer(sent, *fields),
        outcome="pass" if sent.status == decision.status else "fail",
        explanation="",
        rfc=decision.rfc,
        exchanges=[sent.entry_index],
    )
    return result, decision, sent
