"""Time analysis.detectors.run_all on synthetic captures of 10k .. 5M exchanges.

The capture (bench/synthetic.py) mixes static files, load-balanced files with per-backend
ETags, per-client tracker pixels, random-per-response ETags and resources without validators,
in the dtypes a store loads (text as object, equal strings one object). Generation is not timed.

Each size runs in a child process per side: this code, and with --contender REF the code of
another commit (its ``analysis`` package from `git archive`), on the same frame. Peak memory is
the child's peak resident set during run_all (reset after generation through
/proc/self/clear_refs), the generated frame included; CPU seconds beside wall seconds.

usage: python bench/detect.py [SIZE ...] [--contender REF]   (default: 10000 100000 1000000 5000000)
Targets (issue 16): 5M exchanges in at most 40 s and 3 GB.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synthetic import as_loaded, synthetic  # tests import synthetic from here too

ROOT = Path(__file__).resolve().parent.parent


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(n: int) -> dict:
    """run_all on ``n`` synthetic exchanges in this process: figures as a dict."""
    from analysis.detectors import run_all

    df = as_loaded(synthetic(n))
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS from here on
    cpu, t = time.process_time(), time.perf_counter()
    a = run_all(df)
    dt, cpu = time.perf_counter() - t, time.process_time() - cpu
    v = a.summary["verdicts"]
    return {"seconds": dt, "cpu": cpu, "mb": _peak_mb(), "resources": len(a.resources),
            "findings": len(a.findings), "identifier": v["identifier"], "churn": v["churn"]}


def side(code: Path, n: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run([sys.executable, __file__, "--child", str(n)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[10_000, 100_000, 1_000_000, 5_000_000])
    ap.add_argument("--contender", help="git commit whose detectors run on the same frames")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child)))
        return
    print(f"{'exchanges':>10} {'code':>9} {'seconds':>8} {'cpu s':>7} {'us/exch':>8} "
          f"{'resources':>9} {'findings':>8} {'identifier':>10} {'churn':>6} {'peak MB':>8} "
          f"{'B/exch':>7}")
    with tempfile.TemporaryDirectory(prefix="etagwatch-detect-") as tmp:
        codes = {"this": ROOT}
        if args.contender:
            from analyze import extract

            codes[args.contender] = extract(args.contender, Path(tmp))
        for n in args.sizes:
            for name, code in codes.items():
                r = side(code, n)
                print(f"{n:>10} {name:>9} {r['seconds']:>8.2f} {r['cpu']:>7.2f} "
                      f"{1e6 * r['seconds'] / n:>8.2f} {r['resources']:>9} {r['findings']:>8} "
                      f"{r['identifier']:>10} {r['churn']:>6} {r['mb']:>8.0f} "
                      f"{r['mb'] * 2**20 / n:>7.0f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
