"""The closing summary of a crawl: what was visited, how fast, what failed, and the headline of
``etagwatch analyze`` over the store (the same lines, from analysis.report_text)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from analysis.crawl.journal import Journal
from analysis.report_evidence import plural

#: Failures listed by name at the end (the store's crawl_visits table has all of them).
SHOWN_FAILURES = 5


@dataclass(frozen=True)
class Figures:
    visits: int
    done: int
    failed: int
    pending: int
    pages: int
    seconds_per_site_profile: float  # median over (profile, site) of the visits' total time
    pages_per_minute: float  # pages of this run over its wall time
    failures: tuple[str, ...]


def figures(journal: Journal, wall_seconds: float, pages_before: int) -> Figures:
    rows = journal.rows()
    counts = journal.counts()
    per_pair: dict[tuple[str, int], float] = defaultdict(float)
    for r in rows:
        if r["started"] is not None and r["finished"] is not None:
            per_pair[(r["profile"], r["site_index"])] += r["finished"] - r["started"]
    pages = sum(r["pages"] or 0 for r in rows)
    failures = tuple(f"{r['profile']} {r['site']} visit {r['visit']}: {r['error']}"
                     for r in rows if r["state"] == "failed")
    return Figures(
        visits=len(rows), done=counts["done"], failed=counts["failed"],
        pending=counts["pending"] + counts["started"], pages=pages,
        seconds_per_site_profile=statistics.median(per_pair.values()) if per_pair else 0.0,
        pages_per_minute=60 * (pages - pages_before) / wall_seconds if wall_seconds > 0 else 0.0,
        failures=failures)


def crawl_lines(f: Figures, db: Path) -> list[str]:
    lines = [
        f"etagwatch crawl: {plural(f.done, 'visit')} done, {f.failed} failed"
        + (f", {f.pending} left (run the same command again to resume)" if f.pending else "")
        + f"; {plural(f.pages, 'page')} into {db}",
        f"speed: {f.seconds_per_site_profile:.1f} s per site per profile (median), "
        f"{f.pages_per_minute:.1f} pages per minute in this run",
    ]
    for failure in f.failures[:SHOWN_FAILURES]:
        lines.append(f"  failed: {failure}")
    if len(f.failures) > SHOWN_FAILURES:
        lines.append(f"  (+{len(f.failures) - SHOWN_FAILURES} more failures in the store's "
                     "crawl_visits table)")
    return lines


def analyse_store(db: Path):  # type: ignore[no-untyped-def]
    """What ``etagwatch analyze STORE`` finds (None for a store without exchanges): from
    PARALLEL_FROM exchanges on in worker processes of whole hosts, as analyze does by default,
    so a large crawl's store is never loaded whole into this process."""
    from analysis.detectors import INPUT_COLUMNS, run_all
    from analysis.detectors.settled import settle
    from analysis.engine.processes import plan, run_all_processes
    from analysis.store import load_exchanges, load_probe_outcomes

    outcomes = load_probe_outcomes(db)
    split = plan([db], None)
    if split is not None:
        counts, jobs = split
        return run_all_processes([db], jobs=jobs, columns=INPUT_COLUMNS, counts=counts,
                                 outcomes=None if outcomes.empty else outcomes)[0]
    exchanges = load_exchanges(db, INPUT_COLUMNS)
    return None if exchanges.empty else settle(run_all(exchanges), outcomes)


def headline_lines(analysis, db: Path) -> list[str]:  # type: ignore[no-untyped-def]
    """analyze's headline over the whole store."""
    from analysis.report_text import headline

    if analysis is None:
        return ["no exchanges were recorded"]
    return [*headline(analysis.summary),
            f"(etagwatch analyze {db} for every verdict and its evidence)"]


def crawl_json(f: Figures, analysis, db: Path) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """analyze's JSON report of the store (its keys unchanged) with the crawl's figures under
    ``crawl``."""
    from analysis.report_json import analysis_to_json

    report: dict[str, object] = analysis_to_json(analysis) if analysis is not None else {}
    report["crawl"] = {"db": str(db), **asdict(f), "failures": list(f.failures)}
    return report
