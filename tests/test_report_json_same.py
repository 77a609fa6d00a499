"""The JSON of `analyze` is the same, key for key and value for value, as the standard
library's encoder over the cleaned records made it before msgspec wrote it (issue 16): on the
sample captures, on the real corpus and on a synthetic store with NaN, NA and numpy values."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.detectors import run_all
from analysis.ingest import ingest_paths
from analysis.report_json import _clean, analysis_to_json, dump_json, encode_analysis
from analysis.store import Store, load_exchanges

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def _oracle(analysis) -> str:  # type: ignore[no-untyped-def]
    """The former writer: ``_clean`` over every record, then json.dumps with indent."""
    def records(frame: pd.DataFrame) -> list:
        cols = [c for c in frame.columns if not str(c).startswith("_")]
        return [_clean(r) for r in frame[cols].astype(object).to_dict("records")]

    doc = {"summary": _clean(dict(analysis.summary)), "hosts": records(analysis.hosts),
           "resources": records(analysis.resources), "findings": records(analysis.findings)}
    return json.dumps(doc, indent=1, ensure_ascii=False, default=str) + "\n"


def _same(analysis) -> None:  # type: ignore[no-untyped-def]
    old = _oracle(analysis)
    assert dump_json(analysis_to_json(analysis)) == old  # byte for byte
    assert json.loads(encode_analysis(analysis)) == json.loads(old)


def _store_of(paths: list[Path], tmp: Path) -> pd.DataFrame:
    with Store(tmp / "s.sqlite") as store:
        ingest_paths(paths, store)
    return load_exchanges(tmp / "s.sqlite")


def test_sample_captures(tmp_path):
    _same(run_all(_store_of([ROOT / "sample_captures"], tmp_path)))


def test_real_corpus(real_hars, tmp_path):
    _same(run_all(_store_of([real_hars], tmp_path)))


@pytest.mark.timeout(300)
def test_synthetic_store():
    from detect import synthetic

    _same(run_all(synthetic(30_000)))
