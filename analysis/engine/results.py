"""A result dataset: resources, findings and hosts of an analysis as Parquet, beside the JSON.

Written by ``etagwatch analyze --parquet DIR`` (either engine) and read by ``etagwatch
report DIR`` and by anyone with a Parquet reader (Spark, DuckDB, pandas)::

    DIR/_etagwatch_results.json      manifest: summary, overview counts, files, where the
                                     exchanges are (a dataset or store), --ignore-param
    DIR/resources/part-NNNNN.parquet one file per engine partition, each in run_all's order
    DIR/findings/part-NNNNN.parquet
    DIR/hosts/part-NNNNN.parquet
    DIR/outcomes/part-NNNNN.parquet  exchanges per host and outcome (the report's bars)

Nested values (evidence) are JSON text; the columns that hold JSON are listed in each file's
metadata (``etagwatch_json``). Every part is sorted as run_all sorts, and the parts of the Dask
engine hold disjoint hosts, so the whole table in run_all's order is a streaming merge of the
parts (``merged``): the JSON report and the CSV files are written from it a few thousand rows
at a time, never built whole in memory.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pandas as pd

from analysis.detectors import RANK
from analysis.detectors.conformance import worst_first
from analysis.engine.paths import filesystem, join
from analysis.findings import SEVERITY_RANK

MANIFEST = "_etagwatch_results.json"
FORMAT = "etagwatch-results"
VERSION = 1
TABLES = ("resources", "findings", "hosts", "outcomes")
JSON_META = b"etagwatch_json"
#: Rows read from each part at a time while merging (memory: parts x this many rows).
MERGE_ROWS = 2_000


class ResultsError(Exception):
    """One line for the user: not a result dataset, a folder that holds something else."""


# -- order: the sort run_all's output is in, as pandas sorts and as a merge key ------------

def _nan(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _up(value: Any) -> tuple:
    """Ascending, missing last (pandas' ``na_position='last'``)."""
    return (1, "") if _nan(value) else (0, value)


def _down(value: Any) -> tuple:
    """Descending, missing last."""
    return (1, 0) if _nan(value) else (0, -value)


def _resource_key(r: dict[str, Any]) -> tuple:
    return (_up(RANK.get(r["verdict"])), _down(r["confidence"]), _down(r["wasted_bytes"]),
            _up(r["url"]))


def _finding_key(r: dict[str, Any]) -> tuple:
    # run_all's key (conformance.worst_first): its ties share a host, so they are in one part,
    # in that part's order, which the merge keeps
    return (_up(SEVERITY_RANK.get(r["severity"])), _up(r["rule"]), _up(r["host"]), _up(r["url"]))


HOST_ORDER = ("identifier", "likely-identifier", "churn", "error", "wasted_bytes", "warning",
              "exchanges")


def _host_key(r: dict[str, Any]) -> tuple:
    return (*(_down(r[c]) for c in HOST_ORDER), _up(r["host"]))


def _outcome_key(r: dict[str, Any]) -> tuple:
    return (_up(r["host"]),)


KEYS: dict[str, Callable[[dict[str, Any]], tuple]] = {
    "resources": _resource_key, "findings": _finding_key, "hosts": _host_key,
    "outcomes": _outcome_key}


def ordered(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` in the order of table ``name``: run_all's, for a frame that is run_all's
    output or a concatenation of such outputs over disjoint hosts (resources' ties broken by
    URL, which is their order in run_all; findings' ties keep their order)."""
    if frame.empty:
        return frame.reset_index(drop=True)
    if name == "resources":
        out = frame.assign(_k=frame["verdict"].map(RANK)).sort_values(
            ["_k", "confidence", "wasted_bytes", "url"], ascending=[True, False, False, True],
            kind="stable")
    elif name == "findings":
        return worst_first(frame)
    elif name == "hosts":
        out = frame.sort_values([*HOST_ORDER, "host"], ascending=[False] * 7 + [True],
                                kind="stable")
    else:
        out = frame.sort_values("host", kind="stable")
    return out.drop(columns="_k", errors="ignore").reset_index(drop=True)


# -- frames <-> Arrow --------------------------------------------------------------------------

_JSON = msgspec.json.Encoder(enc_hook=str)


def to_arrow(frame: pd.DataFrame) -> Any:
    """A result frame as an Arrow table: nested values (dicts, lists) and columns Arrow cannot
    type (mixed kinds) as JSON text, named in the schema metadata."""
    import pyarrow as pa

    from analysis.report_json import _native

    frame = frame[[c for c in frame.columns if not str(c).startswith("_")]]
    encoder = msgspec.json.Encoder(enc_hook=_native)
    as_json: list[str] = []
    columns: dict[str, Any] = {}
    for name in frame.columns:
        col = frame[name]
        nested = col.dtype == object and col.map(lambda v: isinstance(v, dict | list | tuple)).any()
        if not nested:
            try:
                pa.array(col, from_pandas=True)
                columns[name] = col
                continue
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                pass
        as_json.append(str(name))
        columns[name] = pd.Series([None if _nan(v) else encoder.encode(v).decode()
                                   for v in col], index=col.index, dtype=object)
    table = pa.Table.from_pandas(pd.DataFrame(columns, index=frame.index), preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[JSON_META] = json.dumps(as_json).encode()
    return table.replace_schema_metadata(meta)


def json_columns(schema: Any) -> list[str]:
    return json.loads((schema.metadata or {}).get(JSON_META, b"[]"))


def from_arrow(table: Any, *, decode: bool = True) -> pd.DataFrame:
    """A result table back as the frame it was written from (JSON text decoded unless not
    ``decode``)."""
    frame = table.to_pandas()
    # a table read with some columns keeps the file's metadata, naming every JSON column
    for name in (c for c in json_columns(table.schema) if c in frame.columns) if decode else ():
        frame[name] = pd.Series([None if _nan(v) else msgspec.json.decode(v) for v in frame[name]],
                                index=frame.index, dtype=object)
    return frame


# -- writing ----------------------------------------------------------------------------------

@dataclass
class Manifest:
    summary: dict[str, Any]
    files: dict[str, list[str]] = field(default_factory=lambda: {t: [] for t in TABLES})
    overview: dict[str, Any] = field(default_factory=dict)
    exchanges: list[str] = field(default_factory=list)  # datasets or stores analysed
    ignore_params: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, **self.__dict__}


class Writer:
    """Writes the parts of one result dataset as they arrive (the Dask engine hands them over
    one partition at a time), then the manifest. An earlier result dataset in the folder is
    replaced only once the new one is complete: its manifest names only its own files."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.fs, self.root = filesystem(target)
        existing = self.fs.exists(join(self.root, MANIFEST))
        if not existing and self.fs.exists(self.root) and self.fs.ls(self.root):
            raise ResultsError(f"{target}: the folder holds other files, not a result "
                               "dataset; choose an empty or new folder")
        self.run = uuid.uuid4().hex[:8]
        self.files: dict[str, list[str]] = {t: [] for t in TABLES}
        self.empty: dict[str, Any] = {}  # an empty table per name: its columns, if no rows come
        self.count = 0

    def add(self, tables: dict[str, Any]) -> None:
        """One part: an Arrow table (or None) per table name."""
        number = self.count
        self.count += 1
        for name, table in tables.items():
            if table is None:
                continue
            if table.num_rows == 0:  # kept for its columns in case no part has rows
                self.empty.setdefault(name, table)
                continue
            self._write(name, table, number)

    def _write(self, name: str, table: Any, number: int) -> None:
        import pyarrow.parquet as pq

        rel = f"{name}/part-{self.run}-{number:05d}.parquet"
        self.fs.makedirs(join(self.root, name), exist_ok=True)
        with self.fs.open(join(self.root, rel), "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
        self.files[name].append(rel)

    def commit(self, manifest: Manifest) -> None:
        """Write the manifest (one object: atomic on a local disk and on object stores), then
        delete the files of the result dataset it replaces. A table without rows is one empty
        file, so readers still see its columns."""
        old = read_manifest(self.target, missing_ok=True)
        for name, table in self.empty.items():
            if not self.files[name]:
                self._write(name, table, self.count)
        manifest.files = self.files
        data = json.dumps(manifest.as_json(), indent=1, default=str).encode()
        tmp = join(self.root, f".{MANIFEST}.{self.run}.tmp")
        with self.fs.open(tmp, "wb") as fh:
            fh.write(data)
        self.fs.mv(tmp, join(self.root, MANIFEST))
        for name, files in (old.files if old else {}).items():
            for rel in files:
                if rel not in self.files.get(name, []):
                    self.fs.rm(join(self.root, rel))


def write_analysis(analysis: Any, target: str, *, exchanges: Iterable[str] = (),
                   overview: dict[str, Any] | None = None,
                   outcomes: pd.DataFrame | None = None) -> None:
    """A whole in-memory analysis (the pandas engine) as a result dataset of one part."""
    writer = Writer(target)
    tables = {name: to_arrow(getattr(analysis, name)) for name in ("resources", "findings", "hosts")}
    if outcomes is not None:
        tables["outcomes"] = to_arrow(outcomes)
    writer.add(tables)
    writer.commit(Manifest(summary=dict(analysis.summary), overview=overview or {},
                           exchanges=list(exchanges),
                           ignore_params=list(analysis.summary.get("ignore_params", []))))


# -- reading ----------------------------------------------------------------------------------

def read_manifest(target: str, *, missing_ok: bool = False) -> Manifest | None:
    fs, root = filesystem(target)
    try:
        with fs.open(join(root, MANIFEST), "rb") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise ResultsError(f"{target}: not an etagwatch result dataset (no {MANIFEST})") from None
    except ValueError as exc:
        raise ResultsError(f"{target}: not an etagwatch result dataset ({exc})") from None
    if data.get("format") != FORMAT:
        raise ResultsError(f"{target}: not an etagwatch result dataset")
    if int(data.get("version", 0)) > VERSION:
        raise ResultsError(f"{target}: result dataset version {data['version']} is newer than "
                           "this etagwatch; upgrade etagwatch")
    data.pop("format")
    data.pop("version", None)
    return Manifest(**data)


def is_results(target: str) -> bool:
    try:
        return read_manifest(target, missing_ok=True) is not None
    except (ResultsError, OSError):
        return False


def read_table(target: str, name: str, *, columns: list[str] | None = None,
               decode: bool = True) -> pd.DataFrame:
    """One table whole, in run_all's order (for tables that fit in memory: hosts, outcomes,
    and resources or findings of a capture that is not huge)."""
    import pyarrow.parquet as pq

    manifest = read_manifest(target)
    fs, root = filesystem(target)
    frames = []
    for rel in manifest.files.get(name, []):
        with fs.open(join(root, rel), "rb") as fh:
            frames.append(from_arrow(pq.read_table(fh, columns=columns), decode=decode))
    if not frames:
        return pd.DataFrame(columns=columns or [])
    return ordered(name, pd.concat(frames, ignore_index=True)) if columns is None or \
        _has_key_columns(name, columns) else pd.concat(frames, ignore_index=True)


def _has_key_columns(name: str, columns: list[str]) -> bool:
    need = {"resources": {"verdict", "confidence", "wasted_bytes", "url"},
            "findings": {"severity", "rule", "host", "url", "source"},
            "hosts": {*HOST_ORDER, "host"}, "outcomes": {"host"}}[name]
    return need <= set(columns)


def _rows(fs: Any, path: str, columns: list[str] | None, raw_json: bool
          ) -> Iterator[dict[str, Any]]:
    """A part's rows; JSON columns as ``msgspec.Raw`` (``raw_json``) or decoded."""
    import pyarrow.parquet as pq

    with fs.open(path, "rb") as fh:
        pf = pq.ParquetFile(fh)
        nested = json_columns(pf.schema_arrow)
        for batch in pf.iter_batches(batch_size=MERGE_ROWS, columns=columns):
            frame = batch.to_pandas()
            if "_" in frame.columns:
                frame = frame.drop(columns="_")
            for record in frame.astype(object).to_dict("records"):
                for name in nested:
                    if name in record and not _nan(record[name]):
                        text = record[name].encode()
                        record[name] = msgspec.Raw(text) if raw_json else msgspec.json.decode(text)
                yield record


def merged(target: str, name: str, *, raw_json: bool = True) -> Iterator[dict[str, Any]]:
    """Every row of table ``name`` in run_all's order, a batch per part in memory at a time;
    JSON columns as ``msgspec.Raw`` (``raw_json``) or decoded."""
    manifest = read_manifest(target)
    fs, root = filesystem(target)
    streams = [_rows(fs, join(root, rel), None, raw_json) for rel in manifest.files.get(name, [])]
    return heapq.merge(*streams, key=KEYS[name])


def columns(target: str, name: str) -> list[str]:
    """The columns of table ``name`` (of its first part)."""
    import pyarrow.parquet as pq

    manifest = read_manifest(target)
    fs, root = filesystem(target)
    for rel in manifest.files.get(name, [])[:1]:
        with fs.open(join(root, rel), "rb") as fh:
            return [c for c in pq.ParquetFile(fh).schema_arrow.names if c != "__index_level_0__"]
    return []


# -- streamed outputs -------------------------------------------------------------------------

def stream_json(target: str, out: Any) -> None:
    """The JSON report of analyze (the same keys and layout as ``write_json``) written to the
    binary file ``out`` row by row from the result dataset."""
    from analysis.report_json import TABLES, indented, write_report

    manifest = read_manifest(target)
    write_report(out, manifest.summary, [
        (name, (b"\n  " + indented(record, 2) for record in merged(target, name)))
        for name in TABLES])


def stream_csv(target: str, folder: str) -> None:
    """resources.csv, findings.csv, hosts.csv (evidence as JSON text, as analyze's write_csv
    writes it), in run_all's order, row by row from the result dataset."""
    import csv
    from pathlib import Path

    Path(folder).mkdir(parents=True, exist_ok=True)
    for name in ("resources", "findings", "hosts"):
        rows = merged(target, name, raw_json=False)
        with (Path(folder) / f"{name}.csv").open("w", newline="") as fh:
            # lines end as pandas' to_csv ends them (the pandas engine's --csv)
            writer = csv.DictWriter(fh, fieldnames=columns(target, name),
                                    lineterminator=os.linesep)
            writer.writeheader()
            for record in rows:
                writer.writerow({k: "" if _nan(v) else json.dumps(v, default=str)
                                 if isinstance(v, dict | list) else v for k, v in record.items()})


__all__ = ["MANIFEST", "TABLES", "Manifest", "ResultsError", "Writer", "from_arrow",
           "is_results", "merged", "ordered", "read_manifest", "read_table", "stream_csv",
           "stream_json", "to_arrow", "write_analysis"]


#: The findings columns the terminal report shows (evidence stays in the files).
FINDING_SUMMARY_COLUMNS = ["rule", "severity", "host", "url", "source", "method", "status",
                           "rfc", "explanation"]


def terminal_analysis(target: str, limit: int) -> Any:
    """What the terminal report needs, read from a result dataset: the summary, each
    verdict's first ``limit`` resources (the parts are sorted, so a part's first rows of a
    verdict are its candidates), the findings without their evidence, the hosts."""
    import pyarrow.parquet as pq

    from analysis.detectors import Analysis

    manifest = read_manifest(target)
    fs, root = filesystem(target)
    picked = []
    for rel in manifest.files.get("resources", []):
        with fs.open(join(root, rel), "rb") as fh:
            verdicts = pq.read_table(fh, columns=["verdict"]).column("verdict").to_pandas()
        rows = verdicts.groupby(verdicts, sort=False).head(limit).index
        with fs.open(join(root, rel), "rb") as fh:
            picked.append(from_arrow(pq.read_table(fh).take(rows.to_numpy())))
    resources = ordered("resources", pd.concat(picked, ignore_index=True)) if picked \
        else pd.DataFrame(columns=["url", "host", "verdict", "confidence", "evidence"])
    findings = read_table(target, "findings", columns=FINDING_SUMMARY_COLUMNS)
    if findings.empty:
        findings = pd.DataFrame(columns=FINDING_SUMMARY_COLUMNS)
    return Analysis(resources, findings, read_table(target, "hosts"), manifest.summary)
