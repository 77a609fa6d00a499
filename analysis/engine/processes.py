"""The pandas engine on several cores: ``run_all`` per group of whole hosts, a process each.

Why processes: pandas and the detectors hold the GIL, so threads would take turns. Why whole
hosts: as in the Dask engine, some evidence is host-wide (an ETag's information bits are
estimated against the other values of its host), so a group's verdicts equal those of one
process over everything. Hosts are counted on the store's host index (milliseconds) and
dealt largest first to the group with the fewest exchanges so far (``host_groups``).

Each worker reads only its hosts from the store(s) (``load_exchanges(hosts=...)``), runs
``run_all`` and ``settle``, and sends back its result tables (a row per resource, finding and
host, not per exchange) with its counts; this process merges them in run_all's order
(``results.ordered``: ties never cross hosts, and each part's tables keep its own order) and
adds up the summary (``analysis.engine.combine``). The JSON, CSV and terminal report are then
written from the merged analysis as the one-process path writes them.

Workers are plain ``python -m analysis.engine.processes`` children (as the writer process of
ingest), not multiprocessing's, whose spawn mode re-imports the caller's ``__main__``. The
request goes down the child's stdin and the result comes back on its stdout, both pickled
(the two ends are this package, same version, same interpreter).
"""

from __future__ import annotations

import heapq
import os
import pickle
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported on use: the CLI reads this module's defaults for --help
    import pandas as pd

    from analysis.detectors import Analysis
    from analysis.store import HostCounts

#: Exchanges from which analyze splits a store across processes by default: below this, a
#: worker's start (an interpreter importing pandas and the detectors, about 0.6 s of CPU) costs
#: more than it saves (BENCHMARKS.md, "Analyze end to end").
PARALLEL_FROM = 150_000


class WorkerError(Exception):
    """A worker could not analyse its hosts: one line for the user (a store error, a worker
    killed by the system)."""


def default_jobs() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def host_groups(sizes: dict[str, int], n: int) -> list[list[str]]:
    """Hosts dealt into at most ``n`` groups of about equal exchanges: largest first, each to
    the group with the fewest so far (ties by name, so the groups are the same run to run);
    groups left empty are dropped."""
    order = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))
    heap = [(0, k) for k in range(max(1, n))]
    groups: list[list[str]] = [[] for _ in heap]
    for host, size in order:
        load, k = heapq.heappop(heap)
        groups[k].append(host)
        heapq.heappush(heap, (load + size, k))
    return [g for g in groups if g]


@dataclass
class Request:
    """What one worker analyses: its hosts in every store, and how."""

    stores: list[str]
    hosts: list[str]
    #: per store: URLs of exchanges without a host that belong to these hosts
    unnamed: list[list[str]]
    columns: list[str]
    ignore_params: tuple[str, ...]
    outcomes: pd.DataFrame | None = None
    #: also the overview counts and per-host outcomes (for --parquet)
    overview: bool = False


@dataclass
class Part:
    """What a worker hands back."""

    analysis: Analysis
    rows: int
    values: dict[str, set] = field(default_factory=dict)
    overview: dict[str, Any] | None = None
    outcomes: pd.DataFrame | None = None


def analyse_part(request: Request) -> Part:
    """run_all and settle over the request's hosts (in this process)."""
    import pandas as pd

    from analysis.detectors import run_all
    from analysis.detectors.settled import settle
    from analysis.engine.combine import distinct_values
    from analysis.engine.overview import host_outcomes, overview_counts
    from analysis.store import load_exchanges

    frames = [load_exchanges(db, request.columns, hosts=request.hosts, unnamed=urls)
              for db, urls in zip(request.stores, request.unnamed, strict=True)]
    frames = [f for f in frames if not f.empty] or frames[:1]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    values = distinct_values(frame)
    extra: dict[str, Any] = {}
    if request.overview:
        extra = {"overview": overview_counts(frame), "outcomes": host_outcomes(frame)}
    rows = len(frame)
    holder = [frame]
    del frame, frames
    analysis = settle(run_all(holder.pop(), ignore_params=request.ignore_params),
                      request.outcomes)
    return Part(analysis, rows, values, **extra)


