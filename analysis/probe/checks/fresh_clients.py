"""Several fresh clients fetch the URL: do they get one ETag, a few, or one each?

Each client (own connections, no cookies, no cache) fetches, then revalidates twice with the
latest ETag it holds, the way a browser profile keeps its cache. The verdict (stable, churn, identifier,
unstable) is the detectors' own, the same ``analyze`` gives; this module sends the requests and
says in plain words what each client saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analysis.probe.checks.base import CheckResult
from analysis.probe.context import ProbeContext, Sent
from analysis.probe.errors import ProbeError

NAME = "fresh-clients"
#: Verdicts that make the check fail; the first two are tracking evidence.
TRACKING = frozenset({"identifier", "likely-identifier"})
FAILING = TRACKING | {"churn", "unstable"}
REVALIDATIONS = 2


@dataclass
class ClientHistory:
    name: str
    first: Sent
    revalidations: list[Sent]

    @property
    def kept_etag(self) -> bool:
        """Every ETag this client was sent after the first one was that first one (a 304 without
        an ETag leaves the held one in place, so it does not count as a change)."""
        return all(s.etag == self.first.etag for s in self.revalidations if s.etag)


@dataclass
class FreshClients:
    histories: list[ClientHistory] = field(default_factory=list)

    @property
    def exchanges(self) -> list[int]:
        out = []
        for h in self.histories:
            out += [s.entry_index for s in (h.first, *h.revalidations)]
        return out

    def describe(self) -> str:
        """What the clients saw, in one sentence."""
        firsts = [h.first.etag for h in self.histories]
        if not any(firsts):
            return f"{len(firsts)} clients got no ETag."
        distinct = len({t for t in firsts if t})
        kept = sum(h.kept_etag for h in self.histories)
        revals = [r for h in self.histories for r in h.revalidations]
        not_modified = sum(r.status == 304 for r in revals)
        return (
            f"{len(firsts)} clients got {distinct} distinct ETag{'s' * (distinct != 1)}; "
            f"{kept} of {len(firsts)} kept their ETag while revalidating; "
            f"{not_modified} of {len(revals)} revalidations answered 304."
        )


def first_response(sent: Sent, url: str) -> None:
    """The probe needs a resource that answers 2xx; say clearly what it got instead."""
    status = sent.status
    if 300 <= status < 400:
        location = sent.response.header("location") or "nowhere (no Location)"
        raise ProbeError(
            f"{url}: redirects ({status}) to {location}; the probe does not follow redirects, "
            "probe the target URL itself"
        )
    if not 200 <= status < 300:
        raise ProbeError(
            f"{url}: answered {status} {sent.response.reason}; the probe needs a URL that answers 2xx"
        )


def collect(ctx: ProbeContext) -> FreshClients:
    """Fetch, then revalidate with the latest ETag held, as each of ``ctx.options.clients``
    fresh clients (a client that never got an ETag fetches again unconditionally)."""
    out = FreshClients()
    for i in range(1, ctx.options.clients + 1):
        name = f"probe-{i}"
        first = ctx.send(name)
        if ctx.baseline is None:
            first_response(first, ctx.url)
            ctx.baseline = first
        held = first.etag
        revals = []
        for _ in range(REVALIDATIONS):
            sent = ctx.send(name, "GET", {"If-None-Match": held} if held else None)
            revals.append(sent)
            if sent.status == 200 and sent.etag:
                held = sent.etag  # a browser replaces its cached copy and validator
        out.histories.append(ClientHistory(name, first, revals))
    return out


def judge(seen: FreshClients, verdict: str | None, evidence: str | None) -> CheckResult:
    """The check's result from the detectors' verdict on the probed resource."""
    result = CheckResult(
        NAME,
        "Fresh clients get one stable ETag, not one each",
        sent=(
            f"GET, then {REVALIDATIONS} GETs with If-None-Match: <latest ETag held>, as each of "
            f"{len(seen.histories)} fresh clients"
        ),
        expected="stable (or no ETag)",
        got=verdict or "no verdict",
        outcome="pass",
        explanation=seen.describe(),
        exchanges=seen.exchanges,
    )
    if verdict in FAILING:
        result.outcome = "fail"
        result.tracking = verdict in TRACKING
    if evidence:
        result.explanation += f" Detectors: {evidence}"
    return result
