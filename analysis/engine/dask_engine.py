"""The detectors on a Dask cluster: the same ``run_all``, run per partition of whole hosts.

Why hosts, not resources: some evidence is host-wide (the information bits of an ETag are
estimated from how it varies against the other values of its host), so a partition must hold
every exchange of each of its hosts for its verdicts to equal the single-process ones. The
exchanges are shuffled by host (a dataset is partitioned by resource, which is not enough),
each partition runs ``analysis.detectors.run_all``, and the parts are joined: resources,
findings and hosts concatenated and ordered as ``run_all`` orders them, the summary counted
over the whole input. A LocalCluster sized to the machine unless a scheduler address is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from analysis.detectors import RANK, SEVERITIES, Analysis, run_all, summary_of


def _part(frame: pd.DataFrame, ignore_params: tuple[str, ...], dtypes: dict[str, Any]
          ) -> Analysis | None:
    """run_all on one partition, in the store's dtypes (a shuffle may hand text columns back
    as Arrow strings and nullable columns as objects)."""
    if frame.empty:
        return None
    frame = frame.reset_index(drop=True).astype(dtypes)
    return run_all(frame, ignore_params=ignore_params)


def _ordered_resources(parts: list[pd.DataFrame]) -> pd.DataFrame:
    out = pd.concat(parts, ignore_index=True)
    key = out["verdict"].map(RANK)
    out = out.assign(_rank=key).sort_values(
        ["_rank", "confidence", "wasted_bytes", "url"], ascending=[True, False, False, True],
        kind="stable")
    return out.drop(columns="_rank").reset_index(drop=True)


def _ordered_findings(parts: list[pd.DataFrame]) -> pd.DataFrame:
    out = pd.concat(parts, ignore_index=True)
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    out = out.assign(_s=out["severity"].map(rank)).sort_values(
        ["_s", "rule", "host", "url", "source"], kind="stable")
    return out.drop(columns="_s").reset_index(drop=True)


def _ordered_hosts(parts: list[pd.DataFrame]) -> pd.DataFrame:
    out = pd.concat(parts, ignore_index=True)
    out = out.sort_values(["identifier", "likely-identifier", "churn", "error", "wasted_bytes",
                           "warning", "exchanges", "host"],
                          ascending=[False] * 7 + [True], kind="stable")
    return out.reset_index(drop=True)


def run_all_dask(exchanges: Any, *, ignore_params: Iterable[str] = (), client: Any = None,
                 partitions: int | None = None) -> Analysis:
    """``run_all`` on a Dask cluster. ``exchanges``: a pandas or Dask DataFrame of the store's
    columns; ``client``: a ``distributed.Client`` (default: the current one)."""
    import dask
    import dask.dataframe as dd
    from dask import delayed
    from distributed import get_client

    ignore = tuple(ignore_params)
    client = client or get_client()
    with dask.config.set({"dataframe.convert-string": False}):
        if isinstance(exchanges, pd.DataFrame):
            if "id" not in exchanges.columns:  # as run_all numbers rows: by input position
                exchanges = exchanges.assign(id=range(len(exchanges)))
            workers = max(1, len(client.scheduler_info()["workers"]))
            exchanges = dd.from_pandas(exchanges, npartitions=max(1, partitions or 2 * workers))
        # the input's dtypes, text as object (as the store loads it), for each partition
        dtypes = {k: (object if "str" in str(v) else v) for k, v in exchanges.dtypes.items()}
        nparts = partitions or exchanges.npartitions
        by_host = exchanges.assign(_host=exchanges["host"].fillna("").astype(object)).shuffle(
            "_host", npartitions=nparts, shuffle_method="tasks").drop(columns="_host")
        tasks = [delayed(_part)(d, ignore, dtypes) for d in by_host.to_delayed()]
    parts = [p for p in client.gather(client.compute(tasks)) if p is not None]
    stats = client.compute([exchanges.shape[0], exchanges["client"].nunique(),
                            exchanges["host"].nunique()])
    n, clients, hosts = client.gather(stats)
    responses = sum(int(p.summary["responses"]) for p in parts)
    if not parts:
        return run_all(exchanges.head(0), ignore_params=ignore)
    resources = _ordered_resources([p.resources for p in parts])
    findings = _ordered_findings([p.findings for p in parts])
    hosts_table = _ordered_hosts([p.hosts for p in parts])
    summary = summary_of({"exchanges": int(n), "responses": responses, "clients": int(clients),
                          "hosts": int(hosts)}, resources, findings, ignore)
    return Analysis(resources, findings, hosts_table, summary)


def _read_part(files: list[Any]) -> pd.DataFrame:
    import pyarrow.parquet as pq

    from analysis.dataset import _frame, arrow_schema

    return _frame([pq.read_table(p, schema=arrow_schema()) for p in files])


def dataset_frame(folder: Any) -> Any:
    """A Dask DataFrame over a Parquet dataset (analysis.dataset), one partition per dataset
    partition, each read on a worker as ``load_dataset`` reads it: bounded by one partition."""
    import dask.dataframe as dd
    from dask import delayed

    from analysis.dataset import _frame, dataset_files

    by_part: dict[str, list[Any]] = {}
    for path in dataset_files(folder):
        by_part.setdefault(path.parent.name, []).append(path)
    import dask

    parts = [delayed(_read_part)(files) for _, files in sorted(by_part.items())]
    meta = _frame([])
    with dask.config.set({"dataframe.convert-string": False}):
        if not parts:
            return dd.from_pandas(meta, npartitions=1)
        return dd.from_delayed(parts, meta=meta, verify_meta=False)


def start_client(scheduler: str | None = None, *, workers: int | None = None) -> Any:
    """A client of the cluster at ``scheduler``, or of a LocalCluster with one single-threaded
    worker process per CPU (at most 8; the detectors are pandas code, one core each)."""
    import os

    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    cluster = LocalCluster(n_workers=workers or min(cpus, 8), threads_per_worker=1,
                           processes=True, dashboard_address=":0")
    return Client(cluster)
