"""A forged If-None-Match: the signature of an ETag tracker.

evercookie's ETag backend (and trackers like it) answers any If-None-Match with 304 and echoes
the value as the ETag, without checking that it ever issued it: that is how the browser cache
becomes an identifier store. A tag the server never issued must not match (expect 200); a 304
or the forged value echoed back means the server reflects whatever the client holds.
"""

from __future__ import annotations

import secrets

from analysis.probe.checks.base import CheckResult, answer, request_line, status_name
from analysis.probe.context import ProbeContext

CLIENT = "probe-forged"


def forged_tag() -> str:
    """An entity-tag no server can have issued (random, marked as ours)."""
    return f'"etagwatch-forged-{secrets.token_hex(8)}"'


def forged_etag(ctx: ProbeContext) -> list[CheckResult]:
    forged = forged_tag()
    headers = {"If-None-Match": forged}
    # A client of its own, which first gets the value the server issues and then claims to hold
    # another one: a browser only sends what it stored last, so a 304 to a value never issued
    # to anyone is decisive for the detectors too (reflection), not just for this check.
    held = ctx.send(CLIENT, "GET")
    sent = ctx.send(CLIENT, "GET", headers)
    decision = ctx.expect("GET", headers)
    echoed = forged.strip('"') in (sent.etag or "")
    result = CheckResult(
        "forged-etag",
        "If-None-Match with a tag the server never issued brings 200, not 304",
        sent="GET, then " + request_line("GET", headers),
        expected=f"{status_name(decision.status)} ({decision.reason})",
        got=answer(sent, "ETag"),
        outcome="pass",
        explanation="The server does not accept tags it never issued.",
        rfc=decision.rfc,
        exchanges=[held.entry_index, sent.entry_index],
    )
    if sent.status == 304 or echoed:
        result.outcome = "fail"
        result.tracking = True
        what = "answered 304" if sent.status == 304 else f"answered {sent.status}"
        if echoed:
            what += " and echoed the forged value as its ETag"
        result.explanation = (
            f"The server {what}: it reflects whatever tag the client holds, so a tag planted in "
            "the browser cache comes back on every visit. That is an ETag tracking mechanism."
        )
    elif sent.status != decision.status:
        result.outcome = "fail"
        result.explanation = (
            f"RFC 9110 expects {decision.status} here; the server answered {sent.status}."
        )
    return [result]