class _Worker:
    """One child process analysing a request."""

    def __init__(self, request: Request) -> None:
        import analysis

        env = dict(os.environ)
        root = str(Path(analysis.__file__).resolve().parent.parent)  # importable as we are
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._request = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by result())
        self.proc = subprocess.Popen([sys.executable, "-m", "analysis.engine.processes"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._errors, env=env)

    def result(self) -> Part:
        """Wait for the child; its Part, or WorkerError with its one-line reason."""
        try:
            out, _ = self.proc.communicate(self._request)
            if self.proc.returncode == 0:
                status, payload = pickle.loads(out)
                if status == "ok":
                    return payload
                raise WorkerError(payload)
            if self.proc.returncode < 0:
                name = signal.Signals(-self.proc.returncode).name
                why = " (out of memory?)" if name == "SIGKILL" else ""
                raise WorkerError(f"a worker process was stopped by {name}{why}")
            self._errors.seek(0)
            lines = [ln for ln in self._errors.read().decode(errors="replace").splitlines()
                     if ln.strip()]
            raise WorkerError(lines[-1] if lines else
                              f"a worker process exited {self.proc.returncode}")
        finally:
            self._errors.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()


def run_all_processes(stores: Sequence[str | Path], *, jobs: int, columns: Iterable[str],
                      ignore_params: Iterable[str] = (), outcomes: pd.DataFrame | None = None,
                      overview: bool = False, progress: bool = False,
                      counts: Sequence[HostCounts] | None = None,
                      ) -> tuple[Analysis, dict[str, Any] | None, pd.DataFrame | None]:
    """``settle(run_all(...), outcomes)`` over every exchange of ``stores``, in up to ``jobs``
    worker processes of whole hosts: (the analysis, then with ``overview`` the overview counts
    and per-host outcomes of the exchanges, as ``--parquet`` writes them, else None twice).
    ``counts``: the stores' ``host_counts`` when the caller has them. Raises WorkerError, or
    StoreError for a store that cannot be read."""
    from tqdm import tqdm

    from analysis.store import host_counts

    ignore = tuple(ignore_params)
    counts = list(counts) if counts is not None else [host_counts(db) for db in stores]
    sizes: dict[str, int] = {}
    for c in counts:
        for host, n in c.sizes.items():
            sizes[host] = sizes.get(host, 0) + n
    requests = [Request(stores=[str(db) for db in stores], hosts=group,
                        unnamed=[sorted(u for h in group for u in c.unnamed.get(h, ()))
                                 for c in counts],
                        columns=list(columns), ignore_params=ignore, outcomes=outcomes,
                        overview=overview)
                for group in host_groups(sizes, jobs)]
    parts: list[Part] = []
    workers = [_Worker(r) for r in requests]
    pool = ThreadPoolExecutor(max_workers=len(workers) or 1)  # each waits on one child
    try:
        with tqdm(total=len(workers), desc="detectors", unit="part", file=sys.stderr,
                  leave=False, disable=not progress) as bar:
            for future in as_completed([pool.submit(w.result) for w in workers]):
                parts.append(future.result())
                bar.update()
    finally:  # Ctrl-C or a failed worker: the others are of no use any more
        for w in workers:
            w.stop()
        pool.shutdown(wait=True)
    return merge(parts, ignore)


def merge(parts: list[Part], ignore: tuple[str, ...]
          ) -> tuple[Analysis, dict[str, Any] | None, pd.DataFrame | None]:
    """The parts as one analysis, in run_all's order (and their overview, when they have one)."""
    import pandas as pd

    from analysis.detectors import Analysis
    from analysis.detectors.conformance import worst_first
    from analysis.engine.combine import combine_counts, combined_summary, spanned
    from analysis.engine.results import ordered

    def table(name: str) -> pd.DataFrame:
        frames = [getattr(p.analysis, name) for p in parts]
        nonempty = [f for f in frames if not f.empty] or frames[:1]
        whole = pd.concat(nonempty, ignore_index=True) if len(nonempty) > 1 else nonempty[0]
        if whole.empty:
            return whole
        # run_all's own orders; resources' ties (a verdict, confidence and waste) in resource
        # order, which is the URL's, as ``ordered`` breaks them
        return worst_first(whole) if name == "findings" else ordered(name, whole)

    values: dict[str, set] = {"client": set(), "source": set()}
    for p in parts:
        for key, vals in p.values.items():
            values[key] |= vals
    summary = combined_summary([p.analysis.summary for p in parts], sum(p.rows for p in parts),
                               len(values["client"]), ignore)
    analysis = Analysis(table("resources"), table("findings"), table("hosts"), summary)
    if not parts or parts[0].overview is None:
        return analysis, None, None
    views = [p.overview for p in parts if p.overview is not None]
    view = {**combine_counts(views), **spanned(views), "sources": len(values["source"])}
    outcome = pd.concat([p.outcomes for p in parts if p.outcomes is not None],
                        ignore_index=True)
    # a host without a name may be in several parts ("(no host)" rows): added up
    outcome = outcome.groupby("host", sort=True).sum().reset_index()
    return analysis, view, outcome


def main() -> int:
    """The worker: a pickled Request on stdin, ("ok", Part) or ("error", line) on stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    from analysis.store import StoreError

    request = pickle.load(sys.stdin.buffer)
    try:
        result: tuple[str, Any] = ("ok", analyse_part(request))
    except (StoreError, FileNotFoundError) as exc:
        result = ("error", str(exc))
    sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    # run as the module itself, so what is pickled names analysis.engine.processes, not __main__
    from analysis.engine.processes import main as _main

    sys.exit(_main())
