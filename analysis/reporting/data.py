"""What a report is about: the exchanges of the inputs and the detectors' analysis of them.

Inputs are SQLite stores (read as they are) or HAR / flow files and folders (ingested into a
store first: the ``db`` given, else a temporary one that is deleted afterwards). Every section
module takes one ``ReportData`` and never reads files itself.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.exchange import COLUMNS
from analysis.inputs import load_input, load_outcomes, split_inputs

#: Columns every detector frame has, even when a capture is empty (analyze's JSON contract).
RESOURCE_COLUMNS = ("url", "host", "verdict", "confidence", "evidence")
FINDING_COLUMNS = ("rule", "severity", "host", "url", "evidence", "rfc", "source")


class InputError(Exception):
    """An input cannot be read at all (missing path, not a store); one line for the user."""


@dataclass
class ReportData:
    """Everything the report shows, computed once per run."""

    exchanges: pd.DataFrame
    resources: pd.DataFrame
    findings: pd.DataFrame
    hosts: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    ignore_params: tuple[str, ...] = ()
    skipped: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["file", "entry_index", "reason"])
    )
    errors: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["file", "message"]))
    #: Read from a result dataset (``load_results_data``): the capture's counts, exchanges per
    #: host and outcome, and how many exchanges the detail sections got; ``exchanges`` then
    #: holds only the exchanges of the resources those sections show.
    overview: dict[str, Any] | None = None
    outcomes: pd.DataFrame | None = None
    detail: str | None = None

    @property
    def empty(self) -> bool:
        if self.overview is not None:
            return not self.summary.get("exchanges")
        return self.exchanges.empty


#: Skipped entries read back from one store (the rest are counted, not listed).
STORE_SKIPS_SHOWN = 10_000


def _store_problems(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The store's own record of entries skipped (not the no-HTTP ones: data: URLs and the
    like are no problem) and files that could not be read."""
    from analysis.dataset import is_dataset
    from analysis.store import open_for_reading

    if is_dataset(path):  # a dataset keeps rows only (its files were complete sources)
        return [], []
    conn = open_for_reading(path)
    try:
        skipped = [
            {"file": f, "entry_index": i, "reason": r}
            for f, i, r in conn.execute(
                "SELECT file, entry_index, reason FROM skipped WHERE reason NOT LIKE "
                "'%no HTTP exchange' AND reason NOT LIKE '%not an HTTP exchange' ORDER BY id "
                "LIMIT ?", (STORE_SKIPS_SHOWN,))
        ]
        errors = [{"file": f, "message": m} for f, m in conn.execute(
            "SELECT path, error FROM sources WHERE error IS NOT NULL ORDER BY id")]
    finally:
        conn.close()
    return skipped, errors


