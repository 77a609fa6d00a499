"""`etagwatch analyze --jobs N`: the store's hosts split between worker processes
(analysis.engine.processes) give what one process gives, and the run stays one command: a
worker's error is one line, Ctrl-C stops the workers too.

The byte-for-byte comparison on the sample captures, the real corpus and 100k synthetic
exchanges is in test_analyze_same (one process, two processes and the former code)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from support import ingest_into

from analysis.engine.processes import host_groups
from analysis.engine.results import read_manifest, read_table
from analysis.store import host_counts, load_exchanges

ROOT = Path(__file__).resolve().parent.parent


def _analyze(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", "analyze", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_host_groups_are_even_and_the_same_every_run():
    sizes = {f"h{i}.example": (i * 7919) % 1000 + 1 for i in range(300)}
    sizes["big.example"] = 100_000  # more than a third of all: a group of its own
    groups = host_groups(sizes, 3)
    assert sorted(h for g in groups for h in g) == sorted(sizes)  # every host, once
    loads = sorted(sum(sizes[h] for h in g) for g in groups)
    # the big host alone in one group; the rest shared within one host's size of each other
    assert ["big.example"] in groups
    assert loads[1] - loads[0] <= max(v for k, v in sizes.items() if k != "big.example")
    assert host_groups(dict(reversed(list(sizes.items()))), 3) == groups
    assert host_groups({"a": 5}, 4) == [["a"]]  # no empty groups
    assert host_groups({}, 2) == []


@pytest.fixture(scope="module")
def hostless(tmp_path_factory) -> Path:
    """The sample captures with a third of the exchanges stored without a host (as a reader
    that could not split a URL leaves them): the detectors take the host from the URL."""
    db = tmp_path_factory.mktemp("hostless") / "s.sqlite"
    ingest_into(db, [ROOT / "sample_captures"])
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE exchanges SET host = NULL WHERE id % 3 = 0")
        conn.execute("UPDATE exchanges SET host = NULL, url = NULL WHERE id = 2")
    return db


def test_an_exchange_without_host_goes_with_its_urls_host(hostless):
    counts = host_counts(hostless)
    with sqlite3.connect(hostless) as conn:
        total = conn.execute("SELECT count(*) FROM exchanges").fetchone()[0]
        named = {h for (h,) in conn.execute("SELECT DISTINCT host FROM exchanges "
                                             "WHERE host IS NOT NULL")}
    assert sum(counts.sizes.values()) == total
    assert counts.unnamed[""] == {""}  # neither host nor URL: the empty name
    shared = [h for h in counts.unnamed if h in named]
    assert shared, "no hostless exchange of a named host: the fixture tests nothing"
    # loading a host loads its hostless exchanges with it, and nothing else
    host = shared[0]
    frame = load_exchanges(hostless, ["host", "url"], hosts=[host], unnamed=counts.unnamed[host])
    assert len(frame) == counts.sizes[host]
    assert frame["host"].isna().any() and set(frame["host"].dropna()) == {host}


def test_two_processes_equal_one_with_hostless_exchanges(hostless, tmp_path):
    outputs = {}
    for jobs in ("1", "2"):
        out = tmp_path / jobs
        out.mkdir()
        done = _analyze(str(hostless), "--jobs", jobs, "--json", str(out / "r.json"),
                        "--csv", str(out / "csv"), "--parquet", str(out / "pq"),
                        "--limit", "100")
        assert done.returncode in (0, 1), done.stderr
        manifest = read_manifest(str(out / "pq"))
        tables = [read_table(str(out / "pq"), name).to_json()
                  for name in ("resources", "findings", "hosts", "outcomes")]
        outputs[jobs] = (done.stdout, (out / "r.json").read_bytes(),
                         *((out / "csv" / f"{n}.csv").read_bytes()
                           for n in ("resources", "findings", "hosts")),
                         manifest.summary, manifest.overview, *tables)
    assert outputs["2"] == outputs["1"]
    assert b'"identifier"' in outputs["1"][1]


def test_jobs_is_for_the_pandas_engine(hostless):
    done = _analyze(str(hostless), "--jobs", "2", "--engine", "dask")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith(
        "--jobs is for --engine pandas (a Dask cluster has its own workers)")
    done = _analyze(str(hostless), "--jobs", "0")
    assert done.returncode == 2 and "--jobs" in done.stderr


def test_a_workers_store_error_is_one_line_naming_the_exchange(hostless, tmp_path):
    db = tmp_path / "bad.sqlite"
    with sqlite3.connect(hostless) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    with sqlite3.connect(db) as conn:
        bad = conn.execute("SELECT max(id) FROM exchanges WHERE host IS NOT NULL").fetchone()[0]
        conn.execute("UPDATE exchanges SET status = 'two hundred' WHERE id = ?", (bad,))
    done = _analyze(str(db), "--jobs", "2")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"exchange id {bad}: column status" in lines[0] and str(db) in lines[0]


@pytest.fixture(scope="module")
def synthetic_store(tmp_path_factory) -> Path:
    """60k synthetic exchanges: long enough to act on running workers."""
    sys.path.insert(0, str(ROOT / "bench"))
    from synthetic import as_stored, synthetic, write_store

    return write_store(as_stored(synthetic(60_000)), tmp_path_factory.mktemp("syn") / "s.sqlite")


def _start_with_workers(store: Path, out: Path) -> tuple[subprocess.Popen, list[psutil.Process]]:
    """`etagwatch analyze STORE --jobs 2` started, once both workers run."""
    proc = subprocess.Popen([sys.executable, "-m", "analysis", "analyze", str(store),
                             "--jobs", "2", "--json", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    workers: list[psutil.Process] = []
    while time.monotonic() < deadline and len(workers) < 2:
        workers = [p for p in parent.children() if "analysis.engine.processes" in
                   " ".join(p.cmdline())]
        time.sleep(0.05)
    assert len(workers) == 2, "the two workers never started"
    return proc, workers


@pytest.mark.timeout(300)
def test_ctrl_c_stops_the_workers(synthetic_store, tmp_path):
    proc, workers = _start_with_workers(synthetic_store, tmp_path / "r.json")
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == "etagwatch: interrupted"
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive
    assert not (tmp_path / "r.json").exists()


@pytest.mark.timeout(300)
def test_a_killed_worker_is_one_line_and_stops_the_other(synthetic_store, tmp_path):
    """What the kernel's OOM killer does to a worker: the run ends with exit 2 and says so."""
    proc, workers = _start_with_workers(synthetic_store, tmp_path / "r.json")
    workers[0].kill()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().splitlines() == [
        "etagwatch: error: a worker process was stopped by SIGKILL (out of memory?)"]
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive
    assert not (tmp_path / "r.json").exists()


