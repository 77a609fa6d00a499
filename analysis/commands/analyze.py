"""`etagwatch analyze PATH_OR_DB... [--db FILE] [--json FILE|-] [--csv DIR] [--fail-on ...]`:
ingest captures, run every detector, report in the terminal, JSON and CSV."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from analysis.cli import CliError, at_least, ingest_inputs, show_progress
from analysis.engine.paths import RemotePathError
from analysis.engine.processes import PARALLEL_FROM, default_jobs
from analysis.inputs import STORE_SUFFIXES, split_inputs

DEFAULT_DB = "etagwatch.sqlite"
FAIL_ON = ("identifier", "likely-identifier", "churn", "changed", "unstable", "undetermined",
           "conformance", "error", "warning")

DESCRIPTION = """\
Find what HTTP validators (ETag, Last-Modified; RFC 9110) do in captured traffic:

  identifier         a server hands each client its own value and keeps answering 304:
                     the validator recognises the client (also by reflection: 304s to
                     values the server never issued)
  likely-identifier  the same pattern seen from one client only, or from several clients
                     that only ever got 304s (content never seen); the evidence says what
                     would confirm it
  churn              the same content under several values at once (load-balanced
                     backends with Apache inode ETags or unsynchronised mtimes):
                     revalidations fail and bodies are resent; the report names the cause,
                     backends and cost
  changed            values that followed each other (a content change or redeploy
                     between visits or captures): not churn, nothing wasted
  unstable           a new value on every response, never a 304
  undetermined       the capture cannot decide (one client, values nobody shared, a
                     digest-shaped value no body was compared with): the evidence says what
                     would settle it (a second profile, `etagwatch probe URL`)
  stable             benign, on evidence: clients share the value, it is the body's
                     digest, or a server format whose fields match the response
  conformance        RFC 9110 violations: wrong or missing 304s, ignored If-Match (lost
                     updates), malformed ETag / Last-Modified, ... (one finding per exchange)

Every verdict carries its evidence (in the terminal report and, in full, in --json);
identifier and likely-identifier also their tracking scope (cross-site, per-site, unknown).
docs/verdicts.md states the evidence each verdict needs, what rules it out and an example."""

EPILOG = f"""\
inputs:
  HAR files, mitmproxy flow files and folders of them are ingested into the store (--db)
  first; files already stored are not stored twice. A SQLite file, or an input ending in
  {', '.join(STORE_SUFFIXES)}, is read as an existing store (a store of a newer etagwatch is
  refused: upgrade). The detectors then run over every
  exchange of the store(s), including captures ingested by earlier runs into the same --db.

output:
  a terminal report on stdout, worst first; --json FILE writes summary / hosts / resources /
  findings (--json - writes it to stdout and moves the terminal report to stderr); --csv DIR
  writes resources.csv, findings.csv and hosts.csv (evidence as JSON text); --parquet DIR
  writes the same tables as a result dataset (Parquet, evidence as JSON text), which
  `etagwatch report DIR` turns into the HTML report without the exchanges in memory.

