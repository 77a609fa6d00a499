"""Time analysis.detectors.run_all on synthetic captures of 10k .. 5M exchanges.

The capture (bench/synthetic.py) mixes static files, load-balanced files with per-backend
ETags, per-client tracker pixels, random-per-response ETags and resources without validators.
Generation is not timed.

usage: python bench/detect.py [SIZE ...]   (default: 10000 100000 1000000 5000000)
Target (BENCHMARKS.md): 1M exchanges in at most 15 s, near-linear growth.
"""

from __future__ import annotations

import resource
import sys
import time

from synthetic import synthetic  # tests import it from here too

from analysis.detectors import run_all


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [10_000, 100_000, 1_000_000, 5_000_000]
    print(f"{'exchanges':>10} {'seconds':>8} {'us/exch':>8} {'resources':>9} {'findings':>8} "
          f"{'identifier':>10} {'churn':>6} {'peak RSS':>9}")
    for n in sizes:
        df = synthetic(n)
        t = time.perf_counter()
        a = run_all(df)
        dt = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        v = a.summary["verdicts"]
        print(f"{n:>10} {dt:>8.2f} {1e6 * dt / n:>8.2f} {len(a.resources):>9} "
              f"{len(a.findings):>8} {v['identifier']:>10} {v['churn']:>6} {rss:>7.0f}MB", flush=True)
        del df, a


if __name__ == "__main__":
    main(sys.argv[1:])
