"""The Parquet dataset (`etagwatch export`, `ingest --dataset`, `analyze DIR`): real stores,
real ingests of the shipped captures, real Parquet files read back with pyarrow."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from har_builder import Har
from support import SAMPLE_CAPTURES

from analysis import dataset
from analysis.cli import main
from analysis.dataset import MANIFEST, dataset_files, iter_partitions, load_dataset
from analysis.detectors.prepare import strip_query_params
from analysis.store import load_exchanges


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("sample") / "sample.sqlite"
    assert main(["ingest", str(SAMPLE_CAPTURES), "--db", str(db), "-q"]) == 0
    return db


def queries_har(path: Path, n: int = 120) -> Path:
    """Resources that differ only in their query: cache busters, versions, ids."""
    har = Har()
    page = har.page("https://shop.test/", at=1_700_000_000)
    for i in range(n):
        url = f"https://cdn{i % 4}.test/a/{i % 9}.js?v={i % 3}&_={i}&id={i % 5}"
        har.get(url, at=1_700_000_000 + i, etag=f'"t{i % 9}"', page=page, body=f"b{i % 9}",
                mime="application/javascript")
    return har.write(path)


def export(db: Path, folder: Path, *extra: str) -> None:
    assert main(["export", str(db), "--parquet", str(folder), "-q", *extra]) == 0


def test_round_trip_equals_load_exchanges(sample_store: Path, tmp_path: Path) -> None:
    export(sample_store, tmp_path / "ds")
    stored = load_exchanges(sample_store)
    pd.testing.assert_frame_equal(load_dataset(tmp_path / "ds"), stored)
    schema = pq.read_schema(dataset_files(tmp_path / "ds")[0])
    assert schema.field("status").type == "int64" and schema.field("from_cache").type == "bool"
    assert sum(len(f) for _, f in iter_partitions(tmp_path / "ds")) == len(stored)


def test_analyze_dataset_same_json_as_store(sample_store: Path, tmp_path: Path) -> None:
    export(sample_store, tmp_path / "ds")
    a, b = tmp_path / "store.json", tmp_path / "dataset.json"
    assert main(["analyze", str(sample_store), "--json", str(a), "-q"]) == 0
    assert main(["analyze", str(tmp_path / "ds"), "--json", str(b), "-q"]) == 0
    assert json.loads(a.read_text()) == json.loads(b.read_text())
    assert json.loads(b.read_text())["resources"]


def test_every_resource_in_one_partition(tmp_path: Path) -> None:
    db = tmp_path / "q.sqlite"
    assert main(["ingest", str(queries_har(tmp_path / "q.har")), "--db", str(db), "-q"]) == 0
    export(db, tmp_path / "ds", "--partitions", "8")
    rows = []
    for number, frame in iter_partitions(tmp_path / "ds"):
        rows.append(frame.assign(part=number))
    frame = pd.concat(rows)
    assert frame["part"].nunique() > 1  # the URLs spread
    for ignored in ([], ["_"], ["_", "v"], ["_", "v", "id"]):
        resource = strip_query_params(frame["url"], ignored)
        assert (frame.groupby(resource)["part"].nunique() == 1).all(), ignored
    assert {p.parent.name for p in dataset_files(tmp_path / "ds")} <= {f"part={i}"
                                                                        for i in range(8)}


def test_append_and_no_duplicates(sample_store: Path, tmp_path: Path) -> None:
    db = tmp_path / "grow.sqlite"
    shutil.copy(sample_store, db)
    folder = tmp_path / "ds"
    export(db, folder)
    export(db, folder)  # the same store again: nothing new
    assert len(load_dataset(folder)) == len(load_exchanges(db))
    assert main(["ingest", str(queries_har(tmp_path / "q.har")), "--db", str(db), "-q"]) == 0
    export(db, folder)  # only the rows stored since
    pd.testing.assert_frame_equal(load_dataset(folder), load_exchanges(db))


def test_ingest_dataset_appends_and_skips_files_it_holds(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "ds"
    first, second = queries_har(tmp_path / "a.har", 30), queries_har(tmp_path / "b.har", 50)
    assert main(["ingest", str(first), "--dataset", str(folder), "-q"]) == 0
    assert len(load_dataset(folder)) == 30
    assert main(["ingest", str(first), "--dataset", str(folder)]) == 0  # again: no duplicate
    assert "already ingested" in capsys.readouterr().err
    assert len(load_dataset(folder)) == 30
    assert main(["ingest", str(first), str(second), "--dataset", str(folder), "-q"]) == 0
    frame = load_dataset(folder)
    assert len(frame) == 80 and frame["id"].is_unique
    assert set(frame["client"]) == {"a.har", "b.har"}
    # one key for the whole dataset: the same ETag hashes alike across both ingests
    assert frame.groupby("etag")["etag_hash"].nunique().max() == 1
    assert not list(folder.glob(f"{dataset.INGEST_PREFIX}*"))  # the staging store is gone


def test_batches_bound_memory(sample_store: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(dataset, "BATCH_ROWS", 10)
    export(sample_store, tmp_path / "ds", "--partitions", "2")
    files = dataset_files(tmp_path / "ds")
    groups = sum(pq.ParquetFile(f).metadata.num_row_groups for f in files)
    rows = len(load_exchanges(sample_store))
    assert len(files) == 2 and groups >= rows // 10  # one row group per batch and partition
    assert max(pq.ParquetFile(f).metadata.row_group(i).num_rows
               for f in files for i in range(pq.ParquetFile(f).metadata.num_row_groups)) <= 10
    pd.testing.assert_frame_equal(load_dataset(tmp_path / "ds"), load_exchanges(sample_store))


KILLED_EXPORT = """
import os, signal, sys
from analysis import dataset
def die(self, folder):  # every Parquet file is renamed into place: the worst moment
    os.kill(os.getpid(), signal.SIGKILL)
