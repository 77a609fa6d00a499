"""Runs a crawl: every profile in a thread of its own (its own Playwright, Chromium and
recorder), at most ``jobs`` at once, each working through its pending visits in the journal.

A failed visit is recorded and the profile goes on; a profile whose browser or recorder cannot
start is recorded as failing its visits, never the crawl. On Ctrl-C or SIGTERM the profiles stop
after the visit at hand (the visit left half-done is redone on resume).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from analysis.crawl.browser import BrowserOptions, launch_profile
from analysis.crawl.journal import Journal, Plan, Visit
from analysis.crawl.recorder import Recorder, ensure_ca
from analysis.crawl.visit import Tab, VisitError, VisitOptions, run_visit, visit_kind
from analysis.lab.net import LabError

#: Memory one profile may take: measured ~350 MB PSS per profile on the lab (Chromium, its
#: mitmdump and store writer; bench/crawl.py), with headroom for heavy real pages.
PROFILE_BYTES = 700 * 1024 * 1024
#: Seconds of a profile's latest visits whose rows a recorder killed outright may have held
#: uncommitted (its store writer commits every 0.5 s): they are done again on resume.
RECORDER_LAG = 5.0
#: Seconds to wait for an interrupted run's recorders and browsers to let go.
ORPHAN_WAIT = 20.0


def available_memory() -> int:
    """MemAvailable from /proc/meminfo (Linux), else physical memory."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def default_jobs(profiles: int) -> int:
    """Profiles at once: one per core, as many as free memory holds, never more than asked."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    by_memory = available_memory() // PROFILE_BYTES
    return max(1, min(profiles, cores or 1, by_memory))


@dataclass
class CrawlConfig:
    plan: Plan
    db: Path
    state_dir: Path  # profiles and the recorders' CA, beside the store
    jobs: int
    browser: BrowserOptions = field(default_factory=BrowserOptions)
    visit: VisitOptions = field(default_factory=VisitOptions)
    har_dir: Path | None = None
    lab_route: bool = False
    upstream_ca: Path | None = None


@dataclass
class Progress:
    """What a worker reports after each visit."""

    profile: str
    visit: Visit | None  # None: the profile stopped (the error says why)
    error: str | None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie has let go of everything
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    return True


def _browser_pid(user_data: Path) -> int | None:
    """The pid in Chromium's SingletonLock (``hostname-pid``), if a browser holds the profile."""
    with contextlib.suppress(OSError, ValueError):
        return int(os.readlink(user_data / "SingletonLock").rsplit("-", 1)[1])
    return None


def wait_for_orphans(journal: Journal, profiles_dir: Path, timeout: float = ORPHAN_WAIT) -> None:
    """Before recovering: an interrupted run's recorders (they stop by themselves once their
    crawl is gone, flushing what they held) and browsers must have let go."""
    pids = journal.recorders()
    if profiles_dir.is_dir():
        pids += [p for d in profiles_dir.iterdir() if (p := _browser_pid(d)) is not None]
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in journal.recorders():
        if not _alive(pid):
            journal.remove_recorder(pid)


def crawl_profile(profile: str, config: CrawlConfig, trusted: tuple[str, ...],
                  stop: threading.Event, report: Callable[[Progress], None]) -> None:
    """Every pending visit of one profile, through its own recorder and browser; the profile's
    browser data is removed once all its visits are done or failed."""
    from playwright.sync_api import Error as PlaywrightError

    with Journal(config.db) as journal:
        user_data = config.state_dir / "profiles" / profile
        pending = journal.pending(profile)
        if pending:  # else finished by a run that stopped before it could clean up
            try:
                _run_profile(journal, profile, pending, config, trusted, stop, report)
            except (LabError, PlaywrightError, OSError) as exc:
                error = f"{profile} could not run: {_first_line(exc)}"
                for visit in journal.pending(profile):  # recorded, and the crawl goes on
                    journal.finish(visit, 0, error)
                    report(Progress(profile, visit, error))
        if journal.profile_finished(profile):
            shutil.rmtree(user_data, ignore_errors=True)


