"""A Parquet dataset cut into one file per group of whole hosts, for the worker processes.

A dataset is partitioned by resource (a hash of the URL), but the detectors need whole hosts
(some evidence is host-wide), and a host's exchanges are spread over every partition. Reading
the whole dataset once per group would cost a pass per 250,000 exchanges (quadratic in the
dataset's size), so the dataset is read once, file by file, and each file's rows are appended
to their group's Arrow IPC file (lz4) in a temporary folder: memory is one dataset file at a
time, and each worker then reads its group's file alone. The Dask engine does the same with
its shuffle, across machines.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from analysis.store import HostCounts


def dataset_host_counts(folder: str | Path) -> HostCounts:
    """``HostCounts`` of a dataset, from its ``id``, ``host`` and ``url`` columns alone: an
    exchange without a host belongs to its URL's host, as in a store."""
    import pyarrow.compute as pc

    from analysis.dataset import dataset_files, read_columns
    from analysis.store import HostCounts
    from analysis.urlparts import host_in_url

    sizes: dict[str, int] = {}
    unnamed: dict[str, set[str]] = {}
    last = 0
    for path in dataset_files(folder):
        table = read_columns(path, ["id", "host", "url"])
        if not table.num_rows:
            continue
        last = max(last, int(pc.max(table["id"]).as_py()))
        named = pc.value_counts(table["host"].drop_null())
        for host, n in zip(named.field("values").to_pylist(), named.field("counts").to_pylist(),
                           strict=True):
            sizes[host] = sizes.get(host, 0) + n
        hostless = pc.fill_null(table.filter(pc.is_null(table["host"]))["url"], "")
        if len(hostless):
            counted = pc.value_counts(hostless)
            for url, n in zip(counted.field("values").to_pylist(),
                              counted.field("counts").to_pylist(), strict=True):
                host = host_in_url(url) or ""
                sizes[host] = sizes.get(host, 0) + n
                unnamed.setdefault(host, set()).add(url)
    return HostCounts(sizes, unnamed, last)


def write_shards(folder: str | Path, groups: Sequence[Iterable[str]], counts: HostCounts,
                 into: Path, columns: Iterable[str] | None = None, *, progress: bool = False
                 ) -> list[str | None]:
    """The dataset's exchanges counted in ``counts`` (ids up to its ``last_id``), one Arrow IPC
    file per group of ``groups`` under ``into``, with ``id`` and ``columns`` (default: all):
    each group's path, None for a group with no exchange in this dataset. ``progress``: a bar
    on stderr, file by file."""
    import sys

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.ipc as ipc
    from tqdm import tqdm

    from analysis.dataset import arrow_schema, dataset_files, read_columns
    from analysis.exchange import COLUMNS

    group_of = {h: g for g, hosts in enumerate(groups) for h in hosts}
    hosts = pa.array(list(group_of), pa.string())
    by_host = np.array(list(group_of.values()), dtype=np.int64)
    urls = [u for h, us in counts.unnamed.items() if h in group_of for u in us]
    by_url = np.array([group_of[h] for h, us in counts.unnamed.items() if h in group_of
                       for _ in us], dtype=np.int64)
    url_set = pa.array(urls, pa.string())
    wanted = set(COLUMNS if columns is None else columns) | {"host", "url"}
    names = ["id", *(c for c in COLUMNS if c in wanted)]
    schema = pa.schema([arrow_schema().field(n) for n in names])
    paths = [into / f"group-{g}.arrows" for g in range(len(groups))]
    writers: dict[int, Any] = {}
    options = ipc.IpcWriteOptions(compression="lz4")  # fast: the files live for one run
    files = dataset_files(folder)
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(tqdm(files, desc="cutting the dataset into host groups",
                                       unit="file", file=sys.stderr, leave=False,
                                       disable=not progress))
        for path in bar:
            table = read_columns(path, names)
            table = table.filter(pc.less_equal(table["id"], counts.last_id))
            if not table.num_rows:
                continue
            at = pc.index_in(table["host"], value_set=hosts).to_numpy(zero_copy_only=False)
            group = np.full(table.num_rows, -1, dtype=np.int64)
            named = ~np.isnan(at)
            group[named] = by_host[at[named].astype(np.int64)]
            if len(urls):
                loose = pc.is_null(table["host"]).to_numpy(zero_copy_only=False)
                u = pc.index_in(pc.fill_null(table["url"], ""), value_set=url_set
                                ).to_numpy(zero_copy_only=False)
                take = loose & ~np.isnan(u)
                group[take] = by_url[u[take].astype(np.int64)]
            order = np.argsort(group, kind="stable")  # one take, then a slice per group
            table, group = table.take(pa.array(order)), group[order]
            bounds = np.flatnonzero(np.diff(group)) + 1
            for lo, hi in zip([0, *bounds], [*bounds, len(group)], strict=True):
                g = int(group[lo])
                if g < 0:  # counted after last_id, or not counted: not this run's
                    continue
                if g not in writers:
                    writers[g] = stack.enter_context(ipc.new_file(paths[g], schema,
                                                                  options=options))
                writers[g].write_table(table.slice(lo, hi - lo))
    return [str(paths[g]) if g in writers else None for g in range(len(groups))]


def read_shard(path: str, columns: Sequence[str]) -> pd.DataFrame:
    """One group's exchanges as ``load_exchanges`` returns a store's (``id`` order, the same
    dtypes), ``id`` and the columns of ``columns``."""
    import pyarrow.ipc as ipc

    from analysis.dataset import _frame

    with ipc.open_file(path) as reader:
        return _frame([reader.read_all()], columns)
