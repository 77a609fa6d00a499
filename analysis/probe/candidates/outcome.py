"""The settling rule: what one probe trial says about a resource's ETag (docs/verdicts.md,
"Settled by probe").

First match wins; precision over recall, so anything short of a clear pattern stays open:

1. ``probe-echo`` (confirms identifier): the never-issued tag came back as the ETag. Only a
   server that reflects whatever the client holds does that (evercookie's ETag backend).
2. ``probe-reflection`` (confirms identifier): the never-issued tag was answered 304, and the
   fresh clients each got their own value.
3. ``probe-per-client`` / ``probe-per-client-content`` (confirms identifier): two or more
   fresh clients, each its own value (none shared, not content-coding variants of one value,
   not a known server format), every revalidation answered 304 keeping the client's own value,
   and identical bodies (or every client its own body: no cookie or credential was sent, so
   the value is all that could have told them apart).
4. ``probe-shared`` (clears: stable): every fresh client got the same value and the forged
   tag was not accepted: a value the server gives everyone cannot tell clients apart.
5. ``probe-unstable`` (clears: unstable): a new value on every 2xx response, never a 304.
6. Anything else is ``inconclusive``, with what was seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analysis.detectors.shapes import KNOWN_SERVER_FORMATS, format_candidates
from analysis.digests import CODING_SUFFIX
from analysis.probe.candidates.experiment import FORGED_CLIENT, Request, Trial

CONFIRMS, CLEARS, INCONCLUSIVE = "confirms", "clears", "inconclusive"
#: Confidence of the verdict each rule settles to.
CONFIDENCE = {
    "probe-echo": 0.97, "probe-reflection": 0.95, "probe-per-client": 0.85,
    "probe-per-client-content": 0.8, "probe-shared": 0.85, "probe-unstable": 0.75,
}


@dataclass(frozen=True)
class Outcome:
    outcome: str  # confirms | clears | inconclusive
    settles: str | None  # the verdict it settles to (identifier, stable, unstable)
    rule: str
    reason: str  # one sentence: what was seen and why that settles it (or not)

    @property
    def confidence(self) -> float | None:
        return CONFIDENCE.get(self.rule)


def opaque(tag: str | None) -> str | None:
    """The opaque-tag without W/ and quotes (weak comparison, RFC 9110 8.8.3.2)."""
    if tag is None:
        return None
    tag = tag.strip()
    return (tag[2:] if tag[:2] in ("W/", "w/") else tag).strip('"')


def _kept(held: str, later: list[Request]) -> bool:
    """Every revalidation answered 304, keeping ``held`` (a 304 without an ETag keeps it)."""
    return bool(later) and all(
        r.status == 304 and (r.etag is None or opaque(r.etag) == opaque(held)) for r in later)


def _known_format(values: list[str]) -> str | None:
    for value in values:
        found = format_candidates(value, first=True)
        if found and found[0][0] in KNOWN_SERVER_FORMATS:
            return found[0][0]
    return None


def decide(trial: Trial, show: Callable[[str], str] = str) -> Outcome:
    """The outcome of one trial (see the module docstring); ``show`` words a server's value in
    the reason (a keyed hash where the store keeps validators redacted)."""
    n = trial.clients
    if trial.stopped:
        return Outcome(INCONCLUSIVE, None, "probe-no-2xx",
                       f"the resource {trial.stopped}; only a 2xx can be probed")
    firsts = {c: next((r for r in trial.of(c) if r.round == 0), None) for c in trial.fresh}
    values = {c: r.etag for c, r in firsts.items() if r is not None and r.etag}
    forged = trial.forged_answer
    if not values:
        return Outcome(INCONCLUSIVE, None, "probe-no-etag",
                       f"none of {n} fresh clients got an ETag")
    if forged is not None and trial.forged and opaque(forged.etag) == opaque(trial.forged):
        return Outcome(CONFIRMS, "identifier", "probe-echo",
                       f"If-None-Match with a tag never issued ({trial.forged}) came back as the "
                       f"ETag (status {forged.status}): the server reflects whatever the client "
                       "holds, so a value planted in a cache is recognised on every visit")
    distinct = {opaque(v) for v in values.values()}
    own_values = len(values) >= 2 and len(distinct) == len(values)
    if forged is not None and forged.status == 304 and own_values:
        return Outcome(CONFIRMS, "identifier", "probe-reflection",
                       f"{len(values)} fresh clients each got their own ETag, and a tag never "
                       "issued was answered 304: the server accepts any value a client holds")
    stems = {CODING_SUFFIX.sub("", v or "") for v in distinct}
    fmt = _known_format([v for v in distinct if v])
    kept = all(_kept(values[c], [r for r in trial.of(c) if r.round > 0]) for c in values)
    bodies = {c: firsts[c].body_sha256 for c in values if firsts[c] is not None}
    if own_values and len(values) == n and kept and len(stems) == len(distinct) and not fmt:
        revals = sum(r.round > 0 for r in trial.requests if r.client in values)
        if len(set(bodies.values())) == 1:
            return Outcome(CONFIRMS, "identifier", "probe-per-client",
                           f"{n} fresh clients (no cookies, a new connection per request) each "
                           f"got their own ETag for identical bytes and kept it: all {revals} "
                           "revalidations answered 304 after every client had its value")
        if len(set(bodies.values())) == n:
            return Outcome(CONFIRMS, "identifier", "probe-per-client-content",
                           f"{n} fresh clients each got their own ETag and their own body and "
                           f"kept them (all {revals} revalidations 304); no cookie or "
                           "credential was sent, so the value alone told them apart")
    forged_304 = forged is not None and forged.status == 304
    if len(values) == n >= 2 and len(distinct) == 1 and not forged_304:
        value = next(iter(values.values()))
        return Outcome(CLEARS, "stable", "probe-shared",
                       f"{n} fresh clients (no cookies, a new connection per request) all got "
                       f"the same ETag {show(value)} and a tag never issued was refused: a value the "
                       "server gives everyone cannot tell clients apart")
    answers = [r for r in trial.requests if r.client != FORGED_CLIENT]
    ok = [r for r in answers if 200 <= r.status < 300]
    issued = [opaque(r.etag) for r in ok if r.etag]
    if (len(ok) >= 3 and len(issued) == len(ok) and len(set(issued)) == len(issued)
            and not any(r.status == 304 for r in answers)):
        return Outcome(CLEARS, "unstable", "probe-unstable",
                       f"a new ETag on every one of {len(ok)} responses and never a 304: a "
                       "value that never validates cannot be kept, so it identifies nobody")
    seen = (f"{n} fresh clients got {len(distinct)} distinct ETag"
            f"{'s' * (len(distinct) != 1)}; "
            f"{sum(r.status == 304 for r in answers)} of "
            f"{sum(r.round > 0 for r in answers)} revalidations answered 304")
    if fmt:
        seen += f"; values in the {fmt} server format (load-balanced backends look like this)"
    if forged_304:
        seen += "; a tag never issued was answered 304"
    return Outcome(INCONCLUSIVE, None, "probe-open", seen + ": no settling pattern")
