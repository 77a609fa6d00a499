"""Commands over everything recorded so far: ``etagwatch.report`` and ``etagwatch.export``.

Both flush the recorder, load the store and run the same detectors and JSON writer as
``etagwatch analyze``, so the proxy and the command line never disagree. They run on demand
(a user command), not per flow.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence

import mitmproxy.types
from mitmproxy import command, exceptions

from addons.annotator import Annotator
from addons.recorder import Recorder

logger = logging.getLogger(__name__)


class Findings:
    """Report and export commands, reading the recorder's store."""

    name = "etagwatch_findings"

    def __init__(self, recorder: Recorder, annotator: Annotator | None = None) -> None:
        self.recorder = recorder
        self.annotator = annotator

    def analysis_json(self) -> dict:
        if self.recorder.store_path is None:
            raise exceptions.CommandError("etagwatch: nothing is recorded (etagwatch_db is empty)")
        from analysis.detectors import run_all
        from analysis.detectors.settled import settle
        from analysis.report_json import analysis_to_json
        from analysis.store import load_exchanges, load_probe_outcomes

        self.recorder.flush()
        frame = load_exchanges(self.recorder.store_path)
        outcomes = load_probe_outcomes(self.recorder.store_path)  # probe --candidates
        return analysis_to_json(settle(run_all(frame), outcomes))

    @command.command("etagwatch.report")
    def report(self) -> None:
        """Print the current findings and per-host validator counters to the event log."""
        result = self.analysis_json()
        lines = [f"etagwatch: {_summary_line(result.get('summary', {}))}"]
        for finding in result.get("findings", [])[:50]:
            lines.append("  " + _finding_line(finding))
        for resource in result.get("resources", []):
            if resource.get("verdict") in ("identifier", "likely-identifier", "churn", "changed",
                                           "unstable", "undetermined"):
                lines.append(f"  {resource.get('verdict')}: {resource.get('url')}: {resource.get('explanation', '')}")
        if self.annotator is not None:
            for host, counts in self.host_counters().items():
                shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                lines.append(f"  host {host}: {shown}")
        logger.warning("\n".join(lines))

    def host_counters(self) -> dict[str, dict[str, int]]:
        """Per-host counters, summed over where flows were judged: the proxy or the writer
        process (a flow is judged in one place only)."""
        total: dict[str, Counter[str]] = {}
        sources = [self.recorder.host_counters()]
        if self.annotator is not None:
            sources.append(self.annotator.host_counters())
        for counters in sources:
            for host, counts in counters.items():
                total.setdefault(host, Counter()).update(counts)
        return {host: dict(total[host]) for host in sorted(total)}

    @command.command("etagwatch.export")
    def export(self, path: mitmproxy.types.Path) -> None:
        """Write the JSON report that `etagwatch analyze --json` writes."""
        from analysis.report_json import dump_json

        result = self.analysis_json()
        try:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(dump_json(result))  # as analyze writes it
        except OSError as exc:
            raise exceptions.CommandError(f"etagwatch.export: cannot write {path}: {exc.strerror}") from exc
        logger.warning(f"etagwatch: findings written to {path}")


def _summary_line(summary: dict) -> str:
    if not summary:
        return "no findings yet"
    return ", ".join(f"{k} {v}" for k, v in summary.items() if not isinstance(v, dict | list))


def _finding_line(finding: dict) -> str:
    parts: Sequence[str] = [
        str(finding.get(k)) for k in ("severity", "rule", "host", "url", "explanation") if finding.get(k)
    ]
    return " | ".join(parts) or json.dumps(finding, default=str)[:200]
