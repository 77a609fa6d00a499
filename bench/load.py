"""Time `load_exchanges` on a store as analyze calls it (the detectors' columns), read by
connectorx in a child process (analysis.store_arrow) against the sqlite3 module's rows (the
contender: the same function with connectorx switched off), alternating in one invocation.
Each side runs in a process of its own; figures are wall seconds, CPU seconds of that process
and its children (the reader), and the peak resident set of the process tree.

Stores of synthetic exchanges (bench/synthetic.py) are built once into --stores and reused.

usage: python bench/load.py [SIZE ...] [--runs N]   (default: 1000000, 1 run)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from analyze import store_of, timed_code

_CHILD = """\
import sys
from analysis import store_arrow
from analysis.detectors import INPUT_COLUMNS
from analysis.store import load_exchanges
if sys.argv[2] == "sqlite3":
    store_arrow.available = lambda: False
frame = load_exchanges(sys.argv[1], [*INPUT_COLUMNS, "source_kind"])
assert len(frame) > 0
"""


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[1_000_000])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--stores", type=Path, default=Path(tempfile.gettempdir()) / "etagwatch-bench")
    args = ap.parse_args(argv)
    args.stores.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parent.parent
    print(f"{'exchanges':>10} {'run':>3} {'cx s':>7} {'sqlite3 s':>9} {'ratio':>6} {'cx cpu':>7} "
          f"{'sqlite3 cpu':>11} {'cx MB':>7} {'sqlite3 MB':>10}")
    for n in args.sizes:
        store = store_of(n, args.stores)
        for run in range(1, args.runs + 1):
            cx = timed_code(root, ["-c", _CHILD, str(store), "connectorx"])
            sq = timed_code(root, ["-c", _CHILD, str(store), "sqlite3"])
            print(f"{n:>10} {run:>3} {cx[0]:>7.2f} {sq[0]:>9.2f} {sq[0] / cx[0]:>5.2f}x "
                  f"{cx[1]:>7.2f} {sq[1]:>11.2f} {cx[2]:>7.0f} {sq[2]:>10.0f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
