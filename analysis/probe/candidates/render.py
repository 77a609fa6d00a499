"""The text and JSON of a `probe --candidates` run (the settled verdicts are analyze's)."""

from __future__ import annotations

from typing import Any

from analysis.probe.candidates.run import CandidateRun, Probed
from analysis.report_evidence import plural
from analysis.report_text import wrap

OUTCOMES = ("confirms", "clears", "inconclusive", "error", "skipped")
#: How the closing line words each outcome.
WORDS = {"confirms": "confirmed", "clears": "cleared", "inconclusive": "left open",
         "error": "failed", "skipped": "skipped"}


def probed_json(p: Probed) -> dict[str, Any]:
    return {"url": p.target.url, "host": p.target.host, "verdict_before": p.target.verdict,
            "outcome": p.outcome, "settles": p.settles, "rule": p.rule, "reason": p.reason,
            "probed_at": p.probed_at, "requests": p.evidence.get("requests") or [],
            "forged_tag": p.evidence.get("forged_tag")}


def run_json(run: CandidateRun, store: str) -> dict[str, Any]:
    """The ``probe`` report of a candidates run."""
    s = run.settings
    return {
        "store": store,
        "candidates": len(run.targets),
        "already_settled": len(run.already_settled),
        "probed": len(run.probed),
        "requests": sum(p.requests for p in run.probed),
        "seconds": round(run.seconds, 3),
        "outcomes": {o: run.count(o) for o in OUTCOMES},
        "failed_hosts": run.failed_hosts,
        "settings": {"clients": s.options.clients, "concurrency": s.concurrency,
                     "rate_per_host": s.rate, "timeout": s.options.timeout, "again": s.again},
        "exit_status": run.exit_status,
        "resources": [probed_json(p) for p in run.probed],
    }


def line(p: Probed) -> str:
    """One candidate's outcome in one line (the reason follows, indented, in run_text)."""
    settles = f" -> {p.settles}" if p.settles else ""
    return f"  {p.outcome:<12} {p.target.verdict}{settles}  {p.target.url}"


def run_text(run: CandidateRun, store: str) -> str:
    lines = wrap(f"Probe of the candidates in {store}: {plural(len(run.targets), 'candidate')} "
                 "(identifier, likely-identifier, undetermined)", indent="")
    if run.already_settled:
        lines.append(f"  {plural(len(run.already_settled), 'resource')} settled by an earlier "
                     "probe left alone (--again probes them again)")
    for p in run.probed:
        lines.append(line(p))
        lines += wrap(f"{p.rule}: {p.reason}")
    counts = ", ".join(f"{run.count(o)} {WORDS[o]}" for o in OUTCOMES if run.count(o))
    lines += wrap(
        f"Probe result: {counts or 'nothing to probe'}; "
        f"{plural(sum(p.requests for p in run.probed), 'request')} in {run.seconds:.1f} s "
        f"({run.settings.rate:g} per second per host at most). "
        f"'etagwatch analyze {store}' shows the settled verdicts.", indent="")
    return "\n".join(lines)
