"""`etagwatch export STORE --parquet DIR [--partitions N]`: the store as a Parquet dataset."""

from __future__ import annotations

import argparse

from analysis.cli import CliError, info, warn

EPILOG = """\
Writes the store's exchanges (the same columns and types, with their id) as Parquet files in
DIR, in hive-style partition folders part=NN/. Every exchange of a resource lands in one
partition: the partition is a stable hash of the URL without its query, so any --ignore-param
choice of analyze keeps a resource together (docs/schema.md: Parquet dataset). The store is read
in batches, whatever its size. Appending is safe: exporting the same store again adds only rows
stored since, files the dataset holds already are left out, and an export killed midway leaves
the dataset as it was. The store's probe outcomes (`etagwatch probe --candidates`) go along,
those an earlier export wrote left out, so `etagwatch analyze DIR` settles the same verdicts as
`etagwatch analyze STORE`: it reads the dataset as it reads a store.

Exit status: 0 the dataset holds the store's exchanges (also when nothing was new); 2 usage
error (no such store, a store of a newer etagwatch, a dataset of another store or with another
number of partitions, a URL whose filesystem package is missing).

DIR may be an fsspec URL: s3://bucket/path (pip install 'etagwatch[s3]'; credentials and
AWS_ENDPOINT_URL from the usual AWS variables) or gs://bucket/path (pip install gcsfs). The
files are written locally first and uploaded, the manifest last: one writer at a time per
remote dataset (object stores have no lock).

examples:
  etagwatch export site.sqlite --parquet site-dataset/
  etagwatch export site.sqlite --parquet site-dataset/ --partitions 16
  etagwatch export crawl.sqlite --parquet s3://bucket/crawl
"""


def partitions(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 4096:
        raise argparse.ArgumentTypeError("must be between 1 and 4096")
    return value


PARTITIONS_HELP = ("partitions of a new dataset (default: 64; an existing dataset keeps its "
                   "own)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="write the store as a partitioned Parquet dataset",
        description="Write the store's exchanges as a Parquet dataset (a folder).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("store", metavar="STORE", help="the etagwatch store (SQLite file)")
    p.add_argument("--parquet", required=True, metavar="DIR",
                   help="dataset folder or s3:// / gs:// URL (created when missing, appended "
                   "to otherwise)")
    p.add_argument("--partitions", type=partitions, default=None, metavar="N",
                   help=PARTITIONS_HELP)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from analysis.dataset import DatasetError, export_store
    from analysis.store import StoreError

    try:
        result = export_store(args.store, args.parquet, partitions=args.partitions)
    except (DatasetError, StoreError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{args.parquet}: {exc}") from None
    known = (f", {result.skipped_sources} file(s) left out (in the dataset already)"
             if result.skipped_sources else "")
    probed = f", {result.outcomes} probe outcome(s)" if result.outcomes else ""
    info(args, f"{args.parquet}: wrote {result.rows} exchanges in {result.files} file(s)"
               f"{probed}{known}")
    if result.held:
        warn(f"{args.store}: {result.held} exchanges not exported yet: they come at or after "
             "a file whose ingest is unfinished (running, or killed: ingest it again); export "
             "again once it is complete")
    return 0
