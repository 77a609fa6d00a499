"""Judging exchanges as they come: host counters, resource state, single-exchange checks, and
which resources deserve a detector re-run.

One judge, two homes. The proxy's annotator runs it on the event loop when verdicts must be on
the flow at once (flows streamed to a file as they finish); otherwise the recorder's writer
process runs it on the full records it builds anyway, and sends the verdicts back (see
``addons.record_writer``). A judge never touches a flow: it remembers each exchange's *handle*
(a weak reference to the flow in the proxy, the flow id in the writer process) and says which
handles a verdict belongs to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

from addons.live_checks import Lines, Verdict, check_exchange
from addons.live_state import LiveState
from analysis.exchange import Exchange

#: Seconds between detector re-runs (see :class:`Rerunner`).
RERUN_INTERVAL = 1.0
#: Resources per detector run; the rest stay queued for the next run.
RESOURCES_PER_RUN = 200

#: ``(exchanges of changed resources) -> {url: [Verdict, ...]}``; see addons.live_detectors.
ResourceDetector = Callable[[list[Exchange]], dict[str, list[Verdict]]]
#: A record, or a zero-argument callable that builds it (the proxy keeps records unbuilt).
Record = Exchange | Callable[[], Exchange]


class Judge:
    """Per-host and per-resource state, and the verdicts it supports."""

    def __init__(self, rerun_detectors: bool = True) -> None:
        """``rerun_detectors``: remember which resources showed new evidence (for
        :meth:`take_changed`); off when no detector will ever run."""
        self.state = LiveState()
        self.rerun_detectors = rerun_detectors
        self._changed: set[str] = set()
        self._lock = threading.Lock()  # the annotator's worker thread takes changed resources

    def observe(self, ex: Exchange, lines: Lines, handle: Hashable, full: Record | None = None) -> list[Verdict]:
        """The verdicts ``ex`` settles on its own; ``lines``: the request's precondition lines.
        ``full`` (the full record or its builder) is what detector re-runs get instead of
        ``ex`` when ``ex`` is a light record."""
        self.state.host(ex.host or "").add(ex)
        resource = self.state.resource(ex.url)
        verdicts = check_exchange(ex, resource, lines)
        new_evidence = resource.add(handle, ex, full)
        if verdicts:
            resource.verdicts.update(v.sentence for v in verdicts)
        if new_evidence and self.rerun_detectors:
            with self._lock:
                self._changed.add(ex.url)
        return verdicts

    @property
    def changed(self) -> bool:
        return bool(self._changed)

    def take_changed(self, limit: int = RESOURCES_PER_RUN) -> list[Record]:
        """The recent records of up to ``limit`` resources that showed new evidence since the
        last call (the rest wait for the next one)."""
        with self._lock:
            urls = set(list(self._changed)[:limit])
            self._changed -= urls
        return [ex for url in urls if (r := self.state.resources.get(url)) for ex in list(r.exchanges)]

    def fresh(self, results: dict[str, list[Verdict]]) -> list[tuple[list[Hashable], list[Verdict]]]:
        """Detector verdicts not shown yet, each with the handles of its resource's recent
        flows; remembered as shown."""
        out = []
        for url, verdicts in results.items():
            resource = self.state.resources.get(url)
            if resource is None:
                continue
            new = [v for v in verdicts if v.sentence not in resource.verdicts]
            if new:
                resource.verdicts.update(v.sentence for v in new)
                out.append((list(resource.handles), new))
        return out

    def host_counters(self) -> dict[str, dict[str, int]]:
        return {host: c.as_dict() for host, c in sorted(self.state.hosts.items())}


class Rerunner:
    """A daemon thread that calls ``run`` when poked, batching what arrives meanwhile: at most
    once per ``RERUN_INTERVAL``, or twice the last run's duration when that is longer, so
    detectors never take most of a CPU. Exceptions go to ``failed``; the thread goes on."""

    def __init__(self, judge: Judge, run: Callable[[], object], failed: Callable[[Exception], None], name: str) -> None:
        self.judge, self.run, self.failed, self.name = judge, run, failed, name
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        """New evidence: run soon (the thread starts at the first poke)."""
        if self._wake.is_set():
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()
        self._wake.set()

    def _loop(self) -> None:
        pause = RERUN_INTERVAL
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.wait(pause):  # throttle: batch what changes meanwhile
                return
            started = time.monotonic()
            try:
                self.run()
            except Exception as exc:
                self.failed(exc)
            pause = max(RERUN_INTERVAL, 2 * (time.monotonic() - started))
            if self.judge.changed:
                self._wake.set()

    def close(self, timeout: float = 5) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None


def detect(detector: ResourceDetector, records: list[Record]) -> dict[str, list[Verdict]]:
    """Run ``detector`` on full records, building those kept as builders first."""
    return detector([r if isinstance(r, Exchange) else r() for r in records])
