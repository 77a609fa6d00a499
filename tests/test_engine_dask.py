"""The Dask engine gives the pandas engine's answers: resources, findings and hosts row for
row (evidence included) and the same summary, on the sample captures, the real corpus and a
synthetic capture of 100k exchanges, on a real LocalCluster of two worker processes started by the test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import ingest_into

from analysis.detectors import run_all
from analysis.detectors.settled import CANDIDATES, settle
from analysis.report_json import analysis_to_json
from analysis.store import Store, load_exchanges, load_probe_outcomes

distributed = pytest.importorskip("distributed")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", memory_limit="2GiB")
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _by_key(records: list[dict], keys: tuple[str, ...]) -> list[dict]:
    return sorted(records, key=lambda r: tuple(json.dumps(r.get(k), sort_keys=True) for k in keys))


def _same(frame: pd.DataFrame, client, outcomes: pd.DataFrame | None = None  # type: ignore[no-untyped-def]
          ) -> dict:
    """The pandas engine as analyze runs it (run_all, then the probe outcomes settled) against
    the Dask engine; the pandas side's JSON."""
    from analysis.engine.dask_engine import run_all_dask

    one = analysis_to_json(settle(run_all(frame), outcomes))
    many = analysis_to_json(run_all_dask(frame, client=client, partitions=4, outcomes=outcomes))
    assert many["summary"] == one["summary"]
    # row for row, in run_all's order (the JSON and CSV of either engine list them alike)
    assert many["resources"] == one["resources"]
    assert many["findings"] == one["findings"]
    assert many["hosts"] == one["hosts"]
    return one


@pytest.mark.timeout(300)
def test_sample_captures(client, tmp_path):
    ingest_into(tmp_path / "s.sqlite", [ROOT / "sample_captures"])
    _same(load_exchanges(tmp_path / "s.sqlite"), client)


@pytest.mark.timeout(300)
def test_exchanges_without_host_go_with_their_urls_host(client, tmp_path):
    """Stored without a host (a URL a reader could not split), an exchange is analysed under
    its URL's host: it must land in that host's partition, or the host is split in two."""
    import sqlite3

    db = tmp_path / "s.sqlite"
    ingest_into(db, [ROOT / "sample_captures"])
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE exchanges SET host = NULL WHERE id % 3 = 0")
    _same(load_exchanges(db), client)


@pytest.mark.timeout(300)
def test_probe_outcomes_settled_alike(client, tmp_path):
    """A probed store: each partition settles its resources as the pandas engine does."""
    from test_probe_settled import outcome

    db = tmp_path / "s.sqlite"
    ingest_into(db, [ROOT / "sample_captures"])
    frame = load_exchanges(db)
    res = pd.DataFrame(analysis_to_json(run_all(frame))["resources"])
    urls = res.loc[res["verdict"].isin(CANDIDATES), "url"].tolist()
    assert len(urls) >= 2, "the sample captures hold identifier candidates"
    with Store(db) as store:
        store.add_probe_outcome(outcome(urls[0], "confirms", "identifier", "probe-echo"))
        store.add_probe_outcome(outcome(urls[1], "clears", "stable", "probe-shared"))
    one = _same(frame, client, load_probe_outcomes(db))
    settled = {r["url"]: r["settled"] for r in one["resources"] if r["settled"]}
    assert set(settled) == {urls[0], urls[1]}
    assert one["summary"]["settled"]["confirmed"] + one["summary"]["settled"]["cleared"] + \
        one["summary"]["settled"]["contradicted"] == 2


@pytest.mark.timeout(300)
def test_real_corpus(client, real_hars, tmp_path):
    ingest_into(tmp_path / "s.sqlite", [real_hars])
    _same(load_exchanges(tmp_path / "s.sqlite"), client)


@pytest.mark.timeout(300)
def test_synthetic_capture(client):
    sys.path.insert(0, str(ROOT / "bench"))
    from detect import synthetic

    _same(synthetic(100_000), client)


