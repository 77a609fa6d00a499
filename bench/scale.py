"""The Dask engine against the pandas engine on synthetic Parquet datasets of 1M .. 30M exchanges.

Datasets are built straight as Parquet (the etagwatch dataset layout: manifest, part=NN/
folders by partition key) from bench/detect.py's ``synthetic``, in chunks of 500k exchanges
(each chunk its own resources on the same 500 hosts), so generation memory does not grow with
the size: four seeds are generated, later chunks reuse them with their URLs rewritten (SEEDS).
Chunks are kept in --data/chunks and hard-linked into each size's dataset, reused by later
runs. Sizes are rounded down to a multiple of 500k.

Each Dask run starts its own LocalCluster (--workers single-threaded worker processes, each
with --memory-limit) and times what `etagwatch analyze DIR --engine dask --json FILE` does:
the analysis into a result dataset, then the JSON streamed from it. A sampler thread reads the
RSS of this process and of every process it started every 0.2 s: peak of the largest worker,
peak of all of them together (client, scheduler, workers). Each pandas run is a child process
doing what `etagwatch analyze DIR --json FILE` does (load_dataset, run_all, encode the JSON),
its peak RSS sampled the same way; a child above --cap-gb is stopped and reported as such
(this machine's budget), not allowed to push the machine into swap.

usage: nice python bench/scale.py [--dask N ...] [--pandas N ...] [--data DIR]
       (default: --dask 1000000 10000000 30000000 --pandas 1000000 5000000)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detect import synthetic

from analysis.dataset import Manifest, arrow_schema, partition_of

CHUNK = 500_000


# -- datasets ---------------------------------------------------------------------------------

def _table(frame: pd.DataFrame) -> pa.Table:
    """The synthetic frame in the dataset's schema (columns it lacks as nulls)."""
    schema = arrow_schema()
    arrays = [pa.array(frame[f.name], type=f.type, from_pandas=True) if f.name in frame.columns
              else pa.nulls(len(frame), f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


#: Distinct generator seeds: chunk i is the synthetic capture of seed i % SEEDS with its URLs
#: moved to resources of its own (".example/<i>r..."): generating 500k exchanges takes about
#: 20 s here, rewriting a column with Arrow well under one.
SEEDS = 4


def _chunk(i: int, bases: dict[int, pa.Table], pool: Path, partitions: int) -> list[str]:
    """Chunk ``i`` written once into ``pool`` (shared by every dataset size): its files."""
    import pyarrow.compute as pc

    done = pool / f"chunk{i:03d}.done"
    if done.exists():
        return done.read_text().split()
    if i % SEEDS not in bases:
        frame = synthetic(CHUNK, seed=i % SEEDS + 1)
        frame.insert(0, "id", np.zeros(CHUNK, dtype=np.int64))
        bases[i % SEEDS] = _table(frame)
    base = bases[i % SEEDS]
    start = i * CHUNK
    urls = pc.replace_substring(base["url"], ".example/r", f".example/{i}r")
    table = base.set_column(base.schema.get_field_index("url"), "url", urls)
    table = table.set_column(0, "id", pa.array(np.arange(start + 1, start + CHUNK + 1)))
    at = table.schema.get_field_index("entry_index")
    table = table.set_column(at, "entry_index", pc.add(table["entry_index"], start))
    url_list = urls.to_pandas()
    numbers = {u: partition_of(u, partitions) for u in url_list.unique()}
    part = url_list.map(numbers).to_numpy()
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(partitions + 1))
    files = []
    for number in range(partitions):
        rows = order[bounds[number]:bounds[number + 1]]
        if len(rows):
            rel = f"part={number:02d}/gen{i:03d}-{number}.parquet"
            (pool / rel).parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table.take(rows), pool / rel, compression="zstd")
            files.append(rel)
    done.write_text("\n".join(files))
    return files


