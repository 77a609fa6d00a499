"""Live verdicts in the flow list: comments and markers as evidence appears.

Each flow carries one current verdict: the sentences its own exchange settled, and its
resource's current detector verdict, which a later re-run *replaces* (comment rewritten in
place, marker changed or removed) when the evidence changes, so the flow says what
``etagwatch analyze`` would say of the records so far. A flow that comes after its resource's
verdict gets it at once.

The verdicts come from a :class:`addons.live_judge.Judge`: single-exchange checks with the RFC
core (``addons.live_checks``) at once, and the detectors' multi-exchange verdicts (an ETag that
identifies clients, load-balancer churn) from re-runs on one resource's recent exchanges when
that resource shows new evidence. Where the judge runs is the recorder's choice: in its writer
process by default, so judging costs the proxy's event loop nothing, and the verdicts come back
to :meth:`Annotator.annotate_flows`; here, on the event loop, when verdicts must be on the flow
before the next addon sees it (flows streamed to a file as they finish), or when the writer
process cannot start. Here, detector re-runs happen on a worker thread, at most once per
``RERUN_INTERVAL`` seconds, and their verdicts are applied on the event loop, with an update so
mitmweb redraws the flows. Those reach flows already saved to a file through
``addons.saved_verdicts``, after one last detector run at shutdown.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import multiprocessing
import time
import weakref
from collections.abc import Callable, Iterable
from functools import partial

from mitmproxy import ctx, http
from mitmproxy.hooks import UpdateHook

from addons import option_checks
from addons.chain_end import append_once
from addons.guard import never_raise, report
from addons.live_checks import MARKERS, SEVERITIES, Update, Verdict, precondition_lines
from addons.live_detectors import warm_up
from addons.live_judge import Judge, Rerunner, ResourceDetector, detect
from addons.live_state import LiveState
from addons.saved_verdicts import SavedVerdicts
from analysis.exchange import Exchange

logger = logging.getLogger(__name__)

#: At most this long for the detectors at shutdown when flows are saved to a file (mitmproxy's
#: callers wait a few seconds after SIGTERM).
FINAL_PASS_SECONDS = 3.0


#: ``flow.metadata`` key of what etagwatch put on the flow: its own verdicts, its resource's
#: current ones, the comment text and the marker written (so a revision replaces exactly
#: those, and a user's own comment or marker stays).
META = "etagwatch"


def annotate(flow: http.HTTPFlow, own: Iterable[Verdict] = (), resource: Iterable[Verdict] | None = None) -> bool:
    """Give the flow one current verdict: ``own`` verdicts added (its exchange settled them),
    the resource's detector verdicts replaced by ``resource`` (unless None); the comment
    rewritten in place, the marker set by the most serious verdict or removed. True when the
    flow changed."""
    meta = flow.metadata.get(META) or {}
    mine: list[list[str]] = [list(v) for v in meta.get("own", ())]
    for v in own:
        if [v.severity, v.sentence] not in mine:
            mine.append([v.severity, v.sentence])
    theirs = [list(v) for v in meta.get("resource", ())] if resource is None else [[v.severity, v.sentence] for v in resource]
    text = " ".join(dict.fromkeys(sentence for _, sentence in mine + theirs))  # each sentence once
    severities = [SEVERITIES.index(sev) for sev, _ in mine + theirs if sev in MARKERS]
    marker = MARKERS[SEVERITIES[min(severities)]] if severities else ""
    written, comment = meta.get("comment", ""), flow.comment
    if written:  # what the user wrote around ours stays
        head, found, tail = comment.rpartition(written)
        comment = f"{head.strip()} {tail.strip()}" if found else comment
    comment = f"{comment.strip()} {text}".strip()
    ours = flow.marked in ("", meta.get("marked", ""))  # never overwrite a marker the user set
    new_marker = marker if ours else flow.marked
    if comment == flow.comment and new_marker == flow.marked and mine == meta.get("own", []) and theirs == meta.get("resource", []):
        return False
    flow.comment, flow.marked = comment, new_marker
    flow.metadata[META] = {"own": mine, "resource": theirs, "comment": text, "marked": marker if ours else ""}
    return True


class Annotator:
    """Keeps per-host and per-resource state and writes verdicts onto flows."""

    name = "etagwatch_annotator"

    def __init__(self, detector: ResourceDetector | None = None, *, own_process: bool = False) -> None:
        """``own_process``: run the detector in a child process (the entry script does), so
        pandas work never competes with the proxy's event loop for the GIL."""
        self.judge = Judge(rerun_detectors=detector is not None)
        self.detector = detector
        self.own_process = own_process
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rerunner = Rerunner(self.judge, self._rerun, partial(report, "annotator.detectors"), "etagwatch-detectors")
        self._enabled = True
        self._pending: collections.deque[dict[str, list[Verdict]]] = collections.deque()  # re-run results
        self.saved: SavedVerdicts | None = None
        self.detector_runs = 0
        self.detector_seconds = 0.0

    def load(self, loader) -> None:
        loader.add_option(
            "etagwatch_annotate",
            bool,
            True,
            "Annotate flows with etagwatch verdicts (comment and marker) as evidence appears.",
        )
        option_checks.apply_set_values(loader, ["etagwatch_annotate"])

    def configure(self, updated: set[str]) -> None:
        self._enabled = ctx.options.etagwatch_annotate

    @property
    def state(self) -> LiveState:
        return self.judge.state

    def running(self) -> None:
        self._loop = asyncio.get_running_loop()  # detector re-runs start from now on
        self.saved = append_once(SavedVerdicts())  # late verdicts into the files of ``mitmdump -w``

    def done(self) -> None:
        self._rerunner.close()
        try:
            self._apply_pending()  # what the re-run thread found and the loop has not applied
            if self.saved is not None and self.saved.saving:
                self._final_pass()
        except Exception as exc:
            report("annotator.done", exc)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # --- fed by the recorder with each flow and its exchange record (judged here)
    @never_raise("annotator.observe")
    def observe(
        self, flow: http.HTTPFlow, ex: Exchange, full: Callable[[], Exchange] | None = None
    ) -> None:
        """``ex`` holds at least the fields single-exchange checks read; ``full`` builds the
        complete record, which only detector re-runs need (so it is built then, off the loop)."""
        if not self._enabled:
            return
        lines = precondition_lines(flow.request.headers.fields)
        update = self.judge.observe(ex, lines, weakref.ref(flow), full)
        if self.saved is not None:
            self.saved.seen(flow.id, ex.url)
        if update.own or update.resource:
            annotate(flow, update.own, update.resource)
        if self.detector is not None and self._loop is not None and self.judge.changed:
            self._rerunner.poke()

    # --- or with verdicts judged in the store's writer process
    @never_raise("annotator.annotate_flows")
    def annotate_flows(self, judged: list[tuple[http.HTTPFlow, Update]]) -> None:
        """Write verdicts the writer process found onto their flows (on the event loop)."""
        if not self._enabled:
            return
        updated = [flow for flow, update in judged if annotate(flow, update.own, update.resource)]
        if updated:  # a flow revised twice in one batch is redrawn once
            ctx.master.addons.trigger(UpdateHook(list(dict.fromkeys(updated))))

    # --- detector re-runs
    def rerun_now(self) -> dict[str, list[Verdict]]:
        """Run the detector over every changed resource and apply its verdicts (synchronous;
        the worker thread uses the same path, tests call it directly); those it found."""
        results = self._detect()
        self._apply(results)
        return {url: found for url, found in results.items() if found}

    def _detect(self) -> dict[str, list[Verdict]]:
        records = self.judge.take_changed()
        if not records or self.detector is None:
            return {}
        started = time.perf_counter()
        try:
            if self.own_process:  # full records are built in the detector process
                if self._pool is None:
                    self._pool = concurrent.futures.ProcessPoolExecutor(
                        max_workers=1, mp_context=multiprocessing.get_context("spawn")
                    )
                    self._pool.submit(warm_up)
                return self._pool.submit(detect, self.detector, records).result()
            return detect(self.detector, records)
        finally:
            self.detector_runs += 1
            self.detector_seconds += time.perf_counter() - started

    def _apply(self, results: dict[str, list[Verdict]]) -> None:
        updated: list[http.HTTPFlow] = []
        for url, refs, verdicts in self.judge.revise(results):
            if self.saved is not None:  # for every saved flow of the resource, kept or not
                self.saved.revise(url, verdicts)
            for ref in refs:
                flow = ref()
                if flow is not None and annotate(flow, resource=verdicts):
                    updated.append(flow)
        if updated:
            ctx.master.addons.trigger(UpdateHook(updated))

    def _rerun(self) -> None:
        """On the re-run thread: detect, then apply on the event loop (or in ``done``, when the
        loop stops first)."""
        results = self._detect()
        if results and self._loop is not None:
            self._pending.append(results)
            self._loop.call_soon_threadsafe(self._apply_safely)

    def _apply_safely(self) -> None:
        try:
            self._apply_pending()
        except Exception as exc:
            report("annotator.apply", exc)

    def _apply_pending(self) -> None:
        while self._pending:
            self._apply(self._pending.popleft())

    def _final_pass(self) -> None:
        """At shutdown, with flows saved to a file: judge the evidence no re-run has seen yet,
        here (no detector process to start), so the file gets those verdicts too."""
        if self.detector is None:
            return
        deadline = time.monotonic() + FINAL_PASS_SECONDS
        self.judge.sweep()  # steady revisits since the last sweep count too
        while self.judge.changed and time.monotonic() < deadline:
            self._apply(detect(self.detector, self.judge.take_changed()))

    # --- for the report command
    def host_counters(self) -> dict[str, dict[str, int]]:
        """Counters of the flows judged here (the recorder has those judged in its writer)."""
        return self.judge.host_counters()