@pytest.mark.timeout(300)
def test_analyze_a_dataset_with_the_dask_engine(tmp_path, capsys):
    """`etagwatch analyze DIR --engine dask` on an exported dataset: the workers read it
    partition by partition; the JSON equals the pandas engine's on the same dataset."""
    from analysis.cli import main

    ingest_into(tmp_path / "s.sqlite", [ROOT / "sample_captures"])
    assert main(["export", str(tmp_path / "s.sqlite"), "--parquet", str(tmp_path / "ds"), "-q"]) == 0
    one, many = tmp_path / "one.json", tmp_path / "many.json"
    assert main(["analyze", str(tmp_path / "ds"), "--json", str(one), "-q", "--parquet",
                 str(tmp_path / "r1"), "--csv", str(tmp_path / "c1")]) == 0
    assert main(["analyze", str(tmp_path / "ds"), "--engine", "dask", "--json", str(many),
                 "--parquet", str(tmp_path / "r2"), "--csv", str(tmp_path / "c2")]) == 0
    err = capsys.readouterr().err
    assert "Dask dashboard: http" in err
    assert "% Completed" not in err  # stderr is no terminal here: no progress bar
    a = json.loads(one.read_text())
    assert one.read_bytes() == many.read_bytes()  # either engine: the same report, row order too
    # the result datasets of both engines: the same rows, evidence included, read back
    from analysis.engine.results import read_manifest, read_table

    assert read_manifest(str(tmp_path / "r1")).summary == read_manifest(str(tmp_path / "r2")).summary
    for name, keys in (("resources", ("url", "validator")), ("findings", ("rule", "url", "source", "evidence")),
                       ("hosts", ("host",)), ("outcomes", ("host",))):
        r1 = analysis_to_json_frame(read_table(str(tmp_path / "r1"), name))
        r2 = analysis_to_json_frame(read_table(str(tmp_path / "r2"), name))
        assert _by_key(r1, keys) == _by_key(r2, keys), name
    assert json.loads(json.dumps(a["resources"])) == analysis_to_json_frame(
        read_table(str(tmp_path / "r1"), "resources"))  # pandas engine: its own order kept
    for name in ("resources", "findings", "hosts"):  # CSV streamed from the result dataset
        c1 = pd.read_csv(tmp_path / "c1" / f"{name}.csv")
        c2 = pd.read_csv(tmp_path / "c2" / f"{name}.csv")
        assert sorted(c1.columns) == sorted(c2.columns) and len(c1) == len(c2), name
        key = list(c1.columns)
        pd.testing.assert_frame_equal(c1.sort_values(key).reset_index(drop=True),
                                      c2[c1.columns].sort_values(key).reset_index(drop=True),
                                      check_dtype=False)


@pytest.mark.timeout(300)
def test_analyze_with_findings_reports_alike_on_every_engine(client, tmp_path, capsys):
    """The terminal report, JSON and CSV of `analyze --engine dask` and of `--jobs 2` (worker
    processes) equal one process's on a store with findings: the Dask engine's terminal
    report reads only some columns of the findings back from the result dataset (not their
    evidence, JSON text), and both sum their parts' summaries, where rules of equal counts
    must keep run_all's order."""
    import exchange_factory as xf

    from analysis.cli import main

    records = [
        *xf.visits("c1", "https://api.example.com/a", '"v1"'),
        xf.exchange(client="c1", url="https://api.example.com/b", etag="unquoted",
                    etag_violations='["entity-tag not in double quotes (RFC 9110 8.8.3)"]'),
        xf.exchange(client="c2", url="https://api.example.com/c", status=304, etag='"v2"'),
    ]
    db = xf.store(tmp_path / "s.sqlite", records)
    reports = {}
    runs = {"pandas": ["--jobs", "1"], "processes": ["--jobs", "2"],
            "dask": ["--engine", "dask", "--scheduler", client.scheduler.address]}
    for engine, how in runs.items():
        capsys.readouterr()
        assert main(["analyze", str(db), "-q", "--limit", "50", "--json",
                     str(tmp_path / f"{engine}.json"), "--csv", str(tmp_path / engine),
                     *how]) == 0
        reports[engine] = capsys.readouterr().out
    found = json.loads((tmp_path / "pandas.json").read_text())["findings"]
    assert {f["rule"] for f in found} >= {"etag-syntax", "unconditional-304"}
    assert all(f["evidence"] for f in found)
    assert "etag-syntax" in reports["pandas"]
    for engine in ("processes", "dask"):  # the summary's rules of equal counts in one order
        assert reports[engine] == reports["pandas"], engine
        assert (tmp_path / f"{engine}.json").read_bytes() == \
            (tmp_path / "pandas.json").read_bytes(), engine
        for table in ("resources", "findings", "hosts"):  # the CSV too, line ends included
            assert (tmp_path / engine / f"{table}.csv").read_bytes() == \
                (tmp_path / "pandas" / f"{table}.csv").read_bytes(), (engine, table)


