"""What readers yield besides exchanges: skipped entries, notes, and whole-file errors."""

from __future__ import annotations

from typing import NamedTuple


class Skip(NamedTuple):
    """An entry that was not stored, where it is and why."""

    file: str
    entry_index: int | None
    reason: str


class Note(NamedTuple):
    """Something the user should know about a file that is not a skip (a decision taken)."""

    file: str
    message: str


class FileError(NamedTuple):
    """A file that could not be read (at all, or from some point on)."""

    file: str
    message: str


class ReadError(Exception):
    """A file is not a HAR / flow file, or breaks off; readers raise it after yielding what
    they could read."""

    def __init__(self, file: str, message: str) -> None:
        super().__init__(f"{file}: {message}")
        self.file = file
        self.message = message
