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

from addons.live_checks import Lines, Update, Verdict, check_exchange
from addons.live_state import LiveState
from analysis.exchange import Exchange

#: Seconds between the starts of detector re-runs (see :class:`Rerunner`).
RERUN_INTERVAL = 1.0
#: Seconds: the bound on how long after a flow the verdict its evidence supports is on every
#: recent flow of its resource (RERUN_INTERVAL, a run, delivery), while a detector run takes
#: at most a third of a second; tests hold the live annotator to it.
VERDICT_DELAY = 2.0
#: Seconds between sweeps: resources with exchanges that brought no new evidence (steady
#: revisits) are re-judged then, so the live verdict keeps up with analyze's counts too.
SWEEP_INTERVAL = 10.0
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
        self._stale: set[str] = set()  # exchanges since the last run, none of them new evidence
        self._lock = threading.Lock()  # the annotator's worker thread takes changed resources

    def observe(self, ex: Exchange, lines: Lines, handle: Hashable, full: Record | None = None) -> Update:
        """What ``ex``'s flow shows now: the verdicts ``ex`` settles on its own, and its
        resource's current detector verdicts (a flow that comes after the verdict gets it at
        once); ``lines``: the request's precondition lines. ``full`` (the full record or its
        builder) is what detector re-runs get instead of ``ex`` when ``ex`` is a light record.
        An exchange that may change the verdict (``ResourceState.add``) marks its resource
        for a re-run."""
        self.state.host(ex.host or "").add(ex)
        resource = self.state.resource(ex.url)
        verdicts = check_exchange(ex, resource, lines)
        held = len(resource.handles)
        evidence = resource.add(handle, ex, full)
        self.state.held(len(resource.handles) - held)
        if self.rerun_detectors:
            with self._lock:
                (self._changed if evidence else self._stale).add(ex.url)
        return Update(tuple(verdicts), resource.current or None)

    @property
    def changed(self) -> bool:
        return bool(self._changed)

    def sweep(self) -> bool:
        """Mark the resources revisited since their last run as changed; True if any were."""
        with self._lock:
            self._changed |= self._stale
            self._stale.clear()
        return self.changed

    def take_changed(self, limit: int = RESOURCES_PER_RUN) -> list[Record]:
        """The recent records of up to ``limit`` resources that showed new evidence since the
        last call (the rest wait for the next one)."""
        with self._lock:
            urls = set(list(self._changed)[:limit])
            self._changed -= urls
            self._stale -= urls
        return [ex for url in urls if (r := self.state.resources.get(url)) for ex in list(r.exchanges)]

    def revise(self, results: dict[str, list[Verdict]]) -> list[tuple[str, list[Hashable], tuple[Verdict, ...]]]:
        """``(url, handles, verdicts)`` for each resource whose detector verdicts differ from
        those on its flows (``results`` from :func:`detect`: an empty list withdraws them),
        with the handles of its recent flows; remembered as current."""
        out = []
        for url, verdicts in results.items():
            resource = self.state.resources.get(url)
            if resource is None or tuple(verdicts) == resource.current:
                continue
            resource.current = tuple(verdicts)
            out.append((url, list(resource.handles), resource.current))
        return out

    def host_counters(self) -> dict[str, dict[str, int]]:
        return {host: c.as_dict() for host, c in sorted(self.state.hosts.items())}


class Rerunner:
    """A daemon thread that calls ``run`` when poked, batching what arrives meanwhile: runs
    start at most once per ``RERUN_INTERVAL``, or three times the last run's duration when
    that is longer, so detectors never take more than a third of a CPU. A poke after a quiet
    spell runs at once; so a flow's new evidence is judged within ``RERUN_INTERVAL`` plus a run
    or two (see :data:`VERDICT_DELAY`); steady revisits, every ``SWEEP_INTERVAL``. Exceptions
    go to ``failed``; the thread goes on."""

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
        next_start = time.monotonic()
        next_sweep = next_start + SWEEP_INTERVAL
        while not self._stop.is_set():
            woken = self._wake.wait(max(0.0, next_sweep - time.monotonic()))
            if time.monotonic() >= next_sweep:  # also under steady new evidence
                next_sweep = time.monotonic() + SWEEP_INTERVAL
                woken = self.judge.sweep() or woken
            if not woken:
                continue
            if self._stop.wait(max(0.0, next_start - time.monotonic())):  # throttle: batch
                return
            self._wake.clear()
            started = time.monotonic()
            try:
                self.run()
            except Exception as exc:
                self.failed(exc)
            next_start = started + max(RERUN_INTERVAL, 3 * (time.monotonic() - started))
            if self.judge.changed:
                self._wake.set()

    def close(self, timeout: float = 5) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None


def detect(detector: ResourceDetector, records: list[Record]) -> dict[str, list[Verdict]]:
    """Run ``detector`` on full records, building those kept as builders first: the verdicts
    of every resource among them, an empty list for those with none worth showing (so a
    verdict the evidence no longer supports is withdrawn)."""
    built = [r if isinstance(r, Exchange) else r() for r in records]
    results: dict[str, list[Verdict]] = {ex.url: [] for ex in built}
    results.update(detector(built))
    return results
