"""Conformance rules: id, severity, RFC section and a one-line summary, in httplint's style.

Rule ids are stable strings (reports, --fail-on and notebooks key on them). Severities:
``error`` (breaks a MUST or loses data), ``warning`` (wastes bytes or confuses caches),
``info`` (worth knowing).
"""

from __future__ import annotations

from typing import NamedTuple

SEVERITIES = ("error", "warning", "info")
#: Worst first: the position of each severity, for sorting findings.
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


class Rule(NamedTuple):
    id: str
    severity: str
    rfc: str
    summary: str


RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("missed-304", "warning", "RFC 9110 13.1.2, 13.2.2 step 3",
             "200 to an If-None-Match that matches the current ETag (should be 304)"),
        Rule("missed-304-date", "warning", "RFC 9110 13.1.3, 13.2.2 step 4",
             "200 to a satisfied If-Modified-Since (should be 304)"),
        Rule("false-304", "error", "RFC 9110 13.2.2, 15.4.5",
             "304 although the precondition did not hold (the client keeps stale content)"),
        Rule("304-missing-headers", "warning", "RFC 9110 15.4.5",
             "304 without ETag, Cache-Control, Content-Location, Date, Expires or Vary "
             "that the 200 carried"),
        Rule("unconditional-304", "error", "RFC 9110 15.4.5",
             "304 to a request without preconditions"),
        Rule("unconditional-412", "error", "RFC 9110 15.5.13",
             "412 to a request without preconditions"),
        Rule("lost-update", "error", "RFC 9110 13.1.1, 13.1.4, 13.2.2 steps 1-2",
             "write succeeded although If-Match / If-Unmodified-Since failed"),
        Rule("weak-if-match", "error", "RFC 9110 13.1.1, 8.8.3.2",
             "weak entity-tag accepted by If-Match (strong comparison required)"),
        Rule("needless-412", "warning", "RFC 9110 13.2.2",
             "412 although the precondition held"),
        Rule("conflict-not-412", "warning", "RFC 9110 13.2.2 step 1, 15.5.13",
             "conditional write refused with 409 Conflict where 412 is due"),
        Rule("strong-etag-reused", "error", "RFC 9110 8.8.3",
             "one strong ETag for different content (or different content codings)"),
        Rule("etag-syntax", "warning", "RFC 9110 8.8.3", "ETag is not a valid entity-tag"),
        Rule("etag-repeated", "error", "RFC 9110 8.8.3, 5.5",
             "more than one ETag field in a response"),
        Rule("last-modified-syntax", "warning", "RFC 9110 8.8.2, 5.6.7",
             "Last-Modified is not a valid HTTP-date"),
        Rule("last-modified-future", "warning", "RFC 9110 8.8.2.1",
             "Last-Modified later than the response's Date"),
        Rule("unprotected-write", "info", "RFC 9110 13.1.1; RFC 6585 3",
             "write without If-Match / If-Unmodified-Since to a resource that has validators"),
    )
}

FINDING_COLUMNS = [
    "rule", "severity", "rfc", "host", "url", "source", "client", "exchange_id", "status",
    "method", "explanation", "evidence",
]