def test_many_small_groups_per_worker_equal_one_frame(hostless, monkeypatch):
    """Groups of a few hosts, taken one after another by two workers; the smaller groups read
    through the host index, the larger by a scan (the share between them set for these few
    hosts); the merged analysis is the one-frame analysis, row for row and in order."""
    from analysis.detectors import INPUT_COLUMNS, run_all
    from analysis.detectors.settled import settle
    from analysis.engine import processes
    from analysis.report_json import encode_analysis

    counts = host_counts(hostless)
    total = sum(counts.sizes.values())
    rows = total // 6
    groups = host_groups(counts.sizes, 6)
    assert len(groups) > 2, "more groups than workers"
    shares = sorted(sum(counts.sizes[h] for h in g) / total for g in groups)
    assert shares[0] < shares[-1]
    monkeypatch.setattr(processes, "INDEX_BELOW", 2 / (shares[0] + shares[-1]))
    columns = [*INPUT_COLUMNS, "source_kind"]
    many, overview, outcomes = processes.run_all_processes(
        [hostless], jobs=2, columns=columns, group_rows=rows, overview=True)
    one = settle(run_all(load_exchanges(hostless, columns)), None)
    assert encode_analysis(many) == encode_analysis(one)  # bytes: key order counts too
    assert b'"value_backends"' in encode_analysis(one), "a part with churn beside parts without"
    assert overview is not None and overview["exchanges"] == total
    assert int(outcomes.drop(columns="host").to_numpy().sum()) == total


def test_a_column_only_some_parts_have_keeps_its_place():
    import pandas as pd

    from analysis.engine.processes import columns_in_order

    without = pd.DataFrame(columns=["url", "verdict", "values", "evidence"])
    with_churn = pd.DataFrame(columns=["url", "verdict", "value_backends", "values", "evidence"])
    assert columns_in_order([without, with_churn]) == list(with_churn.columns)
    assert columns_in_order([with_churn, without]) == list(with_churn.columns)


