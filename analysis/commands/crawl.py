"""`etagwatch crawl SITES --profiles N --visits V [--db STORE] [--har-dir DIR] [--links K]
[--jobs J]`: several fresh Chromium profiles visit a list of sites through mitmdump with
etagwatch's addon, so that identifier verdicts get the several clients they need."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from analysis.cli import CliError, at_least, info, show_progress

DEFAULT_DB = "crawl.sqlite"

EPILOG = """\
sites:
  SITES are URLs (http:// or https://), files of URLs (one a line, # comments), or Tranco-style
  CSV files (rank,domain; a domain is visited as https://domain/), in any mix; --top N keeps
  the first N. Duplicates are visited once.

what a crawl does:
  Every profile is a fresh persistent Chromium profile (Debian's /usr/bin/chromium driven by
  Playwright; its own cache, cookies and storage): client crawl-1 .. crawl-N. It visits every
  site V times in a row: load, reload, then again in a new tab (and so on), each followed by
  up to --links same-site links in a tab of their own. Its traffic goes through its own
  mitmdump with etagwatch's addon (etagwatch_client=crawl-N) into the store; the profile
  trusts that mitmdump's CA by its SPKI hash, so HTTPS responses are cached and revalidated
  (If-None-Match -> 304) as they would be without the proxy.

cache partitioning:
  By default Chromium keys its HTTP cache by top-level site, so a third party gets one cache
  entry per site: an ETag identifier then links visits within one site only (verdict scope
  per-site). --unpartitioned-cache turns Chromium's partitioning off
  (--disable-features=SplitCacheByNetworkIsolationKey): what a tracker could link across sites
  in a browser without partitioning (scope cross-site). A store holds one mode.

resuming:
  The plan and a journal of every visit are kept in the store (tables crawl_plan,
  crawl_visits), the profiles and the proxies' CA beside it (STORE-crawl/). Run the same
  command again after an interruption (Ctrl-C, SIGTERM, a crash, a reboot): it continues where
  it stopped; a visit cut short is removed from the store and done again, nothing is done
  twice. Failed visits (timeout, refused, ...) are recorded with their error, not retried.

output:
  a progress bar (sites x profiles x visits) on a terminal, then the crawl's figures and the
  headline of 'etagwatch analyze' over the store; 'etagwatch analyze STORE' gives the verdicts
  and their evidence. --json FILE writes analyze's JSON report with the figures under 'crawl'.

exit status:
  0  every visit done;  1  some visits failed (listed, and in the store) or are left for a
     resume (a profile's recorder or browser exited);  2  usage error

examples:
  etagwatch crawl https://news.example/ https://shop.example/ --profiles 3 --visits 3
  etagwatch crawl tranco.csv --top 100 --profiles 3 --db top100.sqlite --jobs 2
  etagwatch crawl sites.txt --unpartitioned-cache --db unpartitioned.sqlite --har-dir hars/
  etagwatch analyze top100.sqlite
"""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "crawl",
        help="visit a list of sites as several fresh Chromium profiles, recording every "
        "exchange (the evidence identifier verdicts need)",
        description="Visit SITES as several fresh Chromium profiles through mitmdump with "
        "etagwatch's addon, one client per profile, into a store.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sites", nargs="+", metavar="SITES",
                   help="URLs, files of URLs, or rank,domain CSV files")
    p.add_argument("--profiles", type=at_least(1), default=3, metavar="N",
                   help="fresh browser profiles, i.e. clients (default 3; an identifier needs 2+)")
    p.add_argument("--visits", type=at_least(1), default=3, metavar="V",
                   help="visits of every site by every profile: load, reload, new tab, ... "
                   "(default 3)")
    p.add_argument("--db", metavar="STORE", default=DEFAULT_DB,
                   help=f"store to record into and resume from (default: ./{DEFAULT_DB})")
    p.add_argument("--har-dir", metavar="DIR",
                   help="also write one HAR per profile (and per resumed run) into DIR")
    p.add_argument("--links", type=at_least(0), default=0, metavar="K",
                   help="same-site links followed on every visit (default 0)")
    p.add_argument("--jobs", type=at_least(1), metavar="J",
                   help="profiles at once (default: one per core, as many as free memory "
                   "holds at ~0.7 GB each, at most N)")
    p.add_argument("--top", type=at_least(1), metavar="N", help="only the first N sites")
    p.add_argument("--unpartitioned-cache", action="store_true",
                   help="turn Chromium's HTTP-cache partitioning by top-level site off")
    p.add_argument("--timeout", type=_seconds, default=30.0, metavar="SECONDS",
                   help="per page load (default 30); a page that takes longer fails its visit")
    p.add_argument("--settle", type=_seconds, default=1.0, metavar="SECONDS",
                   help="wait after each page's load event for late requests (default 1)")
    p.add_argument("--ready", default="", metavar="JS",
                   help="JavaScript expression awaited after load, e.g. 'window.done === true'")
    p.add_argument("--lab-route", action="store_true",
                   help="send *.test names to 127.0.0.1 and refuse every other destination "
                   "(crawling `etagwatch lab`; nothing leaves the machine)")
    p.add_argument("--upstream-ca", metavar="PEM",
                   help="also trust this CA for the sites' certificates (a private CA)")
    p.add_argument("--json", metavar="FILE|-",
                   help="also write analyze's JSON report of the store, with the crawl's "
                   "figures under 'crawl', to FILE ('-': stdout; the text goes to stderr)")
    p.add_argument("--chromium", metavar="PATH", default="",
                   help="the Chromium to run (default: chromium on PATH, /usr/bin/chromium)")
    p.set_defaults(run=run)


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """One crawl per store at a time (the lock goes with its process, even on SIGKILL)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CliError(f"{state_dir}: another crawl of this store is running") from None
        yield


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from analysis.crawl.browser import BrowserOptions
    from analysis.crawl.journal import Journal, JournalError, plan_for
    from analysis.crawl.runner import CrawlConfig, default_jobs, run_crawl, wait_for_orphans
    from analysis.crawl.sitelist import SiteListError, read_sites
    from analysis.crawl.summary import (
        analyse_store,
        crawl_json,
        crawl_lines,
        figures,
        headline_lines,
    )
    from analysis.crawl.visit import VisitOptions
    from analysis.store import StoreError

    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise CliError("etagwatch crawl needs Playwright's Python package: pip install "
                       "'etagwatch[crawl]' (it drives the system's Chromium; no browser is "
                       "downloaded)") from None
    from analysis.lab.browse import chromium_path
    from analysis.lab.net import LabError

    try:
        chromium = args.chromium or chromium_path()
    except LabError as exc:
        raise CliError(str(exc)) from None
    if not Path(chromium).is_file():
        raise CliError(f"--chromium {chromium}: no such file")
    try:
        sites = read_sites(args.sites, args.top)
    except SiteListError as exc:
        raise CliError(str(exc)) from None
    if not sites:
        raise CliError(f"{' '.join(args.sites)}: no sites to visit")
    upstream_ca = Path(args.upstream_ca) if args.upstream_ca else None
    if upstream_ca is not None and not upstream_ca.is_file():
        raise CliError(f"--upstream-ca {upstream_ca}: no such file")
    db = Path(args.db)
    state_dir = db.with_name(db.name + "-crawl")
    plan = plan_for(sites, args.profiles, args.visits, args.links, not args.unpartitioned_cache)
    try:
        journal = Journal(db)
    except (StoreError, OSError) as exc:
        raise CliError(str(exc)) from None
    with _locked(state_dir), journal:
        try:
            first = journal.adopt(plan)
        except JournalError as exc:
            raise CliError(str(exc)) from None
        if not first:
            wait_for_orphans(journal, state_dir / "profiles")
            cut = journal.interrupted()
            removed = journal.recover()
            counts = journal.counts()
            info(args, f"resuming {db}: {counts['done'] + counts['failed']} of "
                 f"{sum(counts.values())} visits already done"
                 + (f"; {cut} interrupted visits redone ({removed} exchanges removed)"
                    if cut else ""))
        jobs = args.jobs or default_jobs(args.profiles)
        config = CrawlConfig(
            plan=plan, db=db, state_dir=state_dir, jobs=min(jobs, args.profiles),
            browser=BrowserOptions(partitioned=plan.partitioned, executable=chromium),
            visit=VisitOptions(args.timeout, args.settle, args.ready, args.links),
            har_dir=Path(args.har_dir) if args.har_dir else None, lab_route=args.lab_route,
            upstream_ca=upstream_ca)
        counts = journal.counts()
        pages_before = sum(r["pages"] or 0 for r in journal.rows())
        info(args, f"crawling {len(sites)} sites x {args.profiles} profiles x {args.visits} "
             f"visits, {config.jobs} profiles at once, "
             f"{'partitioned' if plan.partitioned else 'unpartitioned'} cache")
        started = time.monotonic()
        with tqdm(total=sum(counts.values()), initial=counts["done"] + counts["failed"],
                  desc="visits", unit="visit", file=sys.stderr,
                  disable=not show_progress(args)) as bar:
            def progress(event) -> None:  # type: ignore[no-untyped-def]
                if event.visit is None:  # a profile stopped: always said
                    tqdm.write(f"etagwatch: warning: {event.error}", file=sys.stderr)
                    return
                bar.update()
                if event.error and args.verbose:
                    tqdm.write(f"etagwatch: warning: {event.profile} {event.visit.site} visit "
                               f"{event.visit.visit}: {event.error}", file=sys.stderr)
            try:
                run_crawl(config, progress)
            except KeyboardInterrupt:  # Ctrl-C, SIGTERM: say how to go on, then stop
                counts = journal.counts()
                info(args, f"{counts['done'] + counts['failed']} of {sum(counts.values())} "
                     "visits done; run the same command again to resume")
                raise
        result = figures(journal, time.monotonic() - started, pages_before)
    analysis = analyse_store(db)
    text_out = sys.stderr if args.json == "-" else sys.stdout  # as analyze does
    for line in [*crawl_lines(result, db), *headline_lines(analysis, db)]:
        print(line, file=text_out)
    if args.json:
        from analysis.report_json import write_json

        try:
            write_json(crawl_json(result, analysis, db), args.json)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise CliError(f"--json {args.json}: {exc.strerror}") from None
    return 1 if result.failed or result.pending else 0
