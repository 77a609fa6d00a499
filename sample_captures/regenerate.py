#!/usr/bin/env python3
"""Regenerate the sample captures in this folder from a fresh lab run.

Needs nginx, apache2, haproxy and chromium (Debian packages) and the project's venv:

    .venv/bin/python sample_captures/regenerate.py          # 3 profiles x 3 visits

Same as `etagwatch lab --capture sample_captures`. Ports and identifiers differ on every run,
so the files change each time; the verdicts in README.md do not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # importable without `pip install -e .`

from analysis.lab.samples import write_sample_captures  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=3)
    parser.add_argument("--visits", type=int, default=3)
    args = parser.parse_args()
    for path in write_sample_captures(HERE, profiles=args.profiles, visits=args.visits):
        print(f"{path.relative_to(HERE)}  {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
