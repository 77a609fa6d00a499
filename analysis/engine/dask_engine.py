"""The detectors on a Dask cluster: the same ``run_all``, run per partition of whole hosts.

Why hosts, not resources: some evidence is host-wide (the information bits of an ETag are
estimated from how it varies against the other values of its host), so a partition must hold
every exchange of each of its hosts for its verdicts to equal the single-process ones. The
exchanges are shuffled by host (a dataset is partitioned by resource, which is not enough);
the number of output partitions comes from the input's size and the workers' memory limit
(``output_partitions``), and hosts are packed into them by size (``host_partitions``), so a
partition fits a worker whatever the dataset's size and however few hosts carry it. Each
partition runs ``analysis.detectors.run_all`` and hands back its resources, findings and
hosts as Arrow tables, which the client writes as one part of a result dataset
(``analysis.engine.results``) as they arrive: the client holds one part at a time. The
summary is combined from the parts' counts (hosts are disjoint across parts) and the input's
distinct clients and sources. A host whose exchanges alone exceed a worker's share is the
limit of this layout: ``HostTooLarge``, one line naming it, before the shuffle starts.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from analysis.detectors import Analysis, run_all
from analysis.detectors.settled import settle
from analysis.engine import results as R
from analysis.engine.combine import combine_counts, combined_summary, distinct_values, spanned
from analysis.engine.overview import host_outcomes, overview_counts
from analysis.urlparts import host_in_url

#: Peak memory of run_all per exchange of its input, the input frame included (measured: 3.0 KB
#: for 500k exchanges of bench/scale.py's synthetic dataset loaded with load_dataset).
BYTES_PER_EXCHANGE = 3_000
#: The share of a worker's memory limit one partition's run_all may take (the rest: the
#: shuffle's buffers, the result tables, Dask itself). 0.4 was too much at 30M exchanges on
#: 2.5 GiB workers: 238k-row partitions took a worker past 95 % of its limit while the p2p
#: shuffle's buffers were full (BENCHMARKS.md, "Crawl scale"); 0.3 is not re-measured there.
WORKER_SHARE = 0.3
#: Dask's peer-to-peer shuffle: the pieces go to disk on the receiving worker, so a shuffle
#: of any size needs a bounded amount of worker memory (the task-based shuffle keeps its
#: pieces in memory and depends on spilling).
SHUFFLE = "p2p"
#: The share of a worker's memory limit the p2p shuffle may hold in its send buffer. Dask's
#: default is 1 GiB whatever the limit: on 2.5 GiB workers the buffer filled as the input
#: grew, and worker peaks rose from 1.10 GB at 1M exchanges to 2.35 GB at 30M, at the
#: shuffle's end, with partitions of the same size (BENCHMARKS.md, "Crawl scale").
SHUFFLE_BUFFER_SHARE = 0.1


def worker_config(memory: int) -> dict[str, Any]:
    """Dask settings for workers of ``memory`` bytes each: set them where the workers start
    (a LocalCluster takes the starting process's settings; on a cluster, the workers' own)."""
    return {"distributed.p2p.comm.buffer": max(16 * 2**20, int(memory * SHUFFLE_BUFFER_SHARE))}


class HostTooLarge(Exception):
    """One host has more exchanges than one worker can analyse (the layout's limit)."""


def worker_memory(client: Any) -> int:
    """The smallest memory limit of the cluster's workers (bytes); the machine's memory
    shared out when the workers have no limit."""
    workers = client.scheduler_info()["workers"].values()
    limits = [int(w.get("memory_limit") or 0) for w in workers]
    if limits and min(limits) > 0:
        return min(limits)
    import psutil

    return psutil.virtual_memory().total // max(1, len(limits))


def rows_per_partition(memory: int) -> int:
    """Exchanges one partition may hold on a worker with ``memory`` bytes."""
    return max(1_000, int(memory * WORKER_SHARE / BYTES_PER_EXCHANGE))


def output_partitions(rows: int, memory: int, workers: int) -> int:
    """Partitions of the shuffle by host: enough that each fits a worker's share, with a
    quarter again as many (packing whole hosts leaves partitions uneven by up to a host), at
    least one per worker."""
    return max(workers, math.ceil(1.25 * rows / rows_per_partition(memory)))


#: Hosts with at least this share of a partition's rows are placed by size; the many smaller
#: ones by a hash of the name, which spreads them evenly when they are many.
PLACED_SHARE = 1 / 16


def host_partitions(sizes: pd.Series, nparts: int) -> tuple[dict[str, int], int]:
    """(partition of each large host, partitions) for exchanges counted per host in ``sizes``.

    Hashing hosts into partitions is even only when hosts are many and small: with few large
    hosts (500 hosts of 60k exchanges at 30M, bench/scale.py) some partitions got three times
    the average and took 2.5 GiB workers past their limit. Large hosts are placed largest first
    in the partition with the fewest rows so far, counting the share the hashed small hosts are
    expected to bring; the map stays small (at most 1/PLACED_SHARE hosts per partition)
    whatever the number of hosts."""
    import heapq

    sizes = sizes[sizes > 0]
    threshold = max(1, int(sizes.sum() / max(1, nparts) * PLACED_SHARE))
    large = sizes[sizes >= threshold]
    large = large.iloc[np.lexsort((large.index.to_numpy(dtype=str), -large.to_numpy()))]
    base = float(sizes[sizes < threshold].sum()) / max(1, nparts)
    heap = [(base, k) for k in range(nparts)]
    placed: dict[str, int] = {}
    for host, n in large.items():
        load, k = heapq.heappop(heap)
        placed[str(host)] = k
        heapq.heappush(heap, (load + int(n), k))
    return placed, nparts


def assign_partitions(frame: pd.DataFrame, placed: dict[str, int], nparts: int) -> pd.Series:
    """The output partition of each exchange: its host's placement, else a stable hash of the
    host's name. An exchange without a host goes with the host of its URL, as the detectors
    name it (``urlparts.host_in_url``; the empty name where there is none)."""
    host = frame["host"].astype(object)
    missing = host.isna().to_numpy()
    if missing.any():
        urls = frame["url"] if "url" in frame.columns else pd.Series(None, index=frame.index)
        host = host.copy()
        host[missing] = [host_in_url(u) or "" for u in urls[missing]]
    hashed = (pd.util.hash_pandas_object(host, index=False).to_numpy() % np.uint64(nparts))
    known = host.map(placed)
    out = np.where(known.notna().to_numpy(), known.fillna(0).to_numpy(dtype=np.int64),
                   hashed.astype(np.int64))
    return pd.Series(out, index=frame.index, dtype=np.int64, name="_part")


def _part(frame: pd.DataFrame, ignore_params: tuple[str, ...], dtypes: dict[str, Any],
          outcomes: pd.DataFrame | None = None) -> dict[str, Any] | None:
    """run_all on one partition of whole hosts, in the store's dtypes (a shuffle may hand
    text columns back as Arrow strings and nullable columns as objects); its tables as
    Arrow, sorted as run_all sorts, and its counts."""
    if frame.empty:
        return None
    # in the input's order, as the pandas engine sees it (run_all breaks ties by position)
    frame = frame.sort_values("id", kind="stable").reset_index(drop=True).astype(dtypes)
    # probe outcomes apply per resource, and a partition holds whole hosts: as the pandas
    # engine settles them after run_all, so does each partition
    analysis = settle(run_all(frame, ignore_params=ignore_params), outcomes)
    tables = {name: R.to_arrow(R.ordered(name, getattr(analysis, name)))
              for name in ("resources", "findings", "hosts")}
    tables["outcomes"] = R.to_arrow(host_outcomes(frame))
    return {"tables": tables, "summary": analysis.summary, "overview": overview_counts(frame)}


def _refuse_too_large(sizes: pd.Series, limit: int) -> None:
    """HostTooLarge for the largest of ``sizes`` (exchanges per host, largest first) above
    ``limit``."""
    if len(sizes) and sizes.iloc[0] > limit:
        raise HostTooLarge(f"host {sizes.index[0]!r} has {sizes.iloc[0]:,} exchanges, more than "
                           f"one worker can analyse ({limit:,} at its memory limit): give the "
                           "workers more memory (--memory-limit on dask worker), or analyse "
                           "that host alone with --engine pandas on a larger machine")


def input_rows(exchanges: Any) -> int:
    """Exchanges in the input without reading it: a pandas frame's length, a dataset's
    Parquet footers."""
    if isinstance(exchanges, pd.DataFrame):
        return len(exchanges)
    return int(getattr(exchanges, "_etagwatch_rows", 0)) or int(exchanges.shape[0].compute())


def host_sizes(exchanges: Any) -> pd.Series:
    """Exchanges per host (missing: the empty name), largest first. A dataset's are counted
    from its host column alone, read row group by row group on the workers."""
    units = getattr(exchanges, "_etagwatch_units", None)
    if units is not None:
        import dask
        from dask import delayed

        counts = dask.compute(*[delayed(_host_counts)(chunk) for chunk in units])
        total = pd.concat(counts).groupby(level=0).sum() if counts else pd.Series(dtype=int)
    else:
        total = exchanges["host"].fillna("").astype(object).value_counts()
        total = total.compute() if hasattr(total, "compute") else total
    return total.sort_values(ascending=False)


def _host_counts(units: list[tuple[Any, list[int]]]) -> pd.Series:
    from analysis.dataset import read_row_groups

    hosts = pd.concat([read_row_groups(path, groups, columns=["host"])["host"].to_pandas()
                       for path, groups in units])
    return hosts.fillna("").astype(object).value_counts()


@contextlib.contextmanager
def _progress_bar(futures: list[Any], enabled: bool):
    """Dask's own text progress bar (distributed.progress) on stderr while the parts run."""
    if not enabled:
        yield
        return
    import threading

    from distributed import progress

    def draw() -> None:
        with contextlib.redirect_stdout(sys.stderr):
            progress(futures, notebook=False, multi=False)

    thread = threading.Thread(target=draw, daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join(timeout=5)
        print(file=sys.stderr)


def analyse_to_results(exchanges: Any, target: str, *, ignore_params: Iterable[str] = (),
                       client: Any = None, partitions: int | None = None,
                       progress: bool = False, sources: Iterable[str] = (),
                       host_limit: int | None = None,
                       outcomes: pd.DataFrame | None = None) -> R.Manifest:
    """``run_all`` on a Dask cluster, the results written as a result dataset at ``target``
    (a folder or fsspec URL). ``exchanges``: a pandas or Dask DataFrame of the store's
    columns; ``client``: a ``distributed.Client`` (default: the current one); ``partitions``:
    the shuffle's output partitions (default: from the input's size and worker memory);
    ``sources``: what the manifest names as the analysed exchanges (for the report);
    ``host_limit``: the most exchanges one host may have (default: what a worker's share of
    memory holds, ``rows_per_partition``); ``outcomes``: a store's probe outcomes, settled in
    each partition (analysis.detectors.settled)."""
    import dask
    import dask.dataframe as dd
    from dask import delayed
    from distributed import as_completed, get_client

    ignore = tuple(ignore_params)
    client = client or get_client()
    writer = R.Writer(target)
    workers = max(1, len(client.scheduler_info()["workers"]))
    memory = worker_memory(client)
    limit = host_limit or rows_per_partition(memory)
    rows = input_rows(exchanges)
    nparts = partitions or output_partitions(rows, memory, workers)
    with dask.config.set({"dataframe.convert-string": False}):
        if isinstance(exchanges, pd.DataFrame):
            if "id" not in exchanges.columns:  # as run_all numbers rows: by input position
                exchanges = exchanges.assign(id=range(len(exchanges)))
            # scattered to the workers in pieces (not embedded in the task graph)
            pieces = max(1, math.ceil(rows / limit), 2 * workers)
            step = math.ceil(max(1, rows) / pieces)
            futures = client.scatter([exchanges.iloc[i:i + step]
                                      for i in range(0, max(1, rows), step)])
            exchanges = dd.from_delayed(futures, meta=exchanges.head(0), verify_meta=False)
        # the input's dtypes, text as object (as the store loads it), for each partition
        dtypes = {k: (object if "str" in str(v) else v) for k, v in exchanges.dtypes.items()}
        sizes = host_sizes(exchanges)
        _refuse_too_large(sizes, limit)  # before the shuffle, not after it
        placed, nparts = host_partitions(sizes, nparts)
        # every exchange to its host's partition: set_index on the partition number with one
        # division per partition (a hash shuffle would hash the numbers again)
        parts = exchanges.map_partitions(assign_partitions, placed, nparts,
                                         meta=("_part", "int64"))
        by_host = exchanges.assign(_part=parts).set_index(
            "_part", divisions=[*range(nparts), nparts - 1], shuffle_method=SHUFFLE)
        tasks = [delayed(_part)(d, ignore, dtypes, outcomes) for d in by_host.to_delayed()]
        distinct = [delayed(distinct_values)(d) for d in exchanges.to_delayed()]
    futures = client.compute(tasks)
    seen = client.compute(distinct)
    summaries, overviews = [], []
    with _progress_bar(futures, progress):
        for future in as_completed(futures):
            part = future.result()
            future.release()
            if part is None:
                continue
            writer.add(part["tables"])
            summaries.append(part["summary"])
            overviews.append(part["overview"])
    values: dict[str, set] = {"client": set(), "source": set()}
    for found in client.gather(seen):
        for key, vals in found.items():
            values[key] |= vals
    summary = combined_summary(summaries, rows, len(values["client"]), ignore)
    overview = {**combine_counts(overviews), **spanned(overviews), "sources": len(values["source"])}
    manifest = R.Manifest(summary=summary, overview=overview, exchanges=list(sources),
                          ignore_params=list(ignore))
    writer.commit(manifest)
    return manifest


def run_all_dask(exchanges: Any, *, ignore_params: Iterable[str] = (), client: Any = None,
                 partitions: int | None = None, outcomes: pd.DataFrame | None = None
                 ) -> Analysis:
    """``run_all`` on a Dask cluster, returned in memory (through a temporary result
    dataset, the path analyze takes): for inputs whose results fit in memory."""
    with tempfile.TemporaryDirectory(prefix="etagwatch-results-") as tmp:
        target = os.path.join(tmp, "results")
        manifest = analyse_to_results(exchanges, target, ignore_params=ignore_params,
                                      client=client, partitions=partitions,
                                      outcomes=outcomes)
        tables = {name: R.read_table(target, name) for name in ("resources", "findings", "hosts")}
    return Analysis(tables["resources"], tables["findings"], tables["hosts"], manifest.summary)


#: Rows of one input partition when reading a dataset: a dataset partition grows with the
#: dataset (their number is fixed), so the workers read row groups packed up to this many rows
#: (the shuffle by host follows, so how the input is cut does not matter). At 30M exchanges a
#: dataset partition held 470k rows, and reading whole ones made 2.5 GiB workers exceed their
#: limit before the shuffle was done.
INPUT_ROWS = 100_000


def _read_units(units: list[tuple[Any, list[int]]]) -> pd.DataFrame:
    from analysis.dataset import _frame, read_row_groups

    return _frame([read_row_groups(path, groups) for path, groups in units])


def _packed(units: list[tuple[Any, int, int]], limit: int) -> list[list[tuple[Any, list[int]]]]:
    """Row groups packed in order into chunks of at most ``limit`` rows (a larger row group is
    a chunk of its own), as (file, [row groups]) per file."""
    chunks: list[list[tuple[Any, list[int]]]] = []
    rows = limit
    for path, group, n in units:
        if rows + n > limit:
            chunks.append([])
            rows = 0
        chunk = chunks[-1]
        if chunk and chunk[-1][0] == path:
            chunk[-1][1].append(group)
        else:
            chunk.append((path, [group]))
        rows += n
    return chunks


def dataset_frame(folder: Any, *, chunk_rows: int = INPUT_ROWS) -> Any:
    """A Dask DataFrame over a Parquet dataset (analysis.dataset): its row groups packed into
    partitions of at most ``chunk_rows`` rows, each read on a worker as ``load_dataset`` reads
    (bounded whatever the dataset's size). Its row count (from the Parquet footers) rides
    along for ``input_rows``."""
    import dask
    import dask.dataframe as dd
    from dask import delayed

    from analysis.dataset import _frame, row_groups

    units = row_groups(folder)
    parts = [delayed(_read_units)(chunk) for chunk in _packed(units, chunk_rows)]
    meta = _frame([])
    with dask.config.set({"dataframe.convert-string": False}):
        frame = (dd.from_pandas(meta, npartitions=1) if not parts
                 else dd.from_delayed(parts, meta=meta, verify_meta=False))
    frame._etagwatch_rows = sum(n for _, _, n in units)
    frame._etagwatch_units = _packed(units, chunk_rows)
    return frame


def start_client(scheduler: str | None = None, *, workers: int | None = None,
                 memory_limit: str | int | None = None) -> Any:
    """A client of the cluster at ``scheduler``, or of a LocalCluster with one single-threaded
    worker process per CPU (at most 8; the detectors are pandas code, one core each), each
    limited to its share of the machine's memory (Dask's default)."""
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    import dask
    from dask.utils import parse_bytes
    from distributed.system import MEMORY_LIMIT

    n = workers or min(cpus, 8)
    memory = (MEMORY_LIMIT // n if memory_limit in (None, "auto") else
              parse_bytes(memory_limit) if isinstance(memory_limit, str) else int(memory_limit))
    with dask.config.set(worker_config(memory)):  # the workers start with these settings
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":0", memory_limit=memory)
    return Client(cluster)