def build(n: int, folder: Path, pool: Path, partitions: int = 64) -> float:
    """A dataset of ``n`` synthetic exchanges (a multiple of CHUNK) at ``folder``, its files
    hard links to chunks in ``pool``; kept when already there."""
    manifest = Manifest.read(folder) if folder.exists() else None
    if manifest is not None and manifest.max_id == n:
        return 0.0
    t = time.perf_counter()
    bases: dict[int, pa.Table] = {}
    files: list[str] = []
    for i in range(max(1, n // CHUNK)):
        for rel in _chunk(i, bases, pool, partitions):
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            if not (folder / rel).exists():
                os.link(pool / rel, folder / rel)
            files.append(rel)
        print(f"  {(i + 1) * CHUNK:,} of {n:,}", file=sys.stderr, flush=True)
    Manifest(partitions=partitions, key="synthetic", max_id=n, files=files, sources=[],
             stores={}).write(folder)
    return time.perf_counter() - t


# -- memory sampling ----------------------------------------------------------------------------

class Sampler(threading.Thread):
    """Peak RSS of the largest descendant process and of this process plus all descendants."""

    def __init__(self, root: psutil.Process, include_root: bool = True) -> None:
        super().__init__(daemon=True)
        self.root, self.include_root = root, include_root
        self.peak_one = self.peak_total = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            sizes = []
            try:
                procs = self.root.children(recursive=True)
            except psutil.Error:
                procs = []
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    sizes.append(proc.memory_info().rss)
            own = self.root.memory_info().rss if self.include_root else 0
            self.peak_one = max(self.peak_one, max(sizes, default=0))
            self.peak_total = max(self.peak_total, own + sum(sizes))
            self.done.wait(0.2)

    def stop(self) -> None:
        self.done.set()
        self.join()


# -- runs -------------------------------------------------------------------------------------

def run_dask(folder: Path, workers: int, memory_limit: str) -> dict:
    from distributed import Client, LocalCluster

    from analysis.engine.dask_engine import analyse_to_results, dataset_frame
    from analysis.engine.results import read_manifest, stream_json

    sampler = Sampler(psutil.Process())
    sampler.start()
    import dask
    from dask.utils import parse_bytes

    from analysis.engine.dask_engine import worker_config

    with tempfile.TemporaryDirectory(prefix="scale-", dir=folder.parent) as tmp, \
            dask.config.set(worker_config(parse_bytes(memory_limit))), \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                         memory_limit=memory_limit, dashboard_address=":0",
                         local_directory=tmp) as cluster, Client(cluster) as client:
        t = time.perf_counter()
        analyse_to_results(dataset_frame(folder), f"{tmp}/results", client=client)
        analysed = time.perf_counter() - t
        with open(f"{tmp}/report.json", "wb") as fh:
            stream_json(f"{tmp}/results", fh)
        total = time.perf_counter() - t
        summary = read_manifest(f"{tmp}/results").summary
        json_mb = os.path.getsize(f"{tmp}/report.json") / 1e6
    sampler.stop()
    return {"seconds": total, "analyse": analysed, "worker": sampler.peak_one,
            "total": sampler.peak_total, "resources": summary["resources"],
            "findings": sum(summary["findings"].values()), "json_mb": json_mb}


def pandas_child(folder: str, out: str) -> None:
    """What `etagwatch analyze DIR --json FILE` does with the pandas engine."""
    from analysis.dataset import load_dataset
    from analysis.detectors import run_all
    from analysis.report_json import encode_analysis, write_json

    analysis = run_all(load_dataset(folder))
    write_json(encode_analysis(analysis), out)
    print(analysis.summary["resources"], sum(analysis.summary["findings"].values()))


def run_pandas(folder: Path, cap: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        t = time.perf_counter()
        child = subprocess.Popen([sys.executable, __file__, "--pandas-child", str(folder),
                                  f"{tmp}/report.json"], stdout=subprocess.PIPE, text=True)
        proc = psutil.Process(child.pid)
        peak, stopped = 0, False
        while child.poll() is None:
            try:
                peak = max(peak, proc.memory_info().rss)
            except psutil.Error:
                break
            if peak > cap:
                child.kill()
                stopped = True
                break
            time.sleep(0.1)
        out = child.communicate()[0].split()
        seconds = time.perf_counter() - t
    if stopped or child.returncode:
        return {"seconds": seconds, "worker": peak, "total": peak, "stopped": True}
    return {"seconds": seconds, "worker": peak, "total": peak, "resources": int(out[0]),
            "findings": int(out[1])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dask", type=int, nargs="*", default=[1_000_000, 10_000_000, 30_000_000])
    p.add_argument("--pandas", type=int, nargs="*", default=[1_000_000, 5_000_000])
    p.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "etagwatch-scale")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--memory-limit", default="2.5GiB", help="per Dask worker")
    p.add_argument("--cap-gb", type=float, default=6.5,
                   help="stop a pandas run whose RSS passes this (the machine's budget)")
    p.add_argument("--build-only", action="store_true", help="build the datasets, run nothing")
    p.add_argument("--pandas-child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.pandas_child:
        pandas_child(*args.pandas_child)
        return
    for n in sorted({*args.dask, *args.pandas}):
        took = build(n, args.data / f"synthetic-{n}", args.data / "chunks")
        if took:
            print(f"built synthetic-{n}: {took:.0f} s", flush=True)
    if args.build_only:
        return
    print(f"{'engine':<8} {'exchanges':>11} {'seconds':>8} {'us/exch':>8} {'peak worker':>12} "
          f"{'peak total':>11} {'bytes/exch':>10} {'resources':>10} {'findings':>9}", flush=True)
    runs = [("pandas", n) for n in args.pandas] + [("dask", n) for n in args.dask]
    for engine, n in sorted(runs, key=lambda r: (r[1], r[0])):
        folder = args.data / f"synthetic-{n}"
        r = (run_pandas(folder, args.cap_gb * 2**30) if engine == "pandas"
             else run_dask(folder, args.workers, args.memory_limit))
        note = " (stopped at the cap)" if r.get("stopped") else ""
        print(f"{engine:<8} {n:>11,} {r['seconds']:>8.1f} {1e6 * r['seconds'] / n:>8.1f} "
              f"{r['worker'] / 2**30:>10.2f}GB {r['total'] / 2**30:>9.2f}GB "
              f"{r['total'] / n:>10.0f} {r.get('resources', '-'):>10} "
              f"{r.get('findings', '-'):>9}{note}", flush=True)


if __name__ == "__main__":
    main()
