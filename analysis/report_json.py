"""The machine-readable report of `etagwatch analyze`: summary, hosts, resources, findings.

Keys are a contract (DEVELOPERS.md): extend, never rename. Each resource has at least url, host,
verdict, confidence, evidence; each finding at least rule, severity, host, url, evidence, rfc,
source. Values are JSON-native (NaN becomes null).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-native dicts, columns starting with '_' left out."""
    cols = [c for c in frame.columns if not str(c).startswith("_")]
    return [_clean(r) for r in frame[cols].astype(object).to_dict("records")]


def analysis_to_json(analysis: Any) -> dict[str, Any]:
    """An analysis.detectors.Analysis as a JSON-serialisable dict."""
    return {
        "summary": _clean(dict(analysis.summary)),
        "hosts": frame_records(analysis.hosts),
        "resources": frame_records(analysis.resources),
        "findings": frame_records(analysis.findings),
    }


def dump_json(report: dict[str, Any]) -> str:
    """The report as every etagwatch output writes it (analyze, probe, the addon's export)."""
    return json.dumps(report, indent=1, ensure_ascii=False, default=str) + "\n"


def write_json(report: dict[str, Any], target: str) -> None:
    """Write the report to the file ``target``, or to stdout for ``-``; OSError propagates."""
    if target == "-":
        sys.stdout.write(dump_json(report))
    else:
        Path(target).write_text(dump_json(report), encoding="utf-8")