def empty_frame(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


def analyse(exchanges: pd.DataFrame, *, ignore_params: Sequence[str] = (),
            outcomes: pd.DataFrame | None = None) -> ReportData:
    """Run the detectors (engineer C's ``run_all``) over ``exchanges``, then settle their
    verdicts with the stores' probe ``outcomes`` as `analyze` does.

    An empty capture skips them: the report then says there is nothing to report.
    """
    if exchanges.empty:
        return ReportData(
            exchanges=exchanges,
            resources=empty_frame(RESOURCE_COLUMNS),
            findings=empty_frame(FINDING_COLUMNS),
            hosts=empty_frame(("host",)),
            ignore_params=tuple(ignore_params),
        )
    from analysis.detectors import run_all
    from analysis.detectors.settled import settle

    result = settle(run_all(exchanges, ignore_params=tuple(ignore_params)), outcomes)
    return ReportData(
        exchanges=exchanges,
        resources=result.resources,
        findings=result.findings,
        hosts=result.hosts,
        summary=dict(result.summary),
        ignore_params=tuple(ignore_params),
    )


def load_report_data(
    inputs: Sequence[str | Path],
    *,
    db: str | Path | None = None,
    client: str | None = None,
    ignore_params: Sequence[str] = (),
    jobs: int | None = None,
) -> ReportData:
    """Read stores, ingest captures, analyse.

    HAR / flow inputs go into ``db`` when given (kept, like ``etagwatch ingest --db``), else
    into a temporary store removed before returning. Entries the readers skip are reported in
    ``skipped``; files they cannot read in ``errors``: neither stops the report.

    Stores are analysed as `analyze` does: in ``jobs`` worker processes of whole hosts when
    2 or more are asked for, or by default (None: one per CPU) from PARALLEL_FROM exchanges
    on (``_analysed_in_processes``: memory follows a group of hosts, not the capture); else
    loaded whole and analysed here.
    """
    from analysis.engine.processes import plan
    from analysis.engine.results import is_results
    from analysis.store import Store, StoreError, load_exchanges

    if len(inputs) == 1 and is_results(str(inputs[0])):
        return load_results_data(str(inputs[0]))
    try:
        stores, captures = split_inputs(inputs)
        split = plan(stores, jobs) if stores and not captures else None
    except (FileNotFoundError, StoreError) as exc:
        raise InputError(str(exc)) from None
    if split is not None and any(sum(c.sizes.values()) for c in split[0]):
        data = _analysed_in_processes(stores, *split, ignore_params=ignore_params)
        data.inputs = tuple(str(p) for p in inputs)
        return data

    frames = [load_input(p) for p in stores]
    outcomes = [o for o in map(load_outcomes, stores) if o is not None and not o.empty]
    skipped, errors = _problems(stores)
    if captures:
        from analysis.ingest import ingest_paths

        with tempfile.TemporaryDirectory(prefix="etagwatch-report-") as tmp:
            store = Store(Path(db) if db else Path(tmp) / "report.sqlite")
            try:
                report = ingest_paths(captures, store, client=client)
                frames.append(load_exchanges(store.path))  # committed: read by connectorx
            finally:
                store.close()
        skipped = [
            {"file": str(s.file), "entry_index": s.entry_index, "reason": s.reason}
            for s in report.skipped
        ]
        errors = [{"file": str(e.file), "message": e.message} for e in report.errors]

    frames = [f for f in frames if not f.empty]
    exchanges = (
        pd.concat(frames, ignore_index=True) if frames else empty_frame((*COLUMNS, "id"))
    )
    data = analyse(exchanges, ignore_params=ignore_params,
                   outcomes=pd.concat(outcomes, ignore_index=True) if outcomes else None)
    data.inputs = tuple(str(p) for p in inputs)
    data.skipped = pd.DataFrame(skipped, columns=["file", "entry_index", "reason"])
    data.errors = pd.DataFrame(errors, columns=["file", "message"])
    return data


def _problems(stores: Sequence[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What ingesting into the stores skipped or could not read, whenever that was."""
    skipped: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for path in stores:
        more_skipped, more_errors = _store_problems(path)
        skipped += more_skipped
        errors += more_errors
    return skipped, errors


def _from_results(resources: pd.DataFrame, findings: pd.DataFrame, hosts: pd.DataFrame, *,
                  summary: dict[str, Any], overview: dict[str, Any],
                  outcomes: pd.DataFrame | None, sources: Sequence[str],
                  ignore_params: Sequence[str]) -> ReportData:
    """A report's data from an analysis' result tables (a result dataset's, or the worker
    processes'), with of the exchanges only those of the resources the detail sections show,
    read from ``sources`` (the stores or datasets analysed) by partition or host."""
    resources = resources if not resources.empty else empty_frame(RESOURCE_COLUMNS)
    shown = resources[resources["verdict"].isin(DETAIL_VERDICTS)] if not resources.empty \
        else resources
    keys = shown["url"] if not shown.empty else pd.Series(dtype=object)
    exchanges, loaded, complete = detail_exchanges(
        sources, list(keys), ignore_params,
        hosts=list(shown["host"]) if "host" in shown.columns else None)
    return ReportData(
        exchanges=exchanges, resources=resources,
        findings=findings if not findings.empty else empty_frame(FINDING_COLUMNS),
        hosts=hosts if not hosts.empty else empty_frame(("host",)),
        summary=dict(summary), ignore_params=tuple(ignore_params), overview=dict(overview),
        outcomes=outcomes,
        detail=None if complete else (
            f"{loaded:,} exchanges of the first identifier and churn resources (of "
            f"{len(keys):,} such resources): the detail sections show those"))


def _analysed_in_processes(stores: Sequence[Path], counts: Sequence[Any], jobs: int, *,
                           ignore_params: Sequence[str]) -> ReportData:
    """A report's data as `analyze` gets it from worker processes: the result tables, the
    capture's counts and per-host outcomes from the workers, and of the exchanges only those
    of the resources the detail sections show, read by host (``detail_exchanges``), as from
    a result dataset; never the whole capture in this process."""
    from analysis.detectors import INPUT_COLUMNS
    from analysis.engine.processes import WorkerError, run_all_processes

    found = [o for o in map(load_outcomes, stores) if o is not None and not o.empty]
    try:
        analysis, overview, outcomes = run_all_processes(
            stores, jobs=jobs, columns=[*INPUT_COLUMNS, "source_kind"], counts=counts,
            ignore_params=ignore_params, overview=True,
            outcomes=pd.concat(found, ignore_index=True) if found else None)
    except WorkerError as exc:
        raise InputError(str(exc)) from None
    data = _from_results(analysis.resources, analysis.findings, analysis.hosts,
                         summary=analysis.summary, overview=overview or {}, outcomes=outcomes,
                         sources=[str(p) for p in stores], ignore_params=ignore_params)
    skipped, errors = _problems(stores)
    data.skipped = pd.DataFrame(skipped, columns=["file", "entry_index", "reason"])
    data.errors = pd.DataFrame(errors, columns=["file", "message"])
    return data


#: Verdicts whose sections show exchanges (per-client stories, first-party sites, timelines).
DETAIL_VERDICTS = ("identifier", "likely-identifier", "churn")
#: At most this many exchanges are loaded for them from a large capture (resources worst
#: first; the report says when some were left out).
DETAIL_ROWS = 1_000_000


def load_results_data(target: str) -> ReportData:
    """A report's data from a result dataset (``analysis.engine.results``, written by
    ``etagwatch analyze --parquet DIR``): resources, findings, hosts and the capture's counts
    as the analysis wrote them; of the exchanges only those of the resources the detail
    sections show (identifiers, churn), read partition by partition from the dataset the
    analysis read, never the whole capture."""
    from analysis.engine import results

    try:
        manifest = results.read_manifest(target)
    except results.ResultsError as exc:
        raise InputError(str(exc)) from None
    tables = {name: results.read_table(target, name) for name in results.TABLES}
    data = _from_results(tables["resources"], tables["findings"], tables["hosts"],
                         summary=manifest.summary, overview=manifest.overview,
                         outcomes=tables["outcomes"], sources=manifest.exchanges,
                         ignore_params=manifest.ignore_params)
    data.inputs = (str(target),)
    return data


def _chunks(source: str, keys: Sequence[str], hosts: Sequence[str] | None = None
            ) -> Iterator[Callable[[], pd.DataFrame]]:
    """Readers of the parts of ``source`` that can hold the exchanges of ``keys``: the
    dataset partitions they hash to (worst resource's first); of a store, the exchanges of
    ``hosts`` (the resources' hosts) in batches of whole hosts of about GROUP_ROWS, as the
    worker processes read them; without ``hosts``, the whole store."""
    from analysis.dataset import Manifest as DatasetManifest
    from analysis.dataset import _frame, dataset_files, is_dataset, partition_of, read_arrow

    if not is_dataset(source):
        if hosts is None:
            yield lambda: load_input(source)
        else:
            yield from _store_chunks(source, hosts)
        return
    by_part: dict[int, list[Any]] = {}
    for path in dataset_files(source):
        number = int(str(path).rsplit("/", 2)[-2].split("=", 1)[1])
        by_part.setdefault(number, []).append(path)
    partitions = _dataset_partitions(source, DatasetManifest)
    for number in dict.fromkeys(partition_of(k, partitions) for k in keys):
        if number in by_part:
            yield lambda n=number: _frame([read_arrow(p) for p in by_part[n]])


def _store_chunks(source: str, hosts: Sequence[str]) -> Iterator[Callable[[], pd.DataFrame]]:
    from analysis.engine.processes import GROUP_ROWS, INDEX_BELOW
    from analysis.store import host_counts, load_exchanges

    counts = host_counts(source)
    total = sum(counts.sizes.values())
    batch: list[str] = []
    rows = 0
    # a resource without a host is the empty host's, as host_counts names it
    for host in dict.fromkeys("" if h is None or h != h else str(h) for h in hosts):
        n = counts.sizes.get(host, 0)
        if not n:
            continue
        if batch and rows + n > GROUP_ROWS:
            yield _store_reader(load_exchanges, source, batch, counts, rows * INDEX_BELOW < total)
            batch, rows = [], 0
        batch.append(host)
        rows += n
    if batch:
        yield _store_reader(load_exchanges, source, batch, counts, rows * INDEX_BELOW < total)


def _store_reader(load: Callable[..., pd.DataFrame], source: str, hosts: list[str],
                  counts: Any, indexed: bool) -> Callable[[], pd.DataFrame]:
    unnamed = sorted(u for h in hosts for u in counts.unnamed.get(h, ()))
    return lambda: load(source, hosts=hosts, unnamed=unnamed, indexed=indexed,
                        up_to=counts.last_id)


def _dataset_partitions(source: str, manifest_type: Any) -> int:
    from analysis.engine.paths import is_url

    if is_url(source):
        from analysis.dataset import remote_copy

        with remote_copy(source) as local:
            return manifest_type.read(local).partitions
    return manifest_type.read(Path(source)).partitions


def detail_exchanges(sources: Sequence[str], keys: Sequence[str], ignore_params: Sequence[str],
                     limit: int = DETAIL_ROWS, *, hosts: Sequence[str] | None = None
                     ) -> tuple[pd.DataFrame, int, bool]:
    """The exchanges of the resources ``keys`` (worst first) from the stores or datasets the
    analysis read, one dataset partition at a time (only those the resources hash to), or of
    a store only those of ``hosts`` (the resources' hosts, when known); about ``limit`` rows
    at most. (frame, rows, whether every part needed was read). A source that is gone (moved,
    deleted) gives none: the sections then show the results alone."""
    from analysis.detectors.prepare import strip_query_params
    from analysis.store import StoreError

    wanted = set(keys)
    frames: list[pd.DataFrame] = []
    rows, complete = 0, True
    for source in sources if wanted else ():
        try:
            for read in _chunks(source, keys, hosts):
                if rows >= limit:
                    complete = False
                    break
                frame = read()
                frame = frame[strip_query_params(frame["url"].astype(object), ignore_params)
                              .isin(wanted)]
                if not frame.empty:
                    frames.append(frame)
                    rows += len(frame)
        except (OSError, StoreError, ValueError):
            continue
    if not frames:
        return empty_frame((*COLUMNS, "id")), 0, complete
    return pd.concat(frames, ignore_index=True), rows, complete