def test_workers_read_the_state_that_was_counted(hostless, tmp_path):
    """A writer appending while the workers read (a live proxy, a crawl): every group stops at
    the last id counted, so the parts are one state of the store, not one state per group."""
    from analysis.detectors import INPUT_COLUMNS, run_all
    from analysis.detectors.settled import settle
    from analysis.engine.processes import run_all_processes
    from analysis.report_json import encode_analysis

    db = tmp_path / "s.sqlite"
    with sqlite3.connect(hostless) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    counted = host_counts(db)
    columns = [*INPUT_COLUMNS, "source_kind"]
    before = encode_analysis(settle(run_all(load_exchanges(db, columns)), None))
    with sqlite3.connect(db) as conn:  # what a writer adds after the count: more of each host
        names = [r[1] for r in conn.execute("PRAGMA table_info(exchanges)") if r[1] != "id"]
        conn.execute(f"INSERT INTO exchanges ({', '.join(names)}) SELECT {', '.join(names)} "
                     "FROM exchanges ORDER BY id")
    after = encode_analysis(settle(run_all(load_exchanges(db, columns)), None))
    assert after != before
    many, _, _ = run_all_processes([db], jobs=2, columns=columns, counts=[counted])
    assert encode_analysis(many) == before


def test_the_crawls_analysis_in_processes_is_analyzes(hostless, tmp_path, monkeypatch):
    """`etagwatch crawl` closes with analyze's JSON of its store: from PARALLEL_FROM
    exchanges on it comes from worker processes, and equals what one process finds."""
    from analysis.crawl.summary import analyse_store
    from analysis.engine import processes
    from analysis.report_json import encode_analysis, write_analysis_json

    one = analyse_store(hostless)
    calls = []
    real = processes.run_all_processes
    monkeypatch.setattr(processes, "run_all_processes",
                        lambda *a, **k: calls.append(k["jobs"]) or real(*a, **k))
    monkeypatch.setattr(processes, "PARALLEL_FROM", 1)
    monkeypatch.setattr(processes, "default_jobs", lambda: 2)
    split = analyse_store(hostless)
    assert calls == [2]
    assert encode_analysis(split) == encode_analysis(one)
    done = _analyze(str(hostless), "--jobs", "1", "--json", str(tmp_path / "r.json"))
    assert done.returncode in (0, 1), done.stderr
    write_analysis_json(one, str(tmp_path / "crawl.json"))
    assert (tmp_path / "crawl.json").read_bytes() == (tmp_path / "r.json").read_bytes()


@pytest.fixture(scope="module")
def hostless_dataset(hostless, tmp_path_factory) -> Path:
    from analysis.cli import main

    folder = tmp_path_factory.mktemp("hostless-ds") / "ds"
    assert main(["export", str(hostless), "--parquet", str(folder), "--partitions", "4",
                 "-q"]) == 0
    return folder


def test_a_datasets_hosts_are_counted_as_its_stores(hostless, hostless_dataset):
    from analysis.engine.shards import dataset_host_counts

    assert dataset_host_counts(hostless_dataset) == host_counts(hostless)


def test_a_dataset_in_processes_equals_one_process(hostless, hostless_dataset, tmp_path):
    """A Parquet dataset is cut once into a file per group of hosts (exchanges without a host
    with their URL's host), which the workers read: what they find is what one process finds
    on the dataset, and on the store it came from; the cut files are gone afterwards."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    outputs = {}
    for name, source, jobs in (("one", hostless_dataset, "1"), ("two", hostless_dataset, "2"),
                               ("store", hostless, "1")):
        out = tmp_path / name
        out.mkdir()
        done = subprocess.run(
            [sys.executable, "-m", "analysis", "analyze", str(source), "--jobs", jobs,
             "--json", str(out / "r.json"), "--csv", str(out / "csv"), "--limit", "100"],
            capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
        assert done.returncode in (0, 1), done.stderr
        outputs[name] = (done.stdout, (out / "r.json").read_bytes(),
                         *((out / "csv" / f"{n}.csv").read_bytes()
                           for n in ("resources", "findings", "hosts")))
    assert outputs["two"] == outputs["one"] == outputs["store"]
    assert b'"identifier"' in outputs["one"][1]
    assert not list(tmp_path.glob("etagwatch-shards-*"))
