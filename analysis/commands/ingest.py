"""`etagwatch ingest PATH... [--db FILE] [--client NAME]`: captures into the store."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from analysis.cli import CliError, info, show_progress, warn
from analysis.commands.export import PARTITIONS_HELP, partitions
from analysis.dataset import is_dataset
from analysis.exchange import DEFAULT_BACKEND_HEADERS
from analysis.ingest import find_captures, format_summary, ingest_paths, warnings
from analysis.readers import CAPTURE_SUFFIXES
from analysis.store import Store, StoreError

DEFAULT_DB = "etagwatch.sqlite"

EPILOG = """\
Reads HAR files (.har, .har.gz; Chrome, Firefox, Safari, mitmproxy, Charles, Fiddler) and
mitmproxy flow files (mitmdump -w), or folders of them, into the SQLite store.

Privacy: query values, credential headers (Cookie, Authorization, names with token, key,
secret, auth, session, csrf, ...) and URL userinfo are stored as keyed hashes or dropped;
bodies never (README: Privacy). Safe to re-run: a file already stored is not stored twice,
and an ingest killed midway is replaced, not doubled, by the next run of the same file.

Output: the summary on stdout (entries are numbered from 0); unreadable files, notes and
files already ingested on stderr; a progress bar only when stderr is a terminal.

Exit status: 0 every entry of every file was stored (entries that are no HTTP exchange, such
as data: URLs, are counted as "not HTTP" and are fine); 1 some entries or files were skipped
(the summary and the store's 'skipped' and 'sources' tables say which and why); 2 usage error
(no such path, no capture in a folder, unusable store or one of a newer etagwatch).

examples:
  etagwatch ingest ~/captures --db site.sqlite
  etagwatch ingest profile-a.har profile-b.har.gz --client research-1
"""


def default_jobs() -> int:
    """2 when two CPUs are free for us (reading and writing overlap), else 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return min(2, cpus)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ingest",
        help="read HAR and mitmproxy flow files into the store",
        description="Read captures into the etagwatch store (SQLite).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="HAR / flow files or folders")
    p.add_argument("--db", help=f"store file (default: {DEFAULT_DB})")
    p.add_argument("--dataset", metavar="DIR",
                   help="write a Parquet dataset (a folder or an s3:// / gs:// URL, appended "
                   "to) instead of a store; "
                   "files the dataset holds already are not stored twice (see `etagwatch "
                   "export --help`)")
    p.add_argument("--partitions", type=partitions, default=None, metavar="N",
                   help=f"with --dataset: {PARTITIONS_HELP}")
    p.add_argument(
        "--client",
        help="client/profile id for every exchange (default: each file its own: its path "
        "relative to the common root of the inputs, or its full path when an earlier run "
        "stored another file under that id)",
    )
    p.add_argument(
        "--force", action="store_true", help="re-read files whose bytes were ingested before"
    )
    p.add_argument(
        "--redact-validators",
        action="store_true",
        help="store ETag and date-validator values as keyed hashes (for sharing a store)",
    )
    p.add_argument(
        "--keep-query",
        action="store_true",
        help="store query values in clear (default: keyed hashes, names kept; a store keeps "
        "one setting, so this needs a store without exchanges or one made with it)",
    )
    p.add_argument(
        "--secret-header",
        action="append",
        default=[],
        metavar="PART",
        help="also store the values of headers whose name contains PART as keyed hashes "
        "(repeatable; remembered by the store; always: Cookie, Set-Cookie, Authorization and "
        "names containing token, key, secret, auth, session, csrf, xsrf, signature, "
        "password, credential)",
    )
    p.add_argument(
        "--backend-header",
        action="append",
        metavar="NAME",
        help="response header hinting at the backend (repeatable; 'x-backend*' matches a "
        "prefix; default: Server, Via, X-Served-By, X-Backend*, X-Cache, CDN pop headers)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="processes for large captures (16 MB or more in all): 1 = this one only; 2 = a "
        "second one writes the store while this one reads; more = also N-1 converting HAR "
        f"entries (default: {default_jobs()}, the smaller of 2 and the CPUs available)",
    )
    p.add_argument("--no-progress", action="store_true",
                   help="never show a progress bar (bars show only when stderr is a terminal)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise CliError(f"no such file or folder: {', '.join(missing)}")
    datasets = [str(p) for p in paths if is_dataset(p)]
    if datasets:
        raise CliError(f"{', '.join(datasets)}: an etagwatch Parquet dataset, not a capture "
                       "(analyze reads it; ingest --dataset adds captures to it)")
    if not any(find_captures(p) for p in paths):
        raise CliError(f"no capture found in {', '.join(map(str, paths))}: looked for files "
                       f"ending in {', '.join(CAPTURE_SUFFIXES)}")
    if args.dataset:
        return _into_dataset(args, paths)
    if args.partitions is not None:
        raise CliError("--partitions needs --dataset")
    return _ingest(args, paths, args.db or DEFAULT_DB, args.db or DEFAULT_DB)


def _into_dataset(args: argparse.Namespace, paths: list[Path]) -> int:
    """The ordinary ingest into a temporary store made for the dataset, then its export."""
    from analysis.dataset import DatasetError, Staging

    if args.db:
        raise CliError("--db and --dataset: choose one (etagwatch export writes a store as a "
                       "dataset)")
    try:
        with Staging(args.dataset, args.partitions) as staging:
            status = _ingest(args, paths, str(staging.store), args.dataset)
            result = staging.commit()
    except (DatasetError, StoreError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{args.dataset}: {exc}") from None
    info(args, f"{args.dataset}: wrote {result.rows} exchanges in {result.files} file(s)")
    return status


def _ingest(args: argparse.Namespace, paths: list[Path], db: str, name: str) -> int:
    try:
        store = Store(db)
    except (StoreError, OSError) as exc:
        raise CliError(str(exc)) from None
    try:
        report = ingest_paths(
            paths,
            store,
            client=args.client,
            progress=show_progress(args),
            force=args.force,
            backend_headers=tuple(args.backend_header or DEFAULT_BACKEND_HEADERS),
            redact_validators=args.redact_validators,
            jobs=max(1, args.jobs if args.jobs is not None else default_jobs()),
            keep_query=args.keep_query,
            secret_headers=args.secret_header,
        )
    except StoreError as exc:
        raise CliError(str(exc)) from None
    finally:
        store.close()
    problems, notes = warnings(report, verbose=args.verbose)
    for line in problems:
        warn(line)
    for line in notes:
        info(args, f"note: {line}")
    if not args.quiet:
        print(format_summary(report, name, verbose=args.verbose))
    return report.exit_status
