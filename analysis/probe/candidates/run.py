"""A `probe --candidates` run: every candidate of a store probed with bounded concurrency and a
per-host rate limit, each outcome committed to the store as soon as it is known.

A server that fails (refused, timeout, TLS, not HTTP) is recorded with its one-line reason and
never stops the run; after FAILURES_PER_HOST such failures of one server (host and port) its
remaining resources are recorded as not probed instead of being tried again. Resources a probe already settled (confirmed or
cleared) are left alone unless ``again``, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from analysis.privacy import redacted
from analysis.probe.candidates.experiment import FORGED_CLIENT, Trial, run_trial
from analysis.probe.candidates.outcome import CLEARS, CONFIRMS, decide
from analysis.probe.candidates.pacing import DEFAULT_CONCURRENCY, DEFAULT_RATE, HostPacer
from analysis.probe.candidates.targets import Target, candidates
from analysis.probe.context import ProbeOptions
from analysis.probe.errors import ProbeError
from analysis.store import Store, load_exchanges, load_probe_outcomes

ERROR, SKIPPED = "error", "skipped"
#: Failures of one host after which its other resources are not tried.
FAILURES_PER_HOST = 2


@dataclass(frozen=True)
class Settings:
    options: ProbeOptions
    concurrency: int = DEFAULT_CONCURRENCY
    rate: float = DEFAULT_RATE
    again: bool = False


@dataclass(frozen=True)
class Probed:
    """One candidate's outcome, as recorded in the store."""

    target: Target
    outcome: str  # confirms | clears | inconclusive | error | skipped
    settles: str | None
    rule: str
    reason: str
    probed_at: float
    evidence: dict[str, Any]

    def row(self) -> dict[str, object]:
        return {"url": self.target.url, "probed_at": self.probed_at, "outcome": self.outcome,
                "settles": self.settles, "rule": self.rule,
                "verdict_before": self.target.verdict, "reason": self.reason,
                "evidence": self.evidence}

    @property
    def requests(self) -> int:
        return len(self.evidence.get("requests") or [])


@dataclass
class CandidateRun:
    settings: Settings
    targets: list[Target]
    probed: list[Probed] = field(default_factory=list)
    already_settled: list[Target] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, outcome: str) -> int:
        return sum(p.outcome == outcome for p in self.probed)

    @property
    def failed_hosts(self) -> dict[str, str]:
        """host:port -> the last failure."""
        return {p.target.server: p.reason for p in self.probed if p.outcome == ERROR}

    @property
    def exit_status(self) -> int:
        """1 when a probe confirmed an identifier (as `probe URL` exits 1 on tracking)."""
        return 1 if any(p.outcome == CONFIRMS for p in self.probed) else 0


class _Cancelled(Exception):
    """The run is stopping (Ctrl-C, SIGTERM): send nothing more."""


class _Hosts:
    """Failures per server (host:port), shared by the probing threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, list[str]] = {}

    def failed(self, host: str, reason: str) -> None:
        with self._lock:
            self._failures.setdefault(host, []).append(reason)

    def given_up(self, host: str) -> str | None:
        with self._lock:
            seen = self._failures.get(host, [])
            return seen[-1] if len(seen) >= FAILURES_PER_HOST else None


def _evidence(target: Target, trial: Trial | None, show: Callable[[str | None], str | None],
              confidence: float | None, settings: Settings) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "before": {"verdict": target.verdict, "kind": target.kind,
                   "confidence": target.confidence},
        "clients": settings.options.clients,
        "rate_per_host": settings.rate,
        "confidence": confidence,
        "requests": [],
    }
    if trial is not None:
        ev["requests"] = [r.to_dict(show) for r in trial.requests]
        ev["forged_tag"] = trial.forged
        ev["forged_client"] = FORGED_CLIENT
    return ev


def probe_target(target: Target, settings: Settings, pace: Callable[[str], None], key: bytes,
                 hosts: _Hosts) -> Probed:
    """Probe one candidate; every failure becomes an outcome (never an exception)."""
    def show(value: str | None) -> str | None:
        return redacted(value, key) if value is not None and target.redacted else value

    def result(outcome: str, settles: str | None, rule: str, reason: str,
               trial: Trial | None = None, confidence: float | None = None) -> Probed:
        return Probed(target, outcome, settles, rule, reason, time.time(),
                      _evidence(target, trial, show, confidence, settings))

    if target.skip:
        return result(SKIPPED, None, "probe-skipped", target.skip)
    given_up = hosts.given_up(target.server)
    if given_up:
        return result(ERROR, None, "probe-host-failed",
                      f"not probed: {target.server} failed {FAILURES_PER_HOST} times "
                      f"(last: {given_up})")
    trial = Trial(target.url, settings.options.clients)
    try:
        run_trial(trial, settings.options, pace)
    except ProbeError as exc:
        hosts.failed(target.server, str(exc))
        return result(ERROR, None, "probe-failed", str(exc), trial)
    decided = decide(trial, lambda v: show(v) or "")
    return result(decided.outcome, decided.settles, decided.rule, decided.reason, trial,
                  decided.confidence)


def run_candidates(store: Store, settings: Settings, *,
                   on_result: Callable[[Probed], None] | None = None,
                   on_targets: Callable[[int], None] | None = None) -> CandidateRun:
    """Probe every candidate of ``store`` and record each outcome there as it comes in
    (``on_result`` is told too: the progress bar). ``on_targets`` gets the number to probe."""
    started = time.monotonic()
    targets = candidates(load_exchanges(store))
    run = CandidateRun(settings, targets)
    done = set()
    if not settings.again:
        earlier = load_probe_outcomes(store)
        done = set(earlier.loc[earlier["outcome"].isin((CONFIRMS, CLEARS)), "url"])
    todo = [t for t in targets if t.url not in done]
    run.already_settled = [t for t in targets if t.url in done]
    if on_targets:
        on_targets(len(todo))
    pacer, hosts, stop = HostPacer(settings.rate), _Hosts(), threading.Event()

    def pace(host: str) -> None:
        if stop.is_set():
            raise _Cancelled
        pacer.wait(host)
        if stop.is_set():
            raise _Cancelled

    def record(probed: Probed) -> None:
        store.add_probe_outcome(probed.row())
        run.probed.append(probed)
        if on_result:
            on_result(probed)

    pool = ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="probe")
    pending: set[Future[Probed]] = set()
    try:
        queue = list(todo)
        while queue or pending:
            while queue and len(pending) < settings.concurrency:
                pending.add(pool.submit(probe_target, queue.pop(0), settings, pace, store.key,
                                        hosts))
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                record(future.result())
    finally:
        stop.set()  # on Ctrl-C: the threads send nothing more; finished outcomes are stored
        pool.shutdown(wait=True, cancel_futures=True)
        run.seconds = time.monotonic() - started
    return run
