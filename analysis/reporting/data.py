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

SQLITE_MAGIC = b"SQLite format 3\x00"

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


def is_store(path: Path) -> bool:
    """A SQLite file, recognised by its header rather than its name."""
    try:
        with path.open("rb") as fh:
            return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def empty_frame(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


def analyse(exchanges: pd.DataFrame, *, ignore_params: Sequence[str] = ()) -> ReportData:
    """Run the detectors (engineer C's ``run_all``) over ``exchanges``.

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

    result = run_all(exchanges, ignore_params=tuple(ignore_params))
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

    paths = [Path(p) for p in inputs]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise InputError(f"{missing[0]}: no such file or directory")
    stores = [p for p in paths if p.is_file() and is_store(p)]
    captures = [p for p in paths if p not in stores]

    frames = [load_exchanges(p) for p in stores]
    skipped: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
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
    data = analyse(exchanges, ignore_params=ignore_params)
    data.inputs = tuple(str(p) for p in paths)
    data.skipped = pd.DataFrame(skipped, columns=["file", "entry_index", "reason"])
    data.errors = pd.DataFrame(errors, columns=["file", "message"])
    return data
