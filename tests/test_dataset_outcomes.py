"""A store's probe outcomes go into its Parquet dataset with `etagwatch export`, so analysing
the dataset (either engine) settles the verdicts the store's analysis settles; each outcome is
exported once, and what a writer left unfinished is never read."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from support import ingest_into
from test_probe_settled import outcome

from analysis import dataset
from analysis.cli import main
from analysis.dataset import DatasetError, Manifest
from analysis.dataset_outcomes import FOLDER, read_outcomes
from analysis.detectors.settled import CANDIDATES
from analysis.store import Store, load_exchanges, load_probe_outcomes

ROOT = Path(__file__).resolve().parent.parent


def probe(store: Path) -> list[str]:
    """Two outcomes, as `probe --candidates` records them, on the store's first two candidate
    resources (one confirmed, one cleared); their URLs."""
    from analysis.detectors import run_all

    res = run_all(load_exchanges(store)).resources
    urls = list(res.loc[res["verdict"].isin(CANDIDATES), "url"])[:2]
    assert len(urls) == 2, "the sample captures hold identifier candidates"
    with Store(store) as s:
        s.add_probe_outcome(outcome(urls[0], "confirms", "identifier", "probe-echo"))
        s.add_probe_outcome(outcome(urls[1], "clears", "stable", "probe-shared"))
    return urls


@pytest.fixture
def probed(tmp_path) -> Path:
    store = tmp_path / "s.sqlite"
    ingest_into(store, [ROOT / "sample_captures"])
    probe(store)
    return store


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "_etagwatch.json").read_text())


@pytest.mark.timeout(300)
def test_the_dataset_settles_as_the_store(probed, tmp_path, capsys):
    ds = tmp_path / "ds"
    assert main(["export", str(probed), "--parquet", str(ds)]) == 0
    assert "2 probe outcome(s)" in capsys.readouterr().err
    reports = {}
    for name, args in (("store", [str(probed)]), ("dataset", [str(ds)]),
                       ("dask", [str(ds), "--engine", "dask"])):
        out = tmp_path / f"{name}.json"
        assert main(["analyze", *args, "--json", str(out), "-q"]) == 0
        reports[name] = out.read_bytes()
    assert reports["dataset"] == reports["store"]
    assert reports["dask"] == reports["store"]
    settled = json.loads(reports["store"])["summary"]["settled"]
    assert sum(settled.values()) == 2


def test_each_outcome_is_exported_once(probed, tmp_path):
    ds = tmp_path / "ds"
    assert main(["export", str(probed), "--parquet", str(ds), "-q"]) == 0
    assert main(["export", str(probed), "--parquet", str(ds), "-q"]) == 0  # nothing new
    assert len(_manifest(ds)["probe_outcomes"]) == 1
    pd.testing.assert_frame_equal(read_outcomes(ds), load_probe_outcomes(probed))
    with Store(probed) as s:  # probed again later: only that outcome goes out
        s.add_probe_outcome(outcome("https://later.example/x", "inconclusive", None,
                                    "probe-open", at=1_800_000_100.0))
    assert main(["export", str(probed), "--parquet", str(ds), "-q"]) == 0
    files = _manifest(ds)["probe_outcomes"]
    assert len(files) == 2
    assert len(pd.read_parquet(ds / files[1])) == 1
    pd.testing.assert_frame_equal(read_outcomes(ds), load_probe_outcomes(probed))


def test_a_copy_exported_again_counts_its_outcomes_once(probed, tmp_path):
    """A copy of the store that went its own way (its last exported row is gone) is exported
    whole again, outcomes included: reading drops the repeats."""
    ds = tmp_path / "ds"
    assert main(["export", str(probed), "--parquet", str(ds), "-q"]) == 0
    copy = tmp_path / "copy.sqlite"
    shutil.copy(probed, copy)
    with sqlite3.connect(copy) as conn:
        conn.execute("DELETE FROM exchanges WHERE id = (SELECT max(id) FROM exchanges)")
    assert main(["export", str(copy), "--parquet", str(ds), "-q"]) == 0
    assert len(_manifest(ds)["probe_outcomes"]) == 2
    assert len(read_outcomes(ds)) == 2


def test_only_a_dataset_with_outcomes_needs_the_newer_reader(tmp_path, probed, monkeypatch):
    plain = tmp_path / "plain.sqlite"
    ingest_into(plain, [ROOT / "sample_captures"])
    assert main(["export", str(plain), "--parquet", str(tmp_path / "a"), "-q"]) == 0
    assert main(["export", str(probed), "--parquet", str(tmp_path / "b"), "-q"]) == 0
    assert _manifest(tmp_path / "a")["version"] == 1
    assert "probe_outcomes" not in _manifest(tmp_path / "a")
    assert read_outcomes(tmp_path / "a") is None
    assert _manifest(tmp_path / "b")["version"] == 2
    monkeypatch.setattr(dataset, "VERSION", 1)  # an etagwatch from before outcomes
    assert Manifest.read(tmp_path / "a") is not None
    with pytest.raises(DatasetError, match="newer than this etagwatch; upgrade"):
        Manifest.read(tmp_path / "b")


def test_an_unfinished_outcome_file_is_never_read_and_then_removed(probed, tmp_path):
    ds = tmp_path / "ds"
    assert main(["export", str(probed), "--parquet", str(ds), "-q"]) == 0
    committed = ds / _manifest(ds)["probe_outcomes"][0]
    stray, tmp = ds / FOLDER / "0123456789ab.parquet", ds / FOLDER / ".0123456789ab.parquet.tmp"
    shutil.copy(committed, stray)  # a writer killed after the rename, before its manifest
    shutil.copy(committed, tmp)  # and one killed before it
    assert len(read_outcomes(ds)) == 2  # the manifest names what counts
    assert main(["export", str(probed), "--parquet", str(ds), "-q"]) == 0
    assert not stray.exists() and not tmp.exists() and committed.exists()


def test_an_unreadable_outcome_file_is_one_line(probed, tmp_path, capsys):
    ds = tmp_path / "ds"
    assert main(["export", str(probed), "--parquet", str(ds), "-q"]) == 0
    (ds / _manifest(ds)["probe_outcomes"][0]).write_bytes(b"not parquet")
    assert main(["analyze", str(ds), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "probe outcomes cannot be read" in err[0] and str(ds) in err[0]