def analysis_to_json_frame(frame: pd.DataFrame) -> list[dict]:
    from analysis.report_json import frame_records

    return frame_records(frame)


def test_partitions_follow_the_input_size_and_worker_memory():
    """The shuffle's output partitions grow with the input and shrink with worker memory, so
    a partition stays within a worker's share whatever the dataset's size."""
    from analysis.engine.dask_engine import output_partitions, rows_per_partition

    gib = 2**30
    assert output_partitions(10_000, 4 * gib, 2) == 2  # small input: one per worker
    small, large = output_partitions(30_000_000, 2 * gib, 2), output_partitions(30_000_000, 8 * gib, 2)
    assert small > large >= 2
    assert output_partitions(300_000_000, 2 * gib, 2) >= 9 * small
    for rows in (10**6, 10**7, 10**8):
        assert 1.25 * rows / output_partitions(rows, 2 * gib, 2) <= rows_per_partition(2 * gib)


def _loads(sizes: pd.Series, nparts: int, placed: dict[str, int]) -> np.ndarray:
    """Rows per partition when every host goes where assign_partitions sends it."""
    from analysis.engine.dask_engine import assign_partitions

    part = assign_partitions(pd.DataFrame({"host": sizes.index.to_numpy(dtype=object)}),
                             placed, nparts).to_numpy()
    return np.bincount(part, weights=sizes.to_numpy(), minlength=nparts)


def test_few_large_hosts_are_packed_into_partitions_that_fit():
    """bench/scale.py at 30M: 500 hosts of 60k exchanges. Hashed into partitions, some got
    three times the average and overran 2.5 GiB workers; packed by size, every partition
    stays within a worker's share."""
    from analysis.engine.dask_engine import host_partitions, output_partitions, rows_per_partition

    memory = int(2.5 * 2**30)
    sizes = pd.Series(60_000, index=[f"h{i}.example" for i in range(500)])
    nparts = output_partitions(int(sizes.sum()), memory, 2)
    placed, nparts = host_partitions(sizes, nparts)
    assert len(placed) == 500
    packed = _loads(sizes, nparts, placed)
    assert packed.max() <= rows_per_partition(memory)
    assert packed.max() - packed.min() <= 60_000  # within one host of each other
    hashed = _loads(sizes, nparts, {})
    assert hashed.max() > rows_per_partition(memory)  # what the hash layout did
    assert host_partitions(sizes.sample(frac=1, random_state=1), nparts)[0] == placed


