"""The machine-readable report of `etagwatch analyze`: summary, hosts, resources, findings.

Keys are a contract (DEVELOPERS.md): extend, never rename. Each resource has at least url, host,
verdict, confidence, evidence; each finding at least rule, severity, host, url, evidence, rfc,
source. Values are JSON-native (NaN becomes null).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import msgspec
import numpy as np
import pandas as pd


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-native dicts, columns starting with '_' left out."""
    return msgspec.json.decode(_ENCODER.encode(_records(frame)))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of what the frame holds (Python scalars from numpy columns, the objects of
    object columns, NA): ``_native`` makes the rest JSON when encoded, without a Python pass
    over every value first. Built column by column (``to_dict`` boxes every value in Python)."""
    cols = [c for c in frame.columns if not str(c).startswith("_")]
    values = [_column_values(frame[c]) for c in cols]
    return [dict(zip(cols, row, strict=True)) for row in zip(*values, strict=True)]


def _column_values(column: pd.Series) -> list[Any]:
    """A column as ``astype(object).to_dict`` gave its values: numbers and booleans as Python
    scalars, anything else as the object the column holds."""
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "iufbO":
        return column.to_numpy().tolist()
    return column.astype(object).tolist()


def _native(value: Any) -> Any:
    """msgspec's hook for what it cannot encode itself: numpy scalars, pandas' missing values,
    times (as ``str`` gives them, as ``json.dumps(default=str)`` did), anything else as text.
    NaN and infinite floats msgspec writes as null, as ``_clean`` does."""
    if value is pd.NA or value is pd.NaT or value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
        if isinstance(value, float | int | bool | str) or value is None:
            return value
    return str(value)


_ENCODER = msgspec.json.Encoder(enc_hook=_native)


def analysis_to_json(analysis: Any) -> dict[str, Any]:
    """An analysis.detectors.Analysis as a JSON-serialisable dict."""
    return msgspec.json.decode(encode_analysis(analysis))


def encode_analysis(analysis: Any) -> bytes:
    """The report's JSON (compact), encoded straight from the frames' rows by msgspec."""
    return _ENCODER.encode({
        "summary": _clean(dict(analysis.summary)),
        "hosts": _records(analysis.hosts),
        "resources": _records(analysis.resources),
        "findings": _records(analysis.findings),
    })


def dump_json(report: dict[str, Any]) -> str:
    """The report as every etagwatch output writes it (analyze, probe, the addon's export):
    one space of indentation, as before, formatted by msgspec (json.dumps with ``indent``
    runs in Python and took most of analyze's time on large stores)."""
    return _format(_ENCODER.encode(report)).decode("utf-8") + "\n"


def _format(data: bytes) -> bytes:
    return msgspec.json.format(data, indent=1)


#: Rows of a table encoded and formatted at a time by ``write_analysis_json``.
CHUNK_ROWS = 4_096
TABLES = ("hosts", "resources", "findings")


def indented(value: Any, depth: int) -> bytes:
    """``value`` as formatted JSON whose continuation lines are indented ``depth`` more
    spaces, to sit ``depth`` levels deep in the report (JSON strings hold no raw line
    breaks, so every one is a line of the layout)."""
    return _format(_ENCODER.encode(value)).replace(b"\n", b"\n" + b" " * depth)


def write_report(out: IO[bytes], summary: dict[str, Any],
                 tables: Iterable[tuple[str, Iterable[bytes]]]) -> None:
    """The report in ``write_json``'s layout, written piece by piece to ``out``: the summary,
    then each table from pieces of formatted rows (each ``\n  {...}`` one or more times,
    rows at depth 2), so no whole table is ever encoded in memory."""
    out.write(b'{\n "summary": ' + indented(summary, 1))
    for name, pieces in tables:
        out.write(b',\n "' + name.encode() + b'": [')
        first = True
        for piece in pieces:
            out.write(piece if first else b"," + piece)
            first = False
        out.write(b"]" if first else b"\n ]")
    out.write(b"\n}\n")


def _frame_pieces(frame: pd.DataFrame) -> Iterator[bytes]:
    """A frame's rows as pieces for ``write_report``, CHUNK_ROWS rows at a time."""
    for start in range(0, len(frame), CHUNK_ROWS):
        rows = indented(_records(frame.iloc[start:start + CHUNK_ROWS]), 1)
        yield rows[1:-3]  # "[\n  {...},\n  {...}\n ]" without the brackets


def write_analysis_json(analysis: Any, target: str) -> None:
    """The analysis as ``write_json(encode_analysis(analysis), target)`` writes it, byte for
    byte, streamed a few thousand rows at a time: the whole report (hundreds of MB at a
    million exchanges) never sits in memory, twice, as compact and indented text."""
    summary = _clean(dict(analysis.summary))
    tables = [(name, _frame_pieces(getattr(analysis, name))) for name in TABLES]
    if target == "-":
        sys.stdout.flush()
        write_report(sys.stdout.buffer, summary, tables)
        sys.stdout.buffer.flush()
    else:
        with open(target, "wb") as out:
            write_report(out, summary, tables)


def write_json(report: dict[str, Any] | bytes, target: str) -> None:
    """Write the report (a dict, or JSON from ``encode_analysis``) to the file ``target``, or
    to stdout for ``-``; OSError propagates."""
    data = _format(report if isinstance(report, bytes) else _ENCODER.encode(report)) + b"\n"
    if target == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
    else:
        Path(target).write_bytes(data)
