"""Write every report figure to PNG files, outside any notebook: for looking at the figures
while changing them, and for pasting single figures into a paper or a ticket.

    python -m analysis.reporting.render PATH_OR_DB... -o figures/
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from analysis.reporting import churn, conformance, hosts, identifiers, overview, style
from analysis.reporting.data import ReportData, load_report_data

SECTIONS = (overview, hosts, identifiers, churn, conformance)


def all_figures(data: ReportData) -> dict[str, Figure | None]:
    """Every figure of the report by name (None where the data has nothing to draw)."""
    out: dict[str, Figure | None] = {}
    for section in SECTIONS:
        out.update(section.figures(data))
    return out


def render_figures(data: ReportData, outdir: Path) -> list[Path]:
    """Write each drawable figure as ``<name>.png`` into ``outdir``; returns the files."""
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in all_figures(data).items():
        if fig is None:
            continue
        path = outdir / f"{name}.png"
        path.write_bytes(style.png_bytes(fig))
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.reporting.render",
                                     description="Write the report's figures as PNG files.")
    parser.add_argument("inputs", nargs="+", metavar="PATH_OR_DB")
    parser.add_argument("-o", "--outdir", type=Path, default=Path("figures"))
    parser.add_argument("--ignore-param", action="append", default=[], dest="ignore_params")
    args = parser.parse_args(argv)
    data = load_report_data(args.inputs, ignore_params=args.ignore_params)
    for path in render_figures(data, args.outdir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
