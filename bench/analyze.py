"""Time `etagwatch analyze STORE` as a user runs it (a child process: load, detectors, terminal
text, JSON or CSV), against a contender run in the same invocation: the code of another commit
(default: 6dfe032, main before issue 16's analyze work), extracted with `git archive` into a
temporary folder and run with the same Python. Every figure is a ratio to the contender's.

Stores of synthetic exchanges (bench/synthetic.py, with the header lists, dates and URL parts a
real ingest stores) are built once into --stores and reused; building is not timed. Peak memory
is the child's own maximum resident set, CPU time its user + system time (os.wait4): on a
shared machine CPU seconds say more than wall seconds.

usage: python bench/analyze.py [SIZE ...] [--runs N] [--contender REF] [--only json,csv,report]
                               [--new-arg=--jobs=1 ...]
       (default sizes: 100000 1000000; outputs: json csv)
Targets (issue 16): 1M exchanges in at most 15 s and 2 GB, 100k in at most 2 s; --csv in the same
budget; `report` on a 1M store within 60 s.
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

import psutil
from synthetic import as_stored, synthetic, write_store

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "json": lambda store, out: ["analyze", str(store), "--json", str(out / "out.json"), "-q"],
    "csv": lambda store, out: ["analyze", str(store), "--csv", str(out / "csv"), "-q"],
    "report": lambda store, out: ["report", str(store), "-o", str(out / "report.html"), "-q"],
}


def extract(ref: str, into: Path) -> Path:
    """The ``analysis`` package and the report notebook of commit ``ref``, under ``into``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "analysis", "notebooks"],
                             check=True, capture_output=True).stdout
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def timed(code: Path, argv: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak MB) of `python -m analysis ARGV` with ``code`` first on
    the path (``timed_code``)."""
    return timed_code(code, ["-m", "analysis", *argv])


def timed_code(code: Path, argv: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak MB) of `python ARGV` with ``code`` first on the path.
    CPU: user + system of the child and the children it waited for (os.wait4). Peak: the
    largest sum of resident sets over the child and its descendants (the store reader runs in
    a process of its own), sampled every 50 ms, or the child's own maximum if larger."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *argv], env=env, cwd=code,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tree_peak = [0]
    done = threading.Event()
    sampler = threading.Thread(target=_sample_tree, args=(proc.pid, tree_peak, done), daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{code}: {' '.join(argv)} failed ({proc.returncode}): {err[-2000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, max(usage.ru_maxrss / 1024, tree_peak[0] / 2**20)


def _sample_tree(pid: int, peak: list[int], done: threading.Event) -> None:
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return
    while not done.is_set():
        total = 0
        try:
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
        except psutil.Error:
            return
        peak[0] = max(peak[0], total)
        done.wait(0.05)


def store_of(n: int, folder: Path) -> Path:
    """The store of ``n`` synthetic exchanges (built once), read through once so that neither
    side of a comparison pays for a cold page cache."""
    path = folder / f"synthetic-{n}.sqlite"
    if not path.exists():
        print(f"building {path} ...", file=sys.stderr, flush=True)
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        write_store(as_stored(synthetic(n)), tmp).rename(path)
    with path.open("rb") as fh:
        while fh.read(1 << 24):
            pass
    return path


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[100_000, 1_000_000])
    ap.add_argument("--runs", type=int, default=1, help="runs of each side per size (alternated)")
    ap.add_argument("--contender", default="6dfe032", help="git commit of the contender")
    ap.add_argument("--only", default="json,csv", help="comma-separated: json, csv, report")
    ap.add_argument("--new-arg", action="append", default=[], metavar="ARG",
                    help="an argument for this code's side only, e.g. --new-arg=--jobs=1 "
                    "(the contender may not know it); repeatable")
    ap.add_argument("--stores", type=Path, default=Path(tempfile.gettempdir()) / "etagwatch-bench",
                    help="folder for the synthetic stores (reused across runs)")
    args = ap.parse_args(argv)
    args.stores.mkdir(parents=True, exist_ok=True)
    print(f"{'exchanges':>10} {'output':>6} {'run':>3} {'new s':>7} {'old s':>7} {'ratio':>6} "
          f"{'new cpu':>7} {'old cpu':>7} {'ratio':>6} {'new MB':>7} {'old MB':>7} {'ratio':>6} "
          f"{'B/exch':>7}")
    with tempfile.TemporaryDirectory(prefix="etagwatch-bench-") as tmp:
        old = extract(args.contender, Path(tmp) / "old")
        for n in args.sizes:
            store = store_of(n, args.stores)
            for what in args.only.split(","):
                for run in range(1, args.runs + 1):
                    times = {}
                    for side, code in (("new", ROOT), ("old", old)):
                        out = Path(tmp) / side
                        out.mkdir(exist_ok=True)
                        extra = args.new_arg if side == "new" else []
                        times[side] = timed(code, [*COMMANDS[what](store, out), *extra])
                    (ns, nc, nm), (os_, oc, om) = times["new"], times["old"]
                    print(f"{n:>10} {what:>6} {run:>3} {ns:>7.2f} {os_:>7.2f} {os_ / ns:>5.2f}x "
                          f"{nc:>7.2f} {oc:>7.2f} {oc / nc:>5.2f}x "
                          f"{nm:>7.0f} {om:>7.0f} {om / nm:>5.2f}x {nm * 2**20 / n:>7.0f}",
                          flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
