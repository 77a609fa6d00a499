"""Which inputs of analyze and report are stores and which are captures, and the checks both
make on a store before reading it, so the two commands say the same thing about the same file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from analysis.store import StoreError, open_for_reading

SQLITE_MAGIC = b"SQLite format 3\x00"
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
    """Read as a store: a SQLite file, or a file named like one."""
    return path.is_file() and (path.suffix.lower() in STORE_SUFFIXES or is_sqlite(path))


def split_inputs(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """(stores, captures); FileNotFoundError naming the first missing path."""
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or directory")
    stores = [p for p in paths if is_store_input(p)]
    return stores, [p for p in paths if p not in stores]


def check_store(path: Path) -> None:
    """StoreError or FileNotFoundError (one line naming the file) unless ``path`` is a store
    this version can read."""
    open_for_reading(path).close()


__all__ = ["STORE_SUFFIXES", "StoreError", "check_store", "is_sqlite", "is_store_input",
           "split_inputs"]
