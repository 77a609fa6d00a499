"""The probe section of the terminal and JSON output (the analysis part is analyze's own)."""

from __future__ import annotations

import textwrap
from typing import Any

from analysis.probe.runner import ProbeRun

MARK = {"pass": "PASS", "fail": "FAIL", "skip": "skip"}


def probe_json(run: ProbeRun) -> dict[str, Any]:
    """The ``probe`` key of the JSON report."""
    return {
        "url": run.url,
        "clients": run.options.clients,
        "requests": len(run.exchanges),
        "verdict": run.verdict,
        "tracking": run.tracking,
        "passed": sum(c.outcome == "pass" for c in run.checks),
        "failed": sum(c.outcome == "fail" for c in run.checks),
        "skipped": sum(c.outcome == "skip" for c in run.checks),
        "exit_status": run.exit_status,
        "tests": [c.to_dict() for c in run.checks],
    }


def _wrapped(label: str, text: str, width: int) -> list[str]:
    indent = " " * 8
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=f"{indent}{label:<10}",
        subsequent_indent=indent + " " * 10,
    ) or [f"{indent}{label}"]


def probe_text(run: ProbeRun, *, width: int = 100) -> str:
    """Each test: result, name and title; what came back and why it matters; what was sent and
    expected for the tests that did not pass."""
    lines = [
        f"Probe of {run.url}: {run.options.clients} fresh clients, {len(run.exchanges)} requests",
    ]
    for c in run.checks:
        lines.append(f"  {MARK[c.outcome]:<5} {c.name:<21} {c.title}")
        if c.outcome != "pass":
            lines += _wrapped("sent:", c.sent, width)
            lines += _wrapped("expected:", c.expected, width)
        if c.outcome != "skip" or c.got != "-":
            lines += _wrapped("got:", c.got, width)
        lines += _wrapped("why:", c.explanation + (f" [{c.rfc}]" if c.rfc else ""), width)
    failed = len(run.failed)
    summary = (
        f"{len(run.checks) - failed - sum(c.outcome == 'skip' for c in run.checks)} passed, "
        f"{failed} failed, {sum(c.outcome == 'skip' for c in run.checks)} skipped"
    )
    if run.tracking:
        summary += "; ETAG TRACKING MECHANISM FOUND"
    lines.append(f"Probe result: {summary}.")
    return "\n".join(lines)
