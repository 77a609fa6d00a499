"""The pandas engine on several cores: ``run_all`` per group of whole hosts, in worker
processes that take the groups one after another.

Why processes: pandas and the detectors hold the GIL, so threads would take turns. Why whole
hosts: as in the Dask engine, some evidence is host-wide (an ETag's information bits are
estimated against the other values of its host), so a group's verdicts equal those of one
process over everything. Hosts are counted on the store's host index (milliseconds) and
dealt largest first into groups of about GROUP_ROWS exchanges (``host_groups``): a worker's
memory is one group's, whatever the store's size, and the detectors cost less per exchange
on a smaller frame.

Each worker reads only its group's exchanges from the store(s) (``load_exchanges(hosts=...)``,
up to the last id counted: one state of a store being written; from a Parquet dataset, the
group's file that ``analysis.engine.shards`` cut it into first), runs ``run_all`` and
``settle``, sends back its result tables (a row per resource, finding and host, not per
exchange) with its counts, and takes the next group. This process merges the tables in
run_all's order (``results.ordered``: ties never cross hosts, and each part's tables keep
their own order) and adds up the summary (``analysis.engine.combine``); the JSON, CSV and
terminal report are then written from the merged analysis as the one-process path writes them.

Workers are plain ``python -m analysis.engine.processes`` children (as the writer process of
ingest), not multiprocessing's, whose spawn mode re-imports the caller's ``__main__``.
Requests go down a child's stdin and results come back on its stdout, as length-prefixed
pickles (the two ends are this package, same version, same interpreter).
"""

from __future__ import annotations

import contextlib
import heapq
import math
import os
import pickle
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
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
#: Exchanges per group of hosts: a worker's peak memory is one group's (about 0.7 GB at 250k
#: exchanges of bench/synthetic.py), and the detectors' work per exchange grows with the
#: frame (sorts, hash tables out of cache): 1M exchanges in groups of 250k cost 17.7 s of
#: detector CPU against 21.9 s in one frame (BENCHMARKS.md, "Analyze end to end").
GROUP_ROWS = 250_000
#: A group with less than 1/INDEX_BELOW of a store's exchanges is read through the host index
#: (and sorted by id), a larger one by a scan of the table (measured at 1M: a quarter 1.9 s by
#: scan, 2.6 s by index; an eighth 1.2 s either way).
INDEX_BELOW = 8


class WorkerError(Exception):
    """A worker could not analyse its hosts: one line for the user (a store error, a worker
    killed by the system)."""


def default_jobs() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def plan(stores: Sequence[str | Path], jobs: int | None
         ) -> tuple[list[HostCounts], int] | None:
    """(the stores' host counts, jobs) when ``stores`` are to be analysed in worker
    processes: ``jobs`` of 2 or more asked for, or None (the default: one per CPU) and
    PARALLEL_FROM exchanges or more; None for one process. ``stores`` may be Parquet
    datasets too. Raises StoreError / FileNotFoundError naming the store; an empty total is
    for the caller to refuse (counts of zero)."""
    n = jobs if jobs is not None else default_jobs()
    if n < 2:
        return None
    counts = [counts_of(db) for db in stores]
    total = sum(sum(c.sizes.values()) for c in counts)
    if jobs is None and total < PARALLEL_FROM:
        return None
    return counts, n