engines:
  --engine pandas (default) analyses stores and Parquet datasets of 150,000 exchanges or
  more in --jobs worker processes (default: one per CPU), each taking groups of whole hosts
  of about 250,000 exchanges in turn: their memory follows the group, not the store, and the
  results (a row per resource and finding) are gathered here (1M exchanges peaked at 1.7 GB
  over all processes, 5M at 2.5 GB); they equal those of one process. A dataset is first cut
  once into a temporary file per group (its partitions hold every host). Smaller inputs and
  --jobs 1 analyse in this process (about 2.3 KB per exchange at its peak; BENCHMARKS.md,
  "Analyze end to end"). --engine dask runs the same detectors on a Dask
  cluster, a partition of whole hosts at a time, sized from the workers' memory limit:
  a LocalCluster (one worker per CPU) unless --scheduler names a running one. The JSON, CSV
  and terminal report are written from the result dataset (--parquet DIR, else a temporary
  one) row by row. Inputs: a Parquet dataset (`etagwatch export --parquet`, a folder or an
  s3:// / gs:// URL) is read by the workers; stores and captures are loaded here first.
  A single host with more exchanges than one worker can analyse stops the run (exit 2).

exit status:
  0  the analysis ran and found nothing listed in --fail-on (always, without --fail-on)
  1  something listed in --fail-on was found
  2  usage or input error: missing path, unusable store, no readable capture

examples:
  etagwatch analyze capture.har
      ingest one HAR into ./{DEFAULT_DB} and report
  etagwatch analyze sample_captures --db demo.sqlite --json demo-report.json
      a folder of HAR and flow files into its own store, with the JSON report
  etagwatch analyze site.sqlite --fail-on identifier,churn --ignore-param v --csv out/
      a stored capture in CI: exit 1 on trackers or churn, URLs grouped without ?v=
  etagwatch analyze crawl-dataset/ --engine dask --parquet crawl-results/ --json crawl.json
      a Parquet dataset on a LocalCluster; results as Parquet and streamed JSON
  etagwatch analyze s3://bucket/crawl --engine dask --scheduler tcp://head:8786 --parquet s3://bucket/results
      a dataset on S3 on a running cluster
"""


_limit = at_least(0)
_jobs = at_least(1)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="find ETag identifiers, validator churn and RFC 9110 conformance problems",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH_OR_DB",
                   help="HAR / mitmproxy flow files, folders of them, stores (*.sqlite) or "
                   "Parquet datasets (folders made by `etagwatch export`)")
    p.add_argument("--db", metavar="FILE",
                   help=f"store that captures are ingested into (default: ./{DEFAULT_DB})")
    p.add_argument("--json", metavar="FILE",
                   help="write the JSON report to FILE, '-' for stdout (default: none)")
    p.add_argument("--csv", metavar="DIR",
                   help="write resources.csv, findings.csv, hosts.csv into DIR (default: none)")
    p.add_argument("--parquet", metavar="DIR",
                   help="also write resources, findings and hosts as Parquet into DIR (a "
                   "folder or an s3:// / gs:// URL; a result dataset that `etagwatch report DIR` "
                   "and Spark or DuckDB read; replaced when it exists) (default: none)")
    p.add_argument("--fail-on", default="", metavar="LIST",
                   help="exit 1 when any of these comma-separated items is found: "
                   f"{', '.join(FAIL_ON)}; conformance = any error finding (default: none)")
    p.add_argument("--ignore-param", action="append", default=[], metavar="NAME",
                   help="query parameter to ignore when grouping URLs into resources, e.g. "
                   "cache busters like _ or v (repeatable; default: none)")
    p.add_argument("--client", metavar="ID",
                   help="client id for every ingested exchange (default: each file its own: its path relative to the common root of the inputs, or its full path when an earlier run stored another file under that id)")
    p.add_argument("--engine", choices=("pandas", "dask"), default="pandas",
                   help="pandas: this machine, in --jobs processes (default); dask: the same "
                   "detectors on a Dask "
                   "cluster, partition by partition of whole hosts (a LocalCluster unless "
                   "--scheduler), for datasets larger than one machine's memory")
    p.add_argument("--jobs", type=_jobs, default=None, metavar="N",
                   help="with --engine pandas: processes analysing stores side by side, each "
                   "a group of whole hosts (same results as one process; memory shared out, "
                   "not multiplied); 1 = this process only (default: the CPUs available, "
                   f"{default_jobs()} here, for stores and datasets of {PARALLEL_FROM:,} exchanges or more, "
                   "else 1)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="with --engine dask: an existing cluster (tcp://host:8786)")
    p.add_argument("--limit", type=_limit, default=15, metavar="N",
                   help="resources / rules / hosts listed per section of the terminal report "
                   "(default: 15; the JSON and CSV hold all)")
    p.set_defaults(run=run)


def _fail_on(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in FAIL_ON and t != "none"]
    if bad:
        raise CliError(f"--fail-on: unknown {', '.join(bad)} (choose from {', '.join(FAIL_ON)})")
    return [t for t in items if t != "none"]


def _input_stores(args: argparse.Namespace) -> list[Path]:
    """The stores (and datasets) to analyse: those given, plus --db with the captures given
    ingested into it first."""
    try:
        stores, captures = split_inputs(args.paths)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from None
    if captures:
        db = Path(args.db or DEFAULT_DB)
        ingest_inputs(args, captures, db)
        stores.append(db)
    elif args.db:
        stores.append(Path(args.db))
    return list(dict.fromkeys(stores))


def _outcomes(stores: list[Path]):  # type: ignore[no-untyped-def]
    """The probe outcomes the stores hold, as one frame, or None."""
    import pandas as pd

    from analysis.inputs import load_outcomes
    from analysis.store import StoreError

    try:
        found = [o for o in map(load_outcomes, stores) if o is not None and not o.empty]
    except (StoreError, FileNotFoundError) as exc:  # names the file
        raise CliError(str(exc)) from None
    return pd.concat(found, ignore_index=True) if found else None


def _load(stores: list[Path]):  # type: ignore[no-untyped-def]
    """(exchanges of every store, the probe outcomes they hold or None)."""
    import pandas as pd

    from analysis.detectors import INPUT_COLUMNS
    from analysis.inputs import load_input
    from analysis.store import StoreError

    frames = []
    for db in stores:
        try:
            # what the detectors read, and the source kinds a result dataset's overview counts
            frames.append(load_input(db, [*INPUT_COLUMNS, "source_kind"]))
        except (StoreError, FileNotFoundError) as exc:  # names the file
            raise CliError(str(exc)) from None
        except OSError as exc:
            raise CliError(f"{db}: {exc}") from None
    frames = [f for f in frames if not f.empty]
    settled = _outcomes(stores)
    if not frames:
        return pd.DataFrame(), settled
    return (pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]), settled


def found(analysis, wanted: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    """Which --fail-on items the analysis contains."""
    verdicts = analysis.summary["verdicts"]
    sev = analysis.summary["findings"]
    hits = [w for w in wanted if verdicts.get(w, 0) > 0]
    if "conformance" in wanted and sev.get("error", 0) > 0:
        hits.append("conformance")
    hits += [w for w in ("error", "warning") if w in wanted and sev.get(w, 0) > 0]
    return hits


def run(args: argparse.Namespace) -> int:
    from analysis.detectors import run_all
    from analysis.detectors.settled import settle

    wanted = _fail_on(args.fail_on)
    if args.engine == "dask":
        if args.jobs is not None:
            raise CliError("--jobs is for --engine pandas (a Dask cluster has its own workers)")
        return _run_dask(args, wanted)
    stores = _input_stores(args)
    split = _split_stores(args, stores)
    if split is not None:
        return _run_processes(args, wanted, stores, *split)
    exchanges, outcomes = _load(stores)
    if exchanges.empty:
        raise CliError("no exchanges to analyse (the inputs held no readable entries)")
    # handed over, not kept (run_all's sorted copy replaces the loaded frame in memory),
    # unless --parquet needs the exchanges' counts after the detectors
    kept = exchanges if args.parquet else None
    loaded = [exchanges]
    del exchanges
    return _report(args, wanted, lambda: settle(
        run_all(loaded.pop(), ignore_params=args.ignore_param), outcomes), kept)


def _split_stores(args: argparse.Namespace, stores: list[Path]):  # type: ignore[no-untyped-def]
    """(the stores' host counts, jobs) when ``stores`` (SQLite stores or Parquet datasets) are
    to be analysed in several processes (--jobs, or enough exchanges for the default); None
    for one process."""
    from analysis.engine.processes import plan
    from analysis.store import StoreError

    try:
        split = plan(stores, args.jobs)
    except (StoreError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from None
    if split is not None and not any(sum(c.sizes.values()) for c in split[0]):
        raise CliError("no exchanges to analyse (the inputs held no readable entries)")
    return split


def _run_processes(args: argparse.Namespace, wanted: list[str], stores: list[Path],
                   counts: list, jobs: int) -> int:
    """The pandas engine over stores, in ``jobs`` processes of whole hosts."""
    from analysis.detectors import INPUT_COLUMNS
    from analysis.engine.processes import WorkerError, run_all_processes
    from analysis.store import StoreError

    outcomes = _outcomes(stores)
    results: dict = {}

    def analyse():  # type: ignore[no-untyped-def]
        try:
            analysis, overview, per_host = run_all_processes(
                stores, jobs=jobs, columns=[*INPUT_COLUMNS, "source_kind"], counts=counts,
                ignore_params=args.ignore_param, outcomes=outcomes,
                overview=bool(args.parquet), progress=show_progress(args))
        except (WorkerError, StoreError) as exc:
            raise CliError(str(exc)) from None
        results.update(overview=overview, outcomes=per_host)
        return analysis

    return _report(args, wanted, analyse, None, overview=results)


def _run_dask(args: argparse.Namespace, wanted: list[str]) -> int:
    """--engine dask: a dataset (folder or URL) is read by the workers partition by
    partition; other inputs are loaded here first, as the pandas engine loads them. The
    results go to a result dataset (--parquet, else a temporary folder), from which the
    reports are written row by row."""
    import tempfile

    from analysis.dataset import DatasetError, is_dataset

    try:
        from analysis.engine.dask_engine import (
            HostTooLarge,
            analyse_to_results,
            dataset_frame,
            start_client,
        )
        from analysis.engine.results import ResultsError
    except ImportError as exc:
        raise CliError(f"--engine dask needs dask and distributed ({exc.name} is missing): "
                       "pip install 'dask[distributed]'") from None
    try:
        client = start_client(args.scheduler)
    except OSError as exc:
        raise CliError(f"--scheduler {args.scheduler}: {exc}") from None
    with client, tempfile.TemporaryDirectory(prefix="etagwatch-results-") as tmp:
        if not args.quiet:
            print(f"etagwatch: Dask dashboard: {client.dashboard_link}", file=sys.stderr)
        if len(args.paths) == 1 and is_dataset(args.paths[0]):
            try:
                frame, sources = dataset_frame(args.paths[0]), [_absolute(args.paths[0])]
            except DatasetError as exc:
                raise CliError(str(exc)) from None
            outcomes = _outcomes([args.paths[0]])  # those `export` carried from the store
        else:
            stores = _input_stores(args)
            frame, outcomes = _load(stores)
            if frame.empty:
                raise CliError("no exchanges to analyse (the inputs held no readable entries)")
            sources = [_absolute(p) for p in stores]
        target = args.parquet or f"{tmp}/results"
        try:
            analyse_to_results(frame, target, ignore_params=args.ignore_param, client=client,
                               progress=show_progress(args), sources=sources,
                               outcomes=outcomes)
        except (HostTooLarge, ResultsError, RemotePathError, DatasetError) as exc:
            raise CliError(str(exc)) from None
        status = _report_results(args, wanted, target)
        cluster = getattr(client, "cluster", None)
    if cluster is not None and not args.scheduler:
        cluster.close()
    return status


def _absolute(path: str | Path) -> str:
    from analysis.engine.paths import is_url

    return str(path) if is_url(path) else str(Path(path).resolve())


def _stores_read(args: argparse.Namespace) -> list[str]:
    """The stores (or datasets) ``_input_stores`` gave, without ingesting again, for the
    manifest of a result dataset written after the analysis."""
    stores, captures = split_inputs(args.paths)
    if captures or args.db:
        stores.append(Path(args.db or DEFAULT_DB))
    return [str(p) for p in dict.fromkeys(stores)]


def _report_results(args: argparse.Namespace, wanted: list[str], target: str) -> int:
    """The terminal report, --json and --csv from a result dataset, row by row."""
    from analysis.engine.results import stream_csv, stream_json, terminal_analysis
    from analysis.report_text import render

    analysis = terminal_analysis(target, args.limit)
    if args.json:
        try:
            if args.json == "-":
                sys.stdout.flush()
                stream_json(target, sys.stdout.buffer)
            else:
                with open(args.json, "wb") as fh:
                    stream_json(target, fh)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise CliError(f"--json {args.json}: {exc.strerror}") from None
    if args.csv:
        try:
            stream_csv(target, args.csv)
        except OSError as exc:
            raise CliError(f"--csv {args.csv}: {exc.strerror}") from None
    print(render(analysis, limit=args.limit), file=sys.stderr if args.json == "-" else sys.stdout)
    hits = found(analysis, wanted)
    if hits:
        print(f"etagwatch: found {', '.join(hits)} (--fail-on)", file=sys.stderr)
        return 1
    return 0


def _write_parquet(args: argparse.Namespace, analysis, exchanges,  # type: ignore[no-untyped-def]
                   overview: dict | None = None) -> None:
    """--parquet DIR with the pandas engine: the result dataset in one part; the overview
    counted from ``exchanges``, or given (``overview`` and ``outcomes``) by the processes
    that had them."""
    from analysis.engine.overview import host_outcomes, overview_counts
    from analysis.engine.results import ResultsError, write_analysis

    if exchanges is not None:
        overview = {"overview": {**overview_counts(exchanges),
                                 "sources": int(exchanges["source"].nunique())},
                    "outcomes": host_outcomes(exchanges)}
    assert overview is not None
    try:
        write_analysis(analysis, args.parquet, exchanges=[_absolute(p) for p in _stores_read(args)],
                       overview=overview["overview"], outcomes=overview["outcomes"])
    except (ResultsError, RemotePathError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"--parquet {args.parquet}: {exc}") from None


def _report(args: argparse.Namespace, wanted: list[str], analyse, exchanges,  # type: ignore[no-untyped-def]
            overview: dict | None = None) -> int:
    """Run ``analyse`` and write the terminal report, --json and --csv (and --parquet, its
    overview from ``exchanges`` or from ``overview``, filled by ``analyse``)."""
    from tqdm import tqdm

    from analysis.report_json import write_analysis_json
    from analysis.report_text import render

    steps = 2 + bool(args.json) + bool(args.csv) + bool(args.parquet)
    with tqdm(total=steps, desc="detectors", unit="step", file=sys.stderr, leave=False,
              disable=not show_progress(args)) as bar:
        analysis = analyse()
        bar.update()
        bar.set_description("report")
        text = render(analysis, limit=args.limit)
        bar.update()
        if args.json:
            bar.set_description("json")
            try:
                write_analysis_json(analysis, args.json)
            except BrokenPipeError:
                raise  # a closed pipe on stdout: quiet (analysis.cli)
            except OSError as exc:
                raise CliError(f"--json {args.json}: {exc.strerror}") from None
            bar.update()
        if args.csv:
            bar.set_description("csv")
            write_csv(analysis, Path(args.csv))
            bar.update()
        if args.parquet:
            bar.set_description("parquet")
            _write_parquet(args, analysis, exchanges, overview)
            bar.update()
    print(text, file=sys.stderr if args.json == "-" else sys.stdout)
    hits = found(analysis, wanted)
    if hits:
        print(f"etagwatch: found {', '.join(hits)} (--fail-on)", file=sys.stderr)
        return 1
    return 0


def write_csv(analysis, folder: Path) -> None:  # type: ignore[no-untyped-def]
    """resources.csv, findings.csv, hosts.csv; evidence columns as JSON text."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"--csv {folder}: {exc.strerror}") from None
    for name in ("resources", "findings", "hosts"):
        frame = getattr(analysis, name).copy()
        for col in frame.columns:  # evidence and other nested values as JSON text
            if frame[col].dtype != object:  # only object columns hold dicts and lists
                continue
            values = frame[col].tolist()
            if any(isinstance(v, dict | list) for v in values):
                frame[col] = [json.dumps(v, default=str) if isinstance(v, dict | list) else v
                              for v in values]
        frame.to_csv(folder / f"{name}.csv", index=False)
