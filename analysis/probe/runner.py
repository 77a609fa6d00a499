"""One probe run: send every check's requests, store them, judge them with the detectors.

The exchanges go through the store like any other source, and the detectors see only this
run's rows (a --db store may hold other captures and earlier probes: mixing them would judge
one run by another's clients).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pandas as pd

from analysis.detectors import run_all
from analysis.exchange import Exchange
from analysis.probe.checks import CHECKS, CheckResult, fresh_clients
from analysis.probe.context import ProbeContext, ProbeOptions
from analysis.probe.errors import ProbeError
from analysis.store import Store, load_exchanges


@dataclass
class ProbeRun:
    url: str
    options: ProbeOptions
    checks: list[CheckResult]
    exchanges: list[Exchange]
    frame: pd.DataFrame  # this run's rows as stored (with ``id``)
    analysis: Any  # analysis.detectors.Analysis of this run's browser-like rows
    verdict: str | None  # the detectors' verdict on the probed resource

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.outcome == "fail"]

    @property
    def tracking(self) -> bool:
        """A check saw a tracking mechanism, or the detectors call the resource an identifier."""
        return any(c.tracking for c in self.checks) or self.verdict in fresh_clients.TRACKING

    @property
    def exit_status(self) -> int:
        """0 every test passed; 1 a test failed or tracking was found (usage errors are 2)."""
        return 1 if self.failed or self.tracking else 0


def check_url(url: str) -> str:
    """The URL as given, if it is one the probe can fetch."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ProbeError(f"{url}: not a valid URL ({exc})") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ProbeError(f"{url}: not an http:// or https:// URL")
    return url


def _max_id(store: Store) -> int:
    row = store.connection.execute("SELECT max(id) FROM exchanges").fetchone()
    return int(row[0] or 0)


def resource_verdict(analysis: Any, url: str) -> tuple[str | None, str | None]:
    """The detectors' verdict and one-line explanation for the probed URL."""
    resources = analysis.resources
    if resources is None or len(resources) == 0:
        return None, None
    table = resources.reset_index()
    column = "url" if "url" in table.columns else "resource"
    rows = table[table[column] == url]
    if rows.empty:
        return None, None
    row = rows.iloc[0]
    explanation = next(
        (str(row[c]) for c in ("explanation", "summary") if c in row and pd.notna(row[c])), None
    )
    return str(row["verdict"]), explanation


def _browser_like(seen: fresh_clients.FreshClients, results: list[CheckResult]) -> set[int]:
    """The exchanges a browser profile could have made: each fresh client's fetch and
    revalidations (and the forged-tag client's when the server reflected it). The other checks refetch unconditionally with
    other Accept-Encoding, Range or HEAD; a tracker hands out a new id on each, which would
    hide the identifier pattern (stable within a client). They are stored all the same, so
    ``etagwatch analyze --db`` judges every request; here the probe's checks judge them."""
    # A browser never sends a value it was not given, so the forged request joins them only
    # when the server reflected it: then it is the decisive evidence the detectors look for.
    forged = next((r for r in results if r.name == "forged-etag" and r.tracking), None)
    return set(seen.exchanges) | set(forged.exchanges if forged else ())


def run_probe(url: str, options: ProbeOptions, store: Store) -> ProbeRun:
    """Probe ``url``; every request sent is stored in ``store`` (also when a later one fails)."""
    check_url(url)
    if options.clients < 2:
        raise ProbeError("--clients must be at least 2: one client cannot tell an identifier")
    ctx = ProbeContext(url, options, store.key)
    before = _max_id(store)
    try:
        seen = fresh_clients.collect(ctx)
        results = [result for check in CHECKS for result in check(ctx)]
    finally:
        ctx.close()
        store.insert(ctx.exchanges)
    frame = load_exchanges(store)
    frame = frame[frame["id"] > before].reset_index(drop=True)
    analysis = run_all(frame[frame["entry_index"].isin(_browser_like(seen, results))])
    verdict, explanation = resource_verdict(analysis, url)
    results.insert(0, fresh_clients.judge(seen, verdict, explanation))
    return ProbeRun(url, options, results, ctx.exchanges, frame, analysis, verdict)
