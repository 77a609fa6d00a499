"""Live verdicts in the flow list: comments and markers as evidence appears.

Per exchange, checks that need only the RFC core run at once (``addons.live_checks``). Verdicts
that need several exchanges (an ETag that identifies clients, load-balancer churn) come from
engineer C's detectors, re-run on the small DataFrame of one resource's recent exchanges when
that resource shows new evidence. Those runs happen on a worker thread, at most once per
``RERUN_INTERVAL`` seconds, and their verdicts are applied on the event loop, with an update
so mitmweb redraws the flows.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterable

from mitmproxy import ctx, http
from mitmproxy.hooks import UpdateHook

from addons.guard import never_raise, report
from addons.live_checks import MARKERS, SEVERITIES, Verdict, check_exchange
from addons.live_detectors import warm_up
from addons.live_state import LiveState, ResourceState
from analysis.exchange import Exchange

logger = logging.getLogger(__name__)

#: Seconds between detector re-runs (they batch every resource that changed meanwhile); a slow
#: run stretches the pause to twice its own duration, so detectors never take most of the CPU.
RERUN_INTERVAL = 1.0
#: Resources per detector run; the rest stay queued for the next run.
RESOURCES_PER_RUN = 200

#: ``(exchanges of changed resources) -> {url: [Verdict, ...]}``; see addons.live_detectors.
ResourceDetector = Callable[[list[Exchange]], dict[str, list[Verdict]]]


def annotate(flow: http.HTTPFlow, verdicts: Iterable[Verdict]) -> bool:
    """Add each new sentence to the flow's comment and mark it by the most serious verdict."""
    changed = False
    for verdict in verdicts:
        if verdict.sentence in flow.comment:
            continue
        flow.comment = f"{flow.comment} {verdict.sentence}".strip()
        changed = True
        ours = {m: s for s, m in MARKERS.items()}
        if flow.marked and flow.marked not in ours:
            continue  # never overwrite a marker the user set
        current = ours.get(flow.marked)
        if current is None or SEVERITIES.index(verdict.severity) < SEVERITIES.index(current):
            flow.marked = MARKERS[verdict.severity]
    return changed


def detect(detector: ResourceDetector, records: list[Exchange | Callable[[], Exchange]]) -> dict[str, list[Verdict]]:
    """Run ``detector`` on full records, building those kept as builders first."""
    return detector([r if isinstance(r, Exchange) else r() for r in records])


class Annotator:
    """Keeps per-host and per-resource state and writes verdicts onto flows."""

    name = "etagwatch_annotator"

    def __init__(self, detector: ResourceDetector | None = None, *, own_process: bool = False) -> None:
        """``own_process``: run the detector in a child process (the entry script does), so
        pandas work never competes with the proxy's event loop for the GIL."""
        self.state = LiveState()
        self.detector = detector
        self.own_process = own_process
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._enabled = True
        self.detector_runs = 0
        self.detector_seconds = 0.0

    def load(self, loader) -> None:
        loader.add_option(
            "etagwatch_annotate",
            bool,
            True,
            "Annotate flows with etagwatch verdicts (comment and marker) as evidence appears.",
        )

    def configure(self, updated: set[str]) -> None:
        self._enabled = ctx.options.etagwatch_annotate

    def running(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.detector is not None and self._worker is None:
            if self.own_process:
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn")
                )
                self._pool.submit(warm_up)
            self._worker = threading.Thread(target=self._run, name="etagwatch-detectors", daemon=True)
            self._worker.start()

    def done(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout=5)
            self._worker = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # --- fed by the recorder with each flow and its exchange record
    @never_raise("annotator.observe")
    def observe(
        self, flow: http.HTTPFlow, ex: Exchange, full: Callable[[], Exchange] | None = None
    ) -> None:
        """``ex`` holds at least the fields single-exchange checks read; ``full`` builds the
        complete record, which only detector re-runs need (so it is built then, off the loop)."""
        if not self._enabled:
            return
        self.state.host(ex.host or "").add(ex)
        resource = self.state.resource(ex.url)
        verdicts = check_exchange(flow, ex, resource)
        new_evidence = resource.add(flow, ex, full)
        if verdicts:
            resource.verdicts.update(v.sentence for v in verdicts)
            annotate(flow, verdicts)
        if new_evidence and self.detector is not None:
            with self._lock:
                self._dirty.add(ex.url)
            self._wake.set()

    # --- detector re-runs
    def rerun_now(self) -> dict[str, list[Verdict]]:
        """Run the detector over every changed resource and apply its verdicts (synchronous;
        the worker thread uses the same path, tests call it directly)."""
        results = self._detect()
        self._apply(results)
        return results

    def _detect(self) -> dict[str, list[Verdict]]:
        with self._lock:
            urls = set(list(self._dirty)[:RESOURCES_PER_RUN])
            self._dirty -= urls
        if not urls or self.detector is None:
            return {}
        records = [
            ex for url in urls if (r := self.state.resources.get(url)) for ex in list(r.exchanges)
        ]
        if not records:
            return {}
        started = time.perf_counter()
        try:
            if self._pool is not None:  # full records are built in the detector process
                return self._pool.submit(detect, self.detector, records).result()
            return detect(self.detector, records)
        finally:
            self.detector_runs += 1
            self.detector_seconds += time.perf_counter() - started

    def _apply(self, results: dict[str, list[Verdict]]) -> None:
        updated: list[http.HTTPFlow] = []
        for url, verdicts in results.items():
            resource: ResourceState | None = self.state.resources.get(url)
            if resource is None:
                continue
            fresh = [v for v in verdicts if v.sentence not in resource.verdicts]
            if not fresh:
                continue
            resource.verdicts.update(v.sentence for v in fresh)
            for flow in resource.flows:
                if annotate(flow, fresh):
                    updated.append(flow)
        if updated:
            ctx.master.addons.trigger(UpdateHook(updated))

    def _run(self) -> None:
        pause = RERUN_INTERVAL
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.wait(pause):  # throttle: batch what changes meanwhile
                return
            started = time.monotonic()
            try:
                results = self._detect()
            except Exception as exc:
                report("annotator.detectors", exc)
                results = {}
            pause = max(RERUN_INTERVAL, 2 * (time.monotonic() - started))
            with self._lock:
                if self._dirty:
                    self._wake.set()
            if results and self._loop is not None:
                self._loop.call_soon_threadsafe(self._apply_safely, results)

    def _apply_safely(self, results: dict[str, list[Verdict]]) -> None:
        try:
            self._apply(results)
        except Exception as exc:
            report("annotator.apply", exc)

    # --- for the report command
    def host_counters(self) -> dict[str, dict[str, int]]:
        return {host: c.as_dict() for host, c in sorted(self.state.hosts.items())}
