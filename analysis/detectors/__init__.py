"""Detectors: from exchanges (a DataFrame with analysis.exchange.COLUMNS) to verdicts and findings.

Plain functions over DataFrames, for the CLI, the notebook report, the live addon and probe:

- ``run_all(df, ignore_params=())`` -> :class:`Analysis` (resources, findings, hosts, summary)
- ``prepare(df, ignore_params=())`` -> normalised exchanges (every other function accepts raw
  or prepared frames)
- ``resource_features(df)`` -> one row per (resource, validator) with the counts verdicts use
- ``resource_verdicts(df)`` -> one row per resource: url, host, verdict, confidence, validator,
  explanation, evidence, ...
- ``conformance_findings(df)`` -> one row per finding: rule, severity, rfc, host, url, source,
  evidence, explanation, ...
- ``host_summary(df, resources, findings)`` -> one row per host

Verdicts (analysis.detectors.verdicts.VERDICTS): identifier, likely-identifier, churn, changed,
unstable, undetermined, stable, none (docs/verdicts.md). Resources without any validator are
kept with verdict ``none``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from analysis.detectors import conformance as _conformance
from analysis.detectors import hosts as _hosts
from analysis.detectors.prepare import is_prepared, prepare
from analysis.detectors.verdict_table import features_with_costs, verdict_table
from analysis.detectors.verdicts import RANK, VERDICTS
from analysis.exchange import COLUMNS
from analysis.findings import RULES, SEVERITIES

#: Exchange columns no detector reads (a loader for ``run_all`` may leave them out: ``prepare``
#: adds missing columns as empty).
UNREAD_COLUMNS = frozenset({
    "source_kind", "page_url", "scheme", "port", "path", "query", "http_version",
    "req_cache_control", "req_pragma", "age", "cookies_set", "cache_kind",
})
#: The exchange columns the detectors read, in COLUMNS order.
INPUT_COLUMNS = tuple(c for c in COLUMNS if c not in UNREAD_COLUMNS)


@dataclass
class Analysis:
    """Everything the detectors found in one set of exchanges."""

    resources: pd.DataFrame
    findings: pd.DataFrame
    hosts: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def _prepared(df: pd.DataFrame, ignore_params: Iterable[str] = ()) -> pd.DataFrame:
    return df if is_prepared(df) else prepare(df, ignore_params=ignore_params)


def resource_features(df: pd.DataFrame, *, ignore_params: Iterable[str] = ()) -> pd.DataFrame:
    """Per (resource, validator) features, including churn costs."""
    return features_with_costs(_prepared(df, ignore_params))[0]


def resource_verdicts(df: pd.DataFrame, *, ignore_params: Iterable[str] = ()) -> pd.DataFrame:
    """One verdict per resource, worst first."""
    ex = _prepared(df, ignore_params)
    f, obs = features_with_costs(ex)
    return verdict_table(ex, f, obs)


def conformance_findings(df: pd.DataFrame, *, ignore_params: Iterable[str] = ()) -> pd.DataFrame:
    """Every conformance finding, errors first."""
    return _conformance.conformance_findings(_prepared(df, ignore_params))


def host_summary(
    df: pd.DataFrame, resources: pd.DataFrame, findings: pd.DataFrame
) -> pd.DataFrame:
    return _hosts.host_summary(_prepared(df), resources, findings)


def summarise(ex: pd.DataFrame, resources: pd.DataFrame, findings: pd.DataFrame,
              ignore_params: Iterable[str] = ()) -> dict[str, Any]:
    return summary_of({
        "exchanges": len(ex),
        "responses": int(ex["ok"].sum()) if len(ex) else 0,
        "clients": int(ex["cid"].max() + 1) if len(ex) else 0,
        "hosts": int(ex["hid"].max() + 1) if len(ex) else 0,
    }, resources, findings, ignore_params)


def summary_of(counts: dict[str, int], resources: pd.DataFrame, findings: pd.DataFrame,
               ignore_params: Iterable[str] = ()) -> dict[str, Any]:
    """The summary from the input's counts (exchanges, responses, clients, hosts) and the
    results (an engine that counts the input itself calls this directly)."""
    verdicts = resources["verdict"].value_counts() if not resources.empty else pd.Series()
    return {
        **counts,
        "resources": len(resources),
        "verdicts": {v: int(verdicts.get(v, 0)) for v in VERDICTS},
        "findings": {s: int((findings["severity"] == s).sum()) for s in SEVERITIES},
        "rules": {str(k): int(v) for k, v in findings["rule"].value_counts().items()},
        "wasted_revalidations": int(resources["wasted_revalidations"].sum()) if len(resources) else 0,
        "wasted_bytes": int(resources["wasted_bytes"].sum()) if len(resources) else 0,
        "ignore_params": list(ignore_params),
    }


def run_all(exchanges: pd.DataFrame, *, ignore_params: Iterable[str] = ()) -> Analysis:
    """Run every detector over ``exchanges`` (columns of analysis.exchange.COLUMNS)."""
    ignore_params = tuple(ignore_params)
    ex = prepare(exchanges, ignore_params=ignore_params)
    del exchanges  # the input's memory goes once prepare's copy exists, if the caller let it go
    f, obs = features_with_costs(ex)
    resources = verdict_table(ex, f, obs)
    findings = _conformance.conformance_findings(ex)
    hosts = _hosts.host_summary(ex, resources, findings)
    return Analysis(resources, findings, hosts, summarise(ex, resources, findings, ignore_params))


__all__ = [
    "INPUT_COLUMNS", "RANK", "RULES", "SEVERITIES", "VERDICTS", "Analysis", "conformance_findings",
    "host_summary", "prepare", "resource_features", "resource_verdicts", "run_all", "summary_of",
]