def test_many_small_hosts_are_hashed_and_the_map_stays_small():
    """A crawl's long tail: 200k hosts of 1-400 exchanges beside a few large ones. Only the
    large ones are placed (the map is what every input task carries); the rest spread evenly
    by hash."""
    from analysis.engine.dask_engine import host_partitions

    rng = np.random.default_rng(7)
    small = pd.Series(rng.integers(1, 400, 200_000), index=[f"s{i}.test" for i in range(200_000)])
    large = pd.Series([900_000, 700_000, 400_000], index=["a.test", "b.test", "c.test"])
    sizes = pd.concat([large, small])
    placed, nparts = host_partitions(sizes, 64)
    assert set(placed) == {"a.test", "b.test", "c.test"}
    loads = _loads(sizes, nparts, placed)
    assert loads.max() <= 1.02 * sizes.sum() / nparts + 900_000  # the largest host on top
    assert np.sort(loads)[:-3].max() <= 1.1 * np.sort(loads)[:-3].mean()


@pytest.mark.timeout(300)
def test_a_host_larger_than_a_worker_can_hold_is_one_error(client):
    """The layout's limit: every exchange of a host must fit one worker. A host above the
    limit stops the run with one message naming it and its size (the largest hosts tie)."""
    from analysis.engine.dask_engine import HostTooLarge, analyse_to_results

    sys.path.insert(0, str(ROOT / "bench"))
    from detect import synthetic

    frame = synthetic(20_000)
    biggest = frame["host"].value_counts()
    with __import__("tempfile").TemporaryDirectory() as tmp:
        with pytest.raises(HostTooLarge, match=rf"host 'h\d+\.example' has {biggest.iloc[0]:,} exchanges, more than"):
            analyse_to_results(frame, f"{tmp}/r", client=client, host_limit=int(biggest.iloc[0]) - 1)
        assert not list(Path(tmp).rglob("*.parquet"))  # refused from the host sizes, before any part


@pytest.mark.timeout(300)
def test_progress_is_dasks_own_bar_on_stderr(client, tmp_path, capsys):
    from analysis.engine.dask_engine import analyse_to_results

    ingest_into(tmp_path / "s.sqlite", [ROOT / "sample_captures"])
    analyse_to_results(load_exchanges(tmp_path / "s.sqlite"), str(tmp_path / "r"),
                       client=client, progress=True)
    out = capsys.readouterr()
    assert "100% Completed" in out.err and "Completed" not in out.out


@pytest.mark.timeout(300)
def test_a_dataset_is_read_in_bounded_pieces(client, tmp_path):
    """Dataset partitions grow with the dataset, so the workers read row groups packed up to
    a row budget, not whole partitions; the answers stay the pandas engine's."""
    from analysis.dataset import export_store, load_dataset, row_groups
    from analysis.engine.dask_engine import dataset_frame, run_all_dask

    ingest_into(tmp_path / "s.sqlite", [ROOT / "sample_captures"])
    export_store(tmp_path / "s.sqlite", tmp_path / "ds", partitions=2, batch_rows=20)
    assert max(n for _, _, n in row_groups(tmp_path / "ds")) <= 20
    frame = dataset_frame(tmp_path / "ds", chunk_rows=40)
    sizes = client.compute(frame.map_partitions(len)).result()
    assert len(sizes) > 2 and max(sizes) <= 40 and sum(sizes) == len(load_dataset(tmp_path / "ds"))
    one = analysis_to_json(settle(run_all(load_dataset(tmp_path / "ds")), None))
    many = analysis_to_json(run_all_dask(frame, client=client))
    assert many == one


@pytest.mark.timeout(120)
def test_the_workers_shuffle_buffer_follows_their_memory():
    """Dask's p2p send buffer defaults to 1 GiB whatever a worker's limit (it took 2.5 GiB
    workers to 2.35 GB at 30M exchanges): the LocalCluster's workers start with a tenth."""
    from analysis.engine.dask_engine import start_client

    client = start_client(workers=1, memory_limit="1GiB")
    try:
        buffers = client.run(lambda: __import__("dask").config.get("distributed.p2p.comm.buffer"))
        assert list(buffers.values()) == [2**30 // 10]
    finally:
        client.close()
        client.cluster.close()
