"""The live judge, run in the store's writer process on the records it builds anyway.

Judging on mitmproxy's event loop (a light record per flow, the checks, the resource state) was
about a third of what etagwatch cost the proxy (bench/proxy.py). The writer process already
turns every flow snapshot into its full record, so it judges there too and sends back only the
verdicts, as ``[flow id, own, resource]``: the verdicts the flow's exchange settled, and its
resource's current detector verdicts (``None``: unchanged), each a list of ``[severity,
sentence]``; a few per thousand flows on ordinary traffic. A revised resource verdict goes to
every recent flow of the resource, and each later flow of it gets the current one in the next
frame. The proxy writes them onto the flows (``Annotator.annotate_flows``) a fraction of a
second after the response, which is what a mitmweb user sees; the detectors' re-runs happen on a
thread here, at most once per ``RERUN_INTERVAL``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable

from addons.flow_snapshot import Snapshot
from addons.live_checks import Verdict, precondition_lines
from addons.live_detectors import warm_up
from addons.live_judge import Judge, Rerunner, ResourceDetector, detect
from analysis.exchange import from_row

#: What goes back to the proxy: ``[flow id, [[severity, sentence], ...], [[...], ...] | None]``.
Judged = list[list]


def pairs(verdicts: Iterable[Verdict]) -> list[list[str]]:
    return [[v.severity, v.sentence] for v in verdicts]


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
        if detector is not None:  # the first verdict must not wait for pandas to load
            threading.Thread(target=warm_up, name="etagwatch-warm-up", daemon=True).start()

    def observe(self, snap: Snapshot, row: tuple) -> None:
        """Judge one recorded flow (``row``: its record's row); what it settles at once waits
        for :meth:`send_pending`."""
        ex = from_row(row)
        with self._lock:
            update = self.judge.observe(ex, precondition_lines(snap.req_fields), snap.flow_id)
        if update.own or update.resource:
            resource = None if update.resource is None else pairs(update.resource)
            self._pending.append([snap.flow_id, pairs(update.own), resource])
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
        """Run the detector over every resource with new exchanges; send and return the
        revised verdicts, to every recent flow of their resources."""
        with self._lock:
            records = self.judge.take_changed()
        if not records or self.detector is None:
            return []
        results = detect(self.detector, records)
        with self._lock:
            revised = self.judge.revise(results)
        judged = [[flow_id, [], pairs(verdicts)] for _, flow_ids, verdicts in revised for flow_id in flow_ids]
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
