"""Which inputs of analyze and report are stores and which are captures, and the checks both
make on a store before reading it, so the two commands say the same thing about the same file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.readers import SQLITE_MAGIC
from analysis.store import StoreError, open_for_reading

if TYPE_CHECKING:
    import pandas as pd

#: A file with one of these names is meant as a store: when it is not one, that is the error
#: (not "not a HAR").
STORE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


def is_sqlite(path: Path) -> bool:
    """A SQLite file, recognised by its header rather than its name."""
    try:
        with path.open("rb") as fh:
            return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def is_store_input(path: Path) -> bool:
    """Read as a store: a SQLite file, or a file named like one, unless it is an OpenWPM
    crawl database (a capture, ingested like a HAR)."""
    from analysis.readers.openwpm import is_openwpm

    return (path.is_file() and (path.suffix.lower() in STORE_SUFFIXES or is_sqlite(path))
            and not (is_sqlite(path) and is_openwpm(path)))


def split_inputs(paths: Iterable[Path | str]) -> tuple[list[Path], list[Path]]:
    """(stores, captures); FileNotFoundError naming the first missing path. Parquet dataset
    folders (``analysis.dataset``, recognised by their manifest) count as stores, and so do
    datasets at URLs (s3://, gs://: kept as text)."""
    from analysis.dataset import is_dataset
    from analysis.engine.paths import RemotePathError, filesystem, is_url

    urls = [str(p) for p in paths if is_url(p)]
    for url in urls:
        try:
            filesystem(url)
        except RemotePathError as exc:  # what to install, not "no dataset"
            raise FileNotFoundError(str(exc)) from None
        if not is_dataset(url):
            raise FileNotFoundError(f"{url}: no etagwatch dataset there (or it cannot be read)")
    paths = [Path(p) for p in paths if not is_url(p)]
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or directory")
    stores = [p for p in paths if is_store_input(p) or is_dataset(p)]
    return [*stores, *urls], [p for p in paths if p not in stores]  # type: ignore[list-item]


def check_store(path: Path) -> None:
    """StoreError or FileNotFoundError (one line naming the file) unless ``path`` is a store
    or dataset this version can read."""
    from analysis.dataset import DatasetError, dataset_files, is_dataset

    if is_dataset(path):
        try:
            dataset_files(path)
        except DatasetError as exc:
            raise StoreError(str(exc)) from None
        return
    open_for_reading(path).close()


def load_input(path: Path, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """The exchanges of a store or a dataset (``load_exchanges`` / ``load_dataset``), all
    columns or ``id`` and those of ``columns``; a dataset's problems come as StoreError, like a
    store's."""
    from analysis.dataset import DatasetError, is_dataset, load_dataset
    from analysis.store import load_exchanges

    if is_dataset(path):
        try:
            return load_dataset(path, columns)
        except DatasetError as exc:
            raise StoreError(str(exc)) from None
    return load_exchanges(path, columns)


def load_outcomes(path: Path) -> pd.DataFrame | None:
    """The probe outcomes a store or a dataset holds (``etagwatch probe --candidates``, carried
    into a dataset by `etagwatch export`); a dataset without any gives None. A dataset's
    problems come as StoreError, like a store's."""
    from analysis.dataset import DatasetError, is_dataset
    from analysis.dataset_outcomes import read_outcomes
    from analysis.store import load_probe_outcomes

    if is_dataset(path):
        try:
            return read_outcomes(path)
        except DatasetError as exc:
            raise StoreError(str(exc)) from None
    return load_probe_outcomes(path)


__all__ = ["STORE_SUFFIXES", "StoreError", "check_store", "is_sqlite", "is_store_input",
           "load_input", "split_inputs"]


class InputError(Exception):
    """No input could be read: one line for the user (exit 2)."""


def ingest_captures(captures: list[Path], db: Path, *, client: str | None, progress: bool,
                    quiet: bool = False, verbose: int = 0) -> None:
    """Ingest the capture inputs of analyze and report into ``db`` with the same messages:
    warnings for unreadable files and skipped entries on stderr, one informational line,
    InputError when not one capture among them could be read."""
    import sys

    from analysis.ingest import find_captures, ingest_paths, warnings
    from analysis.readers import CAPTURE_SUFFIXES
    from analysis.store import Store

    if not any(find_captures(p) for p in captures):
        raise InputError(f"no capture found in {', '.join(map(str, captures))}: looked for "
                         f"files ending in {', '.join(CAPTURE_SUFFIXES)}")
    try:
        store = Store(db)
    except (StoreError, OSError) as exc:
        raise InputError(str(exc)) from None
    try:
        report = ingest_paths(captures, store, client=client, progress=progress)
    except StoreError as exc:
        raise InputError(str(exc)) from None
    finally:
        store.close()

    def warn(line: str) -> None:
        print(f"etagwatch: warning: {line}", file=sys.stderr)

    problems, notes = warnings(report, verbose=verbose)
    for line in problems:
        warn(line)
    broken = report.broken
    limit = None if verbose else 20
    for skip in broken[:limit]:
        warn(f"{skip.file} entry {skip.entry_index}: {skip.reason}")
    if limit is not None and len(broken) > limit:
        warn(f"{len(broken) - limit} more skipped entries (-v lists them; the store's "
             "'skipped' table has them all)")
    if report.read == 0 and not report.duplicates:
        raise InputError("no readable capture among the inputs")
    if not quiet:
        for line in notes:
            print(f"etagwatch: note: {line}", file=sys.stderr)
        failed = f", {report.failed} unreadable" if report.failed else ""
        again = f", {len(report.duplicates)} already stored" if report.duplicates else ""
        print(f"etagwatch: {db}: stored {report.stored} exchanges from {report.read} of "
              f"{report.files} file(s) read{failed}{again}", file=sys.stderr)
