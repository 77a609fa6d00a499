"""Passive RFC 9110 conformance findings, one module per rule family (rules in analysis.findings).

Each family takes the prepared exchanges frame and returns finding rows: rule, severity, rfc,
host, url, source (file#entry or file@flow-id), client, exchange_id, status, method, explanation,
evidence (a JSON-serialisable dict).
"""

from __future__ import annotations

import pandas as pd

from analysis.detectors.conformance.base import empty
from analysis.detectors.conformance.content import strong_etag_reuse_findings
from analysis.detectors.conformance.not_modified import (
    missing_header_findings,
    unconditional_findings,
)
from analysis.detectors.conformance.preconditions import precondition_findings
from analysis.detectors.conformance.syntax import syntax_findings
from analysis.detectors.conformance.writes import unprotected_write_findings
from analysis.findings import RULES, SEVERITY_RANK

FAMILIES = (
    precondition_findings,
    unconditional_findings,
    missing_header_findings,
    strong_etag_reuse_findings,
    syntax_findings,
    unprotected_write_findings,
)


def conformance_findings(prepared: pd.DataFrame) -> pd.DataFrame:
    """Every rule family over prepared exchanges, worst severity first."""
    parts = [f(prepared) for f in FAMILIES]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return empty()
    return worst_first(pd.concat(parts, ignore_index=True))


def worst_first(findings: pd.DataFrame) -> pd.DataFrame:
    """Findings by severity, rule, host and URL; ties keep their order (rule family, then
    exchange), so parts of whole hosts concatenated sort as the whole would."""
    out = findings.assign(_s=findings["severity"].map(SEVERITY_RANK))
    out = out.sort_values(["_s", "rule", "host", "url"], kind="stable").drop(columns="_s")
    return out.reset_index(drop=True)


__all__ = ["RULES", "conformance_findings", "worst_first"]