def _run_profile(journal: Journal, profile: str, pending: list[Visit], config: CrawlConfig,
                 trusted: tuple[str, ...], stop: threading.Event,
                 report: Callable[[Progress], None]) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    har = _har_path(config.har_dir, profile) if config.har_dir is not None else None
    with Recorder(db=config.db, client=profile, confdir=config.state_dir / "mitmproxy",
                  lab_route=config.lab_route, upstream_ca=config.upstream_ca) as rec:
        assert rec.process is not None
        journal.add_recorder(rec.process.pid)
        with sync_playwright() as pw:
            context = launch_profile(pw, config.state_dir / "profiles" / profile,
                                     config.browser, proxy=rec.url, trusted_spki=trusted,
                                     har=har)
            closed = threading.Event()
            context.on("close", lambda _context: closed.set())
            try:
                _visits(journal, Tab(context), pending, config, stop, report,
                        broken=lambda: _broken(rec, closed))
            except ProfileBroken as exc:  # the rest waits for a resume
                report(Progress(profile, None, _left_for_resume(journal, profile, exc)))
            finally:
                with contextlib.suppress(PlaywrightError):
                    context.close()
        journal.remove_recorder(rec.process.pid)


def _left_for_resume(journal: Journal, profile: str, problem: ProfileBroken) -> str:
    """Leave a broken profile's visits for a resume (its recent ones too when its recorder may
    not have stored them whole); what to tell the user."""
    redo = journal.reopen_recent(profile, RECORDER_LAG) if problem.recorder_lost else 0
    left = len(journal.pending(profile)) + journal.interrupted_of(profile)
    return (f"{profile} stopped: {problem}; its {left} remaining visits are left for a resume"
            + (f" ({redo} recent ones to be redone: the recorder may not have stored them "
               "whole)" if redo else ""))


class ProfileBroken(Exception):
    """The profile's recorder or browser is gone: its remaining visits cannot be made now."""

    def __init__(self, why: str, recorder_lost: bool) -> None:
        super().__init__(why)
        self.recorder_lost = recorder_lost


def _broken(recorder: Recorder, closed: threading.Event) -> ProfileBroken | None:
    """Why the profile cannot go on, or None."""
    if recorder.process is None or recorder.process.poll() is not None:
        code = recorder.process.returncode if recorder.process is not None else None
        tail = recorder.log_tail()
        return ProfileBroken(f"its recorder exited ({code}){': ' + tail if tail else ''}", True)
    if closed.is_set():
        return ProfileBroken("its browser exited", False)
    return None


def _har_path(folder: Path, profile: str) -> Path:
    """``crawl-1.har``, then ``crawl-1.2.har`` for a resumed run's HAR, and so on."""
    taken = [p for p in folder.glob(f"{profile}.*har")
             if re.fullmatch(rf"{re.escape(profile)}(\.\d+)?\.har", p.name)]
    part = len(taken) + 1
    return folder / (f"{profile}.har" if part == 1 else f"{profile}.{part}.har")


def _visits(journal: Journal, tab: Tab, pending: list[Visit], config: CrawlConfig,
            stop: threading.Event, report: Callable[[Progress], None],
            broken: Callable[[], ProfileBroken | None]) -> None:
    for visit in pending:
        if stop.is_set():
            return
        if (problem := broken()) is not None:
            raise problem
        journal.start(visit, visit_kind(visit.visit))
        url = config.plan.sites[visit.site_index]
        try:
            pages = run_visit(tab, url, visit.visit, config.visit)
        except VisitError as exc:
            if stop.is_set():  # the browser was closed under it: redo it on resume
                return
            if (problem := broken()) is not None:  # not the site's failure: redone on resume
                raise problem from None
            error = str(exc).replace(url, visit.site)  # the URL as stored, never in clear
            journal.finish(visit, 0, error)
            report(Progress(visit.profile, visit, error))
            continue
        journal.finish(visit, pages)
        report(Progress(visit.profile, visit, None))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_crawl(config: CrawlConfig, on_progress: Callable[[Progress], None]) -> None:
    """Crawl every pending visit of ``config.plan``; returns when all are done or failed.
    KeyboardInterrupt (Ctrl-C, SIGTERM through analysis.cli) stops the profiles and is
    re-raised once they let go (or after the page timeout)."""
    trusted = (ensure_ca(config.state_dir / "mitmproxy"),)
    work: queue.Queue[str] = queue.Queue()
    for profile in config.plan.profiles:
        work.put(profile)
    events: queue.Queue[Progress] = queue.Queue()
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                profile = work.get_nowait()
            except queue.Empty:
                return
            crawl_profile(profile, config, trusted, stop, events.put)

    threads = [threading.Thread(target=worker, name=f"crawl-worker-{n}", daemon=True)
               for n in range(max(1, config.jobs))]
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads) or not events.empty():
            with contextlib.suppress(queue.Empty):
                on_progress(events.get(timeout=0.2))
    except KeyboardInterrupt:
        stop.set()
        deadline = time.monotonic() + min(config.visit.timeout, 10.0)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        raise
