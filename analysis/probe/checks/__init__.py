"""The probe's tests, one module per concern; CHECKS runs them in order after fresh-clients.

Each check takes the ProbeContext (whose baseline is the first client's first response) and
returns CheckResults; the expectations come from analysis.conditional.evaluate, not from here.
"""

from __future__ import annotations

from collections.abc import Callable

from analysis.probe.checks import encoding, forged, head, if_match, ranges, revalidation
from analysis.probe.checks.base import CheckResult
from analysis.probe.context import ProbeContext

Check = Callable[[ProbeContext], list[CheckResult]]

CHECKS: tuple[Check, ...] = (
    revalidation.revalidate_etag,
    revalidation.revalidate_weak_etag,
    forged.forged_etag,
    revalidation.if_modified_since,
    if_match.wrong_if_match,
    if_match.weak_if_match,
    head.head_vs_get,
    encoding.gzip_vs_identity,
    ranges.if_range,
)

__all__ = ["CHECKS", "Check", "CheckResult"]
