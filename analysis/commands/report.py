"""`etagwatch report`: execute the report notebook on captures or stores, write one HTML file."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from analysis.cli import CliError, at_least, info, ingest_inputs, show_progress
from analysis.engine.processes import PARALLEL_FROM, default_jobs

EPILOG = """\
examples:
  etagwatch report sample_captures -o report.html
  etagwatch report etagwatch.sqlite -o report.html --notebook report.ipynb
  etagwatch report captures/*.har --db captures.sqlite -o report.html --show-code
  etagwatch report etagwatch.sqlite -o - > report.html   # '-' is stdout, as everywhere
  etagwatch report crawl-results/ -o report.html        # from analyze --parquet crawl-results/

A result dataset (`etagwatch analyze ... --parquet DIR`, a folder or an s3:// / gs:// URL) is
reported as the analysis wrote it: resources, findings, hosts and the capture's counts come
from it, and only the exchanges of the identifier and churn resources are read (from the
dataset the analysis read, the partitions they hash to; from a store, their hosts): the way
to report on a capture too large for one process. Otherwise inputs are SQLite stores or
Parquet datasets (recognised by content) or HAR / mitmproxy flow files and folders, which are
ingested first, with analyze's messages: into --db when given, else into a temporary store.
Stores and datasets of 150,000 exchanges or more (or any, with --jobs 2 or more) are analysed
as analyze does, in worker processes of whole hosts, and the report loads the same few
exchanges as from a result dataset; smaller ones and --jobs 1 are loaded whole and analysed in
the notebook's process. A store of a newer etagwatch, a file that is not a store, or inputs of
which not one capture can be read stop the run with one line (exit 2).
The HTML is self-contained (figures embedded as PNG, no external scripts); code cells are
hidden unless --show-code. Progress (the section being executed) goes to stderr when it is a
terminal; -q drops it and the closing line.
exit status: 0 report written, 2 usage or input errors, or a report cell failed
(with --notebook the executed notebook is still written, traceback included).
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="write an HTML report (notebook) of captures or a store",
        description=(
            "Execute the report notebook on the inputs and write one self-contained HTML file: "
            "what was found, capture overview, validator adoption per host, identifiers (with "
            "each client's values and 304s), churn, the other non-stable verdicts, conformance."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="PATH_OR_DB",
                   help="HAR / flow files or folders, SQLite stores, Parquet datasets, or one "
                   "result dataset (analyze --parquet DIR)")
    p.add_argument("-o", "--output", type=Path, default=Path("report.html"), metavar="HTML",
                   help="HTML file to write, '-' for stdout (default: report.html)")
    p.add_argument("--notebook", type=Path, metavar="IPYNB",
                   help="also keep the executed notebook here")
    p.add_argument("--db", type=Path, metavar="FILE",
                   help="store HAR / flow inputs here (kept); default: a temporary store")
    p.add_argument("--client", metavar="NAME",
                   help="client id for every ingested exchange (default: each file its own: its path relative to the common root of the inputs, or its full path when an earlier run stored another file under that id)")
    p.add_argument("--ignore-param", action="append", default=[], metavar="NAME",
                   dest="ignore_params",
                   help="query parameter to ignore when grouping URLs into resources "
                        "(repeatable), as in analyze")
    p.add_argument("--jobs", type=at_least(1), default=None, metavar="N",
                   help="processes analysing stores side by side, as in analyze, each a "
                   "group of whole hosts; the report then loads only the exchanges of its "
                   "identifier and churn resources, not the whole capture (default: the CPUs "
                   f"available, {default_jobs()} here, for stores of {PARALLEL_FROM:,} "
                   "exchanges or more, else 1: this process)")
    p.add_argument("--title", default="etagwatch report", help="report title")
    p.add_argument("--max-rows", type=int, default=30, metavar="N",
                   help="rows per table before it is cut (default: 30)")
    p.add_argument("--show-code", action="store_true",
                   help="keep the notebook's code cells in the HTML (hidden by default)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar and no informational lines (errors still go to stderr)")
    p.set_defaults(run=run)


def _absolute(path: str | Path) -> str:
    from analysis.engine.paths import is_url

    return str(path) if is_url(path) else str(Path(path).resolve())


def run(args: argparse.Namespace) -> int:
    from analysis.engine.paths import is_url
    from analysis.engine.results import is_results
    from analysis.inputs import StoreError, check_store, is_sqlite, split_inputs
    from analysis.reporting.runner import ReportError, run_report

    to_stdout = str(args.output) == "-"
    results = [p for p in args.inputs if is_results(p)]
    if results and len(args.inputs) > 1:
        raise CliError(f"{results[0]}: a result dataset is reported on its own (one input)")
    inputs = [] if results else [Path(p) for p in args.inputs if not is_url(p)]
    try:
        stores, captures = split_inputs([*inputs, *(p for p in args.inputs if is_url(p))]) \
            if not results else ([], [])
        for store in stores:  # refused here, in one line, not in a notebook cell
            check_store(store)
        if args.db is not None and is_sqlite(args.db):
            check_store(args.db)
    except (FileNotFoundError, StoreError) as exc:
        raise CliError(str(exc)) from None
    for out in (None if to_stdout else args.output, args.notebook):
        if out is not None and not out.resolve().parent.is_dir():
            raise CliError(f"{out}: its folder does not exist")
    if args.max_rows < 1:
        raise CliError("--max-rows must be at least 1")
    with tempfile.TemporaryDirectory(prefix="etagwatch-report-") as tmp:
        if captures:  # ingested here, with analyze's messages; the notebook reads stores
            db = args.db or Path(tmp) / "report.sqlite"
            ingest_inputs(args, captures, db)
            stores.append(db)
        params = {
            "inputs": [_absolute(p) for p in results] if results
            else [_absolute(p) for p in dict.fromkeys(stores)],
            "db": None,
            "client": args.client,
            "ignore_params": list(args.ignore_params),
            "jobs": args.jobs,
            "title": args.title,
            "max_rows": args.max_rows,
        }
        html = Path(tmp) / "report.html" if to_stdout else args.output
        try:
            run_report(params, html, notebook_path=args.notebook, show_code=args.show_code,
                       progress=show_progress(args))
        except ReportError as exc:
            raise CliError(str(exc)) from exc
        if to_stdout:
            sys.stdout.write(html.read_text(encoding="utf-8"))
            return 0
    kept = f" (executed notebook: {args.notebook})" if args.notebook else ""
    info(args, f"report written to {args.output}{kept}")
    return 0
