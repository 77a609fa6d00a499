"""Checks one exchange can settle on its own, with the RFC core (no detector logic here).

Each check returns :class:`Verdict` sentences a person understands in a flow list. Precision
over recall: a check speaks only when the exchange itself (plus the validators this resource
carried earlier) proves the point. The checks read the exchange record and the request's raw
precondition lines, never a mitmproxy flow, so the store's writer process can run them too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from addons.live_state import ResourceState
from analysis.exchange import Exchange

if TYPE_CHECKING:
    from analysis.conditional import Decision

#: Severities, most serious first; the flow marker follows the most serious one.
ERROR = "error"  # an RFC 9110 conformance error
IDENTIFIER = "identifier"  # evidence that a validator identifies the client
WASTE = "waste"  # bytes resent or revalidations that cannot succeed
OPEN = "open"  # the traffic so far cannot decide; the sentence says what would
SEVERITIES = (ERROR, IDENTIFIER, WASTE, OPEN)

#: Flow markers by severity; an open question is a comment only (most flows of a one-profile
#: session would carry it, and a marker there would bury the ones that matter).
MARKERS = {ERROR: ":warning:", IDENTIFIER: ":eyes:", WASTE: ":recycle:"}


class Verdict(NamedTuple):
    severity: str
    sentence: str


class Update(NamedTuple):
    """What one flow's annotation becomes: ``own`` verdicts (its exchange settled them; added
    once, never withdrawn) and its resource's current detector verdicts (``None``: unchanged;
    they *replace* the previous ones, an empty tuple withdraws them)."""

    own: tuple[Verdict, ...] = ()
    resource: tuple[Verdict, ...] | None = None


def etag_syntax(ex: Exchange) -> list[Verdict]:
    if not ex.etag_violations:
        return []
    try:
        problems = ", ".join(json.loads(ex.etag_violations))
    except ValueError:
        problems = ex.etag_violations
    return [Verdict(ERROR, f"ETag {ex.etag} breaks RFC 9110 8.8.3 syntax ({problems}).")]


def unconditional_304(ex: Exchange) -> list[Verdict]:
    if ex.status == 304 and not (ex.req_if_none_match or ex.req_if_modified_since):
        return [Verdict(ERROR, "304 Not Modified to a request without If-None-Match or If-Modified-Since (RFC 9110 15.4.5).")]
    return []


#: A request's precondition header lines, raw: ``(name, value)`` bytes, in order.
Lines = tuple[tuple[bytes, bytes], ...]


def precondition_outcome(ex: Exchange, resource: ResourceState, lines: Lines) -> list[Verdict]:
    """Compare the status with what RFC 9110 13.2.2 demands for a conditional GET/HEAD, given
    the validators of the response itself (or, for a bare 304, those the resource last had)."""
    if ex.method not in ("GET", "HEAD") or ex.status not in (200, 304):
        return []
    if not (ex.req_if_none_match or ex.req_if_modified_since):
        return []
    if ex.req_range or ex.req_if_range:
        return []
    etag = ex.etag or resource.last_etag
    last_modified = ex.last_modified or resource.last_modified
    if etag is None and last_modified is None:
        return []
    decision = _decide(ex.method, lines, etag, last_modified)
    if ex.status == 304 and decision.status == 200:
        sent = f"If-None-Match {ex.req_if_none_match}" if ex.req_if_none_match else f"If-Modified-Since {ex.req_if_modified_since}"
        return [Verdict(ERROR, f"304 although {sent} does not match the current validator ({etag or last_modified}): {decision.reason} ({decision.rfc}).")]
    if ex.status == 200 and decision.status == 304:
        return [Verdict(WASTE, f"Full 200 resent although the client's copy was current ({decision.reason}): a missed 304.")]
    return []


#: Request fields ``analysis.conditional.evaluate`` reads (its CONDITIONAL_FIELDS plus Range).
_PRECONDITION_NAMES = frozenset(
    {b"if-match", b"if-none-match", b"if-modified-since", b"if-unmodified-since", b"if-range", b"range"}
)


def precondition_lines(fields: Iterable[Sequence[bytes]]) -> Lines:
    """The request's precondition lines (from mitmproxy's ``headers.fields`` or a snapshot's),
    raw and in order: all ``evaluate`` looks at."""
    names = _PRECONDITION_NAMES
    return tuple((n, v) for n, v in fields if n.strip().lower() in names)


@lru_cache(maxsize=4096)
def _decide(method: str, lines: Lines, etag: str | None, last_modified: str | None) -> Decision:
    """``evaluate`` memoised: a browser revalidates the same resource with the same
    validators over and over, and the decision depends on nothing else."""
    from analysis.conditional import evaluate  # engineer A's RFC core

    return evaluate(method, list(lines), etag=etag, last_modified=last_modified)


def ignored_if_match(ex: Exchange, resource: ResourceState) -> list[Verdict]:
    """A write accepted with an If-Match tag this resource never carried: the server does not
    evaluate If-Match, so lost updates go unnoticed (RFC 9110 13.1.1)."""
    if ex.method not in ("PUT", "PATCH", "DELETE", "POST") or not ex.req_if_match:
        return []
    if ex.status is None or not 200 <= ex.status < 300 or not resource.etags:
        return []
    from analysis.etag import parse_etag, parse_etag_list, strong_match

    wanted = parse_etag_list(ex.req_if_match)
    if wanted.star or not wanted.tags:
        return []
    seen = [t for t in (parse_etag(v).tag for v in resource.etags) if t is not None]
    if any(strong_match(w, s) for w in wanted.tags for s in seen):
        return []
    return [Verdict(ERROR, f"{ex.method} accepted with If-Match {ex.req_if_match}, an ETag this resource never carried: If-Match is ignored, lost updates go unnoticed.")]


def check_exchange(ex: Exchange, resource: ResourceState, lines: Lines) -> list[Verdict]:
    """All single-exchange verdicts (call before adding ``ex`` to ``resource``); ``lines``:
    the request's :func:`precondition_lines`."""
    return [
        *etag_syntax(ex),
        *unconditional_304(ex),
        *precondition_outcome(ex, resource, lines),
        *ignored_if_match(ex, resource),
    ]
