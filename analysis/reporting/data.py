"""What a report is about: the exchanges of the inputs and the detectors' analysis of them.

Inputs are SQLite stores (read as they are) or HAR / flow files and folders (ingested into a
store first: the ``db`` given, else a temporary one that is deleted afterwards). Every section
module takes one ``ReportData`` and never reads files itself.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
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

    @property
    def empty(self) -> bool:
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
) -> ReportData:
    """Read stores, ingest captures, analyse.

    HAR / flow inputs go into ``db`` when given (kept, like ``etagwatch ingest --db``), else
    into a temporary store removed before returning. Entries the readers skip are reported in
    ``skipped``; files they cannot read in ``errors``: neither stops the report.
    """
    from analysis.store import Store, load_exchanges

    try:
        stores, captures = split_inputs(inputs)
    except FileNotFoundError as exc:
        raise InputError(str(exc)) from None

    frames = [load_input(p) for p in stores]
    outcomes = [o for o in map(load_outcomes, stores) if o is not None and not o.empty]
    skipped: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for path in stores:  # what ingesting into them skipped, whenever that was
        more_skipped, more_errors = _store_problems(path)
        skipped += more_skipped
        errors += more_errors
    if captures:
        from analysis.ingest import ingest_paths

        with tempfile.TemporaryDirectory(prefix="etagwatch-report-") as tmp:
            store = Store(Path(db) if db else Path(tmp) / "report.sqlite")
            try:
                report = ingest_paths(captures, store, client=client)
                frames.append(load_exchanges(store))
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
