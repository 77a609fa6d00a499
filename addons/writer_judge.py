"""The live judge, run in the store's writer process on the records it builds anyway.

Judging on mitmproxy's event loop (a light record per flow, the checks, the resource state) was
about a third of what etagwatch cost the proxy (bench/proxy.py). The writer process already
turns every flow snapshot into its full record, so it judges there too and sends back only the
verdicts, as ``[flow id, severity, sentence]`` triples: a few per thousand flows on ordinary
traffic. The proxy writes them onto the flows (``Annotator.annotate_flows``) a fraction of a
second after the response, which is what a mitmweb user sees; the detectors' re-runs happen on a
thread here, at most once per ``RERUN_INTERVAL``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

from addons.flow_snapshot import Snapshot
from addons.live_checks import precondition_lines
from addons.live_judge import Judge, Rerunner, ResourceDetector, detect
from analysis.exchange import from_row

#: What goes back to the proxy: ``[flow id, severity, sentence]``.
Judged = list[list[str]]


class WriterJudge:
    """A :class:`Judge` fed with (snapshot, row) pairs; verdicts go to ``send``."""

    def __init__(self, send: Callable[[Judged], None], detector: ResourceDetector | None = None) -> None:
        self.judge = Judge(rerun_detectors=detector is not None)
        self.detector = detector
        self._send = send
        self._lock = threading.Lock()  # the judge's state: the frame loop and the re-run thread
        self._rerunner = Rerunner(self.judge, self.rerun_now, self._failed, "etagwatch-judge")
        self._failures: set[str] = set()
        self._pending: Judged = []  # verdicts of the current frame, sent by send_pending

    def observe(self, snap: Snapshot, row: tuple) -> None:
        """Judge one recorded flow (``row``: its record's row); what it settles at once waits
        for :meth:`send_pending`."""
        ex = from_row(row)
        with self._lock:
            verdicts = self.judge.observe(ex, precondition_lines(snap.req_fields), snap.flow_id)
        self._pending.extend([snap.flow_id, v.severity, v.sentence] for v in verdicts)
        if self.detector is not None and self.judge.changed:
            self._rerunner.poke()

    def send_pending(self) -> None:
        """Send the verdicts of the flows observed since the last call, as one message (one
        wake-up of the proxy's event loop per frame of flows, however many carry verdicts)."""
        if self._pending:
            pending, self._pending = self._pending, []
            self._send(pending)

    def host_counters(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return self.judge.host_counters()

    def rerun_now(self) -> Judged:
        """Run the detector over every resource with new evidence; send and return what is new."""
        with self._lock:
            records = self.judge.take_changed()
        if not records or self.detector is None:
            return []
        results = detect(self.detector, records)
        with self._lock:
            fresh = self.judge.fresh(results)
        judged = [[flow_id, v.severity, v.sentence] for flow_ids, verdicts in fresh for flow_id in flow_ids for v in verdicts]
        if judged:
            self._send(judged)
        return judged

    def _failed(self, exc: Exception) -> None:
        """A detector failure never stops the recording; each kind is shown once."""
        kind = type(exc).__name__
        if kind not in self._failures:
            self._failures.add(kind)
            print(f"etagwatch: a detector re-run failed ({kind}: {exc}); further {kind} "
                  "failures are not shown", file=sys.stderr, flush=True)

    def close(self) -> None:
        self._rerunner.close()