dataset.Manifest.write = die
dataset.export_store(sys.argv[1], sys.argv[2])
"""


def test_killed_export_leaves_the_dataset_as_it_was(sample_store: Path, tmp_path: Path
                                                     ) -> None:
    db = tmp_path / "grow.sqlite"
    shutil.copy(sample_store, db)
    folder = tmp_path / "ds"
    export(db, folder)
    before = load_dataset(folder)
    assert main(["ingest", str(queries_har(tmp_path / "q.har")), "--db", str(db), "-q"]) == 0
    proc = subprocess.run([sys.executable, "-c", KILLED_EXPORT, str(db), str(folder)],
                          env={**os.environ, "PYTHONPATH": str(Path(dataset.__file__).parents[1])})
    assert proc.returncode == -9
    assert len(list(folder.glob("part=*/*.parquet"))) > len(dataset_files(folder))  # orphans
    pd.testing.assert_frame_equal(load_dataset(folder), before)
    stale = folder / f"{dataset.INGEST_PREFIX}dead"  # a killed `ingest --dataset` staging store
    stale.mkdir()
    (stale / "staging.sqlite").write_bytes(b"half")
    export(db, folder)  # the next writer removes what was left and appends once
    assert not stale.exists()
    assert len(list(folder.glob("part=*/*"))) == len(dataset_files(folder))
    pd.testing.assert_frame_equal(load_dataset(folder), load_exchanges(db))


def test_refusals(sample_store: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "ds"
    export(sample_store, folder)
    other = tmp_path / "other.sqlite"
    assert main(["ingest", str(queries_har(tmp_path / "q.har")), "--db", str(other), "-q"]) == 0
    assert main(["export", str(other), "--parquet", str(folder)]) == 2
    assert "another store" in capsys.readouterr().err
    assert main(["export", str(sample_store), "--parquet", str(folder), "--partitions", "8"]) == 2
    assert "64 partitions" in capsys.readouterr().err
    assert json.loads((folder / MANIFEST).read_text())["partitions"] == 64
    assert main(["export", str(tmp_path / "none.sqlite"), "--parquet", str(tmp_path / "d2")]) == 2
    assert "no such store" in capsys.readouterr().err and not (tmp_path / "d2").exists()
    if importlib.util.find_spec("fsspec") is None:
        assert main(["export", str(sample_store), "--parquet", "s3://bucket/ds"]) == 2
        err = capsys.readouterr().err
        assert "pip install fsspec" in err and len(err.strip().splitlines()) == 1


def _staged_rows(folder: Path) -> int:
    for db in folder.glob(f"{dataset.INGEST_PREFIX}*/staging.sqlite"):
        try:
            with sqlite3.connect(db, timeout=0.05) as con:
                return con.execute("SELECT coalesce(max(id), 0) FROM exchanges").fetchone()[0]
        except sqlite3.Error:
            return 0
    return 0


@pytest.mark.timeout(300)
def test_kill_9_during_ingest_dataset_then_rerun_stores_each_entry_once(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    assert main(["ingest", str(queries_har(tmp_path / "a.har", 30)), "--dataset", str(folder),
                 "-q"]) == 0
    before = load_dataset(folder)
    big = queries_har(tmp_path / "big.har", 20_000)
    command = [sys.executable, "-m", "analysis", "ingest", str(big), "--dataset", str(folder),
               "--no-progress"]
    victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while victim.poll() is None and time.monotonic() < deadline and _staged_rows(folder) < 5_000:
        time.sleep(0.005)
    assert victim.poll() is None, "the ingest finished before it could be killed: enlarge it"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    pd.testing.assert_frame_equal(load_dataset(folder), before)
    assert subprocess.run(command, capture_output=True, timeout=240).returncode == 0
    frame = load_dataset(folder)
    assert len(frame) == 20_030 and frame["id"].is_unique
    assert (frame["client"] == "big.har").sum() == 20_000
    assert not list(folder.glob(f"{dataset.INGEST_PREFIX}*"))


def test_a_dataset_is_read_as_a_store_never_ingested_as_a_capture(sample_store: Path,
                                                                   tmp_path: Path,
                                                                   capsys) -> None:
    """Its Parquet files look like HTTP Archive rows to the capture readers: on the first
    version `etagwatch ingest DIR` stored them again, one client per file."""
    from analysis.ingest import find_captures
    from analysis.reporting.data import load_report_data

    folder = tmp_path / "top" / "ds"
    export(sample_store, folder)
    har = queries_har(tmp_path / "top" / "q.har", 10)
    assert find_captures(folder) == [] and find_captures(tmp_path / "top") == [har]
    assert main(["ingest", str(folder), "--db", str(tmp_path / "x.sqlite")]) == 2
    assert "an etagwatch Parquet dataset" in capsys.readouterr().err
    by_store = load_report_data([sample_store])
    by_dataset = load_report_data([folder])
    pd.testing.assert_frame_equal(by_dataset.resources, by_store.resources)
    assert by_dataset.summary == by_store.summary


def test_rows_of_an_unfinished_ingest_wait_for_it(sample_store: Path, tmp_path: Path,
                                                  capsys) -> None:
    """A file registered but not complete (an ingest running, or killed and to be replaced)
    is not exported, nor anything after it; once complete, the next export takes it once."""
    import msgspec

    from analysis.exchange import Exchange
    from analysis.store import SourceRow, Store

    db = tmp_path / "s.sqlite"
    shutil.copy(sample_store, db)
    folder = tmp_path / "ds"
    with Store(db) as store:
        rows = [msgspec.structs.replace(Exchange(**{c: None for c in Exchange.__struct_fields__}),
                                        url=f"https://x.test/{i}", source="late.har",
                                        client="late.har") for i in range(3)]
        row = SourceRow("late.har", "har", None, 1, "late.har", 0, 0, 0)
        attempt = store.begin_source(row, str(tmp_path / "late.har"))
        store.insert(rows)
        assert main(["export", str(db), "--parquet", str(folder)]) == 0
        assert "3 exchanges not exported yet" in capsys.readouterr().err
        assert len(load_dataset(folder)) == len(load_exchanges(db)) - 3
        store.finish_source(attempt, SourceRow("late.har", "har", "ab" * 32, 1, "late.har", 3,
                                               3, 0), [])
    export(db, folder)
    pd.testing.assert_frame_equal(load_dataset(folder), load_exchanges(db))


def test_a_copy_of_a_store_that_went_its_own_way_loses_nothing(sample_store: Path,
                                                                tmp_path: Path) -> None:
    """Two copies share key and creation time; what one exported says nothing about the
    other's later rows (the same ids, other exchanges)."""
    one, two = tmp_path / "one.sqlite", tmp_path / "two.sqlite"
    shutil.copy(sample_store, one)
    shutil.copy(sample_store, two)
    assert main(["ingest", str(queries_har(tmp_path / "a.har", 20)), "--db", str(one), "-q"]) == 0
    assert main(["ingest", str(queries_har(tmp_path / "b.har", 30)), "--db", str(two), "-q"]) == 0
    folder = tmp_path / "ds"
    export(one, folder)
    export(two, folder)
    frame = load_dataset(folder)
    shared = len(load_exchanges(sample_store))
    assert len(frame) == shared + 20 + 30 and frame["id"].is_unique
    assert sorted(frame["client"].value_counts()[["a.har", "b.har"]]) == [20, 30]
    export(two, folder)  # its own watermark holds: nothing again
    assert len(load_dataset(folder)) == shared + 50


@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", [["--jobs", "1"], ["--jobs", "2"], ["--engine", "dask"]])
def test_a_damaged_or_missing_file_is_one_line_naming_it(sample_store: Path, tmp_path: Path,
                                                         capsys, how: list[str]) -> None:
    """A file the manifest lists that is no Parquet file any more, or is gone: one line naming
    it, from every engine (no traceback)."""
    folder = tmp_path / "ds"
    assert main(["export", str(sample_store), "--parquet", str(folder), "-q"]) == 0
    files = sorted(folder.glob("part=*/*.parquet"))
    files[0].write_bytes(b"not parquet")
    capsys.readouterr()
    assert main(["analyze", str(folder), "-q", *how]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(files[0]) in err[0] and "not a readable Parquet file" in err[0]
    files[0].unlink()
    assert main(["analyze", str(folder), "-q", *how]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(files[0]) in err[0] and "missing" in err[0]