def counts_of(source: str | Path) -> HostCounts:
    """``HostCounts`` of a store, or of a Parquet dataset (``shards.dataset_host_counts``);
    a dataset's problems come as StoreError, like a store's."""
    from analysis.dataset import DatasetError, is_dataset
    from analysis.store import StoreError, host_counts

    if not is_dataset(source):
        return host_counts(source)
    from analysis.engine.shards import dataset_host_counts

    try:
        return dataset_host_counts(source)
    except DatasetError as exc:
        raise StoreError(str(exc)) from None


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
    #: per store: read through the host index (a small share of its exchanges), else a scan
    indexed: list[bool]
    #: per store: the last exchange id counted (``HostCounts.last_id``)
    last_ids: list[int]
    columns: list[str]
    ignore_params: tuple[str, ...]
    outcomes: pd.DataFrame | None = None
    #: also the overview counts and per-host outcomes (for --parquet)
    overview: bool = False
    #: exchanges in all
    rows: int = 0
    #: per store: for a Parquet dataset, the file of this group's exchanges
    #: (``shards.write_shards``; "" when it has none), None for a SQLite store
    shards: list[str | None] | None = None


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
    from analysis.engine.shards import read_shard
    from analysis.store import load_exchanges

    shards = request.shards or [None] * len(request.stores)
    frames = [load_exchanges(db, request.columns, hosts=request.hosts, unnamed=urls,
                             indexed=indexed, up_to=last) if shard is None
              else read_shard(shard, request.columns) if shard else None
              for db, urls, indexed, last, shard in zip(request.stores, request.unnamed,
                                                        request.indexed, request.last_ids,
                                                        shards, strict=True)]
    frames = [f for f in frames if f is not None]
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
    """A child process analysing requests one after another: each goes down its stdin and its
    Part comes back on its stdout, as length-prefixed pickles."""

    def __init__(self) -> None:
        from analysis import child_env

        env = child_env()
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self.proc = subprocess.Popen([sys.executable, "-m", "analysis.engine.processes"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._errors, env=env)

    def analyse(self, request: Request) -> Part:
        """The child's Part for ``request``, or WorkerError with its one-line reason."""
        try:
            _send(self.proc.stdin, request)
            status, payload = _receive(self.proc.stdout)
        except (OSError, EOFError):  # the child is gone: say why
            raise WorkerError(self._why_gone()) from None
        if status == "ok":
            return payload
        raise WorkerError(payload)

    def _why_gone(self) -> str:
        code = self.proc.wait()
        if code < 0:
            name = signal.Signals(-code).name
            return (f"a worker process was stopped by {name}"
                    f"{' (out of memory?)' if name == 'SIGKILL' else ''}")
        self._errors.seek(0)
        lines = [ln for ln in self._errors.read().decode(errors="replace").splitlines()
                 if ln.strip()]
        return lines[-1] if lines else f"a worker process exited {code}"

    def stop(self) -> None:
        """Closing its stdin ends an idle child; one still busy (Ctrl-C, another worker
        failed) is killed."""
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._errors.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()


def _send(pipe: Any, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    pipe.write(len(data).to_bytes(8, "little"))
    pipe.write(data)
    pipe.flush()


def _receive(pipe: Any) -> Any:
    head = pipe.read(8)
    if len(head) < 8:
        raise EOFError
    size = int.from_bytes(head, "little")
    data = pipe.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def run_all_processes(stores: Sequence[str | Path], *, jobs: int, columns: Iterable[str],
                      ignore_params: Iterable[str] = (), outcomes: pd.DataFrame | None = None,
                      overview: bool = False, progress: bool = False,
                      counts: Sequence[HostCounts] | None = None,
                      group_rows: int | None = None,
                      ) -> tuple[Analysis, dict[str, Any] | None, pd.DataFrame | None]:
    """``settle(run_all(...), outcomes)`` over every exchange of ``stores``, in ``jobs``
    worker processes taking groups of whole hosts of about ``group_rows`` exchanges (default
    GROUP_ROWS) one after another: (the analysis, then with ``overview`` the overview counts
    and per-host outcomes of the exchanges, as ``--parquet`` writes them, else None twice).
    ``counts``: the stores' ``host_counts`` when the caller has them. Raises WorkerError, or
    StoreError for a store that cannot be read. ``stores`` may be Parquet datasets too: each
    is cut once into a file per group (``analysis.engine.shards``) that its worker reads."""
    import queue

    ignore = tuple(ignore_params)
    columns = list(columns)
    counts = list(counts) if counts is not None else [counts_of(db) for db in stores]
    sizes: dict[str, int] = {}
    for c in counts:
        for host, n in c.sizes.items():
            sizes[host] = sizes.get(host, 0) + n
    total = sum(sizes.values())
    ngroups = max(jobs, math.ceil(total / (group_rows or GROUP_ROWS)))
    todo: queue.SimpleQueue[Request] = queue.SimpleQueue()
    groups = host_groups(sizes, ngroups)
    # the largest first, so a group of one large host does not start last and run alone
    groups.sort(key=lambda g: -sum(sizes[h] for h in g))
    with tempfile.TemporaryDirectory(prefix="etagwatch-shards-") as tmp:
        # Parquet datasets: cut once into a file per group (shards), then read by the workers
        cut = [_shards(db, groups, c, Path(tmp) / str(i), columns, progress)
               for i, (db, c) in enumerate(zip(stores, counts, strict=True))]
        for n, group in enumerate(groups):
            todo.put(Request(
                stores=[str(db) for db in stores], hosts=group,
                unnamed=[sorted(u for h in group for u in c.unnamed.get(h, ())) for c in counts],
                indexed=[sum(c.sizes.get(h, 0) for h in group) * INDEX_BELOW
                         < sum(c.sizes.values()) for c in counts],
                last_ids=[c.last_id for c in counts],
                columns=list(columns), ignore_params=ignore, outcomes=outcomes,
                overview=overview, rows=sum(sizes[h] for h in group),
                shards=[None if files is None else files[n] or "" for files in cut]))
        return _run_requests(todo, jobs, len(groups), total, progress, ignore)


def _shards(source: str | Path, groups: list[list[str]], counts: HostCounts, into: Path,
            columns: list[str], progress: bool) -> list[str | None] | None:
    """A dataset's group files (``shards.write_shards``), None for a SQLite store."""
    from analysis.dataset import DatasetError, is_dataset
    from analysis.store import StoreError

    if not is_dataset(source):
        return None
    from analysis.engine.shards import write_shards

    into.mkdir()
    try:
        return write_shards(source, groups, counts, into, columns, progress=progress)
    except DatasetError as exc:
        raise StoreError(str(exc)) from None


def _run_requests(todo: Any, jobs: int, ngroups: int, total: int, progress: bool,
                  ignore: tuple[str, ...]
                  ) -> tuple[Analysis, dict[str, Any] | None, pd.DataFrame | None]:
    """The requests of ``todo`` analysed by ``jobs`` workers, merged."""
    import queue
    import threading

    from tqdm import tqdm

    parts: list[Part] = []
    failed: list[BaseException] = []
    lock = threading.Lock()
    workers = [_Worker() for _ in range(min(jobs, ngroups))]

    def drain(worker: _Worker, bar: Any) -> None:
        while not failed:
            try:
                request = todo.get_nowait()
            except queue.Empty:
                return
            try:
                part = worker.analyse(request)
            except BaseException as exc:  # handed to the calling thread
                failed.append(exc)
                return
            with lock:
                parts.append(part)
                bar.update(request.rows)

    try:
        with tqdm(total=total, desc=f"analysing ({len(workers)} processes)", unit="exch",
                  unit_scale=True, file=sys.stderr, leave=False, disable=not progress) as bar:
            threads = [threading.Thread(target=drain, args=(w, bar), daemon=True)
                       for w in workers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        if failed:
            raise failed[0]
    except BaseException:  # Ctrl-C or a failed worker: the others are of no use any more
        failed.append(KeyboardInterrupt())
        for w in workers:
            w.kill()
        raise
    finally:
        for w in workers:
            w.stop()
    return merge(parts, ignore)


def columns_in_order(frames: list[pd.DataFrame]) -> list[str]:
    """Every column of ``frames``, each where the frames that have it put it: a column only
    some parts have (``value_backends`` only where a part found churn) goes after the column
    it follows there, as in the one frame of the whole (concat would append it at the end,
    and the JSON's keys would change order)."""
    order: list[str] = []
    for frame in frames:
        cols = list(frame.columns)
        for i, col in enumerate(cols):
            if col in order:
                continue
            before = next((c for c in reversed(cols[:i]) if c in order), None)
            order.insert(order.index(before) + 1 if before is not None else 0, col)
    return order


def merge(parts: list[Part], ignore: tuple[str, ...]
          ) -> tuple[Analysis, dict[str, Any] | None, pd.DataFrame | None]:
    """The parts as one analysis, in run_all's order (and their overview, when they have one)."""
    import pandas as pd

    from analysis.detectors import Analysis
    from analysis.engine.combine import combine_counts, combined_summary, spanned
    from analysis.engine.results import ordered

    def table(name: str) -> pd.DataFrame:
        frames = [getattr(p.analysis, name) for p in parts]
        nonempty = [f for f in frames if not f.empty] or frames[:1]
        whole = (pd.concat(nonempty, ignore_index=True)[columns_in_order(nonempty)]
                 if len(nonempty) > 1 else nonempty[0])
        return ordered(name, whole)  # run_all's order (ties never cross hosts)

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
    """The worker: Requests on stdin, ("ok", Part) or ("error", line) for each on stdout,
    until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    from analysis.store import StoreError

    while True:
        try:
            request = _receive(sys.stdin.buffer)
        except EOFError:
            return 0
        try:
            result: tuple[str, Any] = ("ok", analyse_part(request))
        except (StoreError, FileNotFoundError) as exc:
            result = ("error", str(exc))
        _send(sys.stdout.buffer, result)
        del result
        _give_back_memory()


def _give_back_memory() -> None:
    """Hand the freed heap of the last group back to the system before the next one: glibc
    keeps it otherwise, and the worker's resident memory would be its largest group's plus
    what fragmentation adds, group after group."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)


if __name__ == "__main__":
    # run as the module itself, so what is pickled names analysis.engine.processes, not __main__
    from analysis.engine.processes import main as _main

    sys.exit(_main())
