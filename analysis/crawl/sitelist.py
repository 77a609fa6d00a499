"""The sites a crawl visits: URLs on the command line, a file of URLs (one a line, ``#``
comments), or a Tranco-style CSV (``rank,domain``, visited as ``https://domain/``)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit


class SiteListError(ValueError):
    """A site list that cannot be read: the message names the file and line."""


def normalise(text: str, where: str) -> str:
    """A bare domain becomes ``https://domain/``; a URL must be http(s) with a host."""
    text = text.strip()
    if "://" not in text:
        text = f"https://{text}/"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as exc:
        raise SiteListError(f"{where}: {text!r} is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SiteListError(f"{where}: {text!r} is not an http(s) URL with a host")
    if not parts.path:
        text = parts._replace(path="/").geturl()
    return text


def _csv_rows(path: Path, lines: list[str]) -> Iterable[tuple[str, str]]:
    for number, row in enumerate(csv.reader(lines), 1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) < 2:
            raise SiteListError(f"{path}:{number}: expected 'rank,domain', got {','.join(row)!r}")
        rank, domain = row[0].strip(), row[1].strip()
        if number == 1 and not rank.isdigit():  # a header line
            continue
        if not rank.isdigit():
            raise SiteListError(f"{path}:{number}: rank {rank!r} is not a number")
        yield f"{path}:{number}", domain


def read_file(path: Path, limit: int | None = None) -> list[str]:
    """URLs of one file; a CSV when its first entry has a comma."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise SiteListError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SiteListError(f"{path}: not a UTF-8 text file") from None
    entries = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if entries and "," in entries[0]:
        rows: Iterable[tuple[str, str]] = _csv_rows(path, lines)
    else:
        rows = ((f"{path}:{n}", ln) for n, ln in enumerate(lines, 1)
                if ln.strip() and not ln.lstrip().startswith("#"))
    out: list[str] = []
    for where, text in rows:
        if limit is not None and len(out) >= limit:
            break
        out.append(normalise(text, where))
    return out


def read_sites(items: Sequence[str], limit: int | None = None) -> list[str]:
    """Every argument is a URL (it has ``://``) or a file; duplicates are dropped, order kept.
    ``limit`` keeps the first N sites (a Tranco top-N)."""
    sites: list[str] = []
    for item in items:
        if "://" in item:
            sites.append(normalise(item, "argument"))
        elif Path(item).is_file():
            sites += read_file(Path(item), None if limit is None else limit - len(sites))
        else:
            raise SiteListError(f"{item}: no such file (and not a URL: give http(s)://...)")
    sites = list(dict.fromkeys(sites))
    return sites[:limit] if limit is not None else sites
