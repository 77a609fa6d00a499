"""Batch ingest: capture files and folders -> the store, with an account of what was skipped.

One file never stops the run: a file that is not a capture becomes one FileError line, a bad
entry one Skip, and everything readable is stored. Re-ingesting a file whose bytes were already
ingested (same sha256) is skipped unless ``force``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
from tqdm import tqdm

from analysis.dataset import MANIFEST, is_dataset
from analysis.exchange import DEFAULT_BACKEND_HEADERS, Exchange
from analysis.privacy import DEFAULT_PRIVACY, Privacy
from analysis.readers import CAPTURE_SUFFIXES, open_capture, sniff
from analysis.readers.openwpm import is_openwpm, is_openwpm_parquet, parquet_files
from analysis.readers.record import HOST
from analysis.readers.result import FileError, Note, ReadError, Skip
from analysis.store import SizeSeen, SourceBusy, SourceRow, Store

if TYPE_CHECKING:  # imported where used: its pipe handling is POSIX-only
    from analysis.writer_process import WriterProcess

#: Exit statuses of `etagwatch ingest`.
EXIT_OK, EXIT_SKIPPED, EXIT_USAGE = 0, 1, 2
#: A single file at least this large gets a progress bar even when it is the only one.
LARGE_FILE = 32 * 1024 * 1024
#: Below this many bytes of captures in all, extra processes cost more than they save.
PARALLEL_MIN_BYTES = 16 * 1024 * 1024
#: Most of the runs of HAR entries the writer process may convert besides storing (--jobs 2);
#: within it, it takes a run whenever its pipe runs low (analysis.writer_process), which
#: evens out the two processes' work (the reader converts the rest and counts all).
OFFLOAD_SHARE = 0.5
#: Read size for file digests.
DIGEST_BLOCK = 8 * 1024 * 1024


def not_http(skip: Skip) -> bool:
    """An entry that is no HTTP exchange (``data:`` and ``blob:`` URLs, a flow file's TCP or
    DNS flows): every Chrome HAR has some; nothing is wrong with the file."""
    return skip.reason.endswith(("no HTTP exchange", "not an HTTP exchange"))


@dataclass
class IngestReport:
    """What an ingest run did; ``exit_status`` is 0 when everything was read (entries that
    are no HTTP exchange do not count against it), else 1."""

    files: int = 0
    failed: int = 0  # files of which nothing could be read
    entries: int = 0
    stored: int = 0
    skipped: list[Skip] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (file, ingested as)
    clients: set[str] = field(default_factory=set)
    hosts: set[str] = field(default_factory=set)

    @property
    def exit_status(self) -> int:
        return EXIT_SKIPPED if (self.broken or self.errors) else EXIT_OK

    @property
    def broken(self) -> list[Skip]:
        """The skipped entries that are a problem (not those that are no HTTP exchange)."""
        return [s for s in self.skipped if not not_http(s)]

    @property
    def read(self) -> int:
        """Files read now, whole or up to a damage (not those ingested before)."""
        return self.files - self.failed - len(self.duplicates)

    @property
    def not_http(self) -> int:
        return sum(1 for s in self.skipped if not_http(s))

    def skip_reasons(self) -> Counter[str]:
        return Counter(s.reason for s in self.skipped)


def find_captures(path: Path) -> list[Path]:
    """Capture files: a file as given, or the capture files under a folder (sorted)."""
    if path.is_dir():
        if is_openwpm_parquet(path):
            return [path]
        entries = sorted(path.rglob("*"))  # one walk of the tree
        datasets = [m.parent for m in entries if m.name == MANIFEST and is_dataset(m.parent)]
        if path in datasets:  # etagwatch's own Parquet output: read as a store, not a capture
            return []
        crawls = [d for d in entries if d.is_dir() and is_openwpm_parquet(d)
                  and not any(s in d.parents for s in datasets)]
        return sorted([
            *crawls,
            *(p for p in entries if p.is_file()
              and not any(c in p.parents for c in (*crawls, *datasets)) and (
                p.name.lower().endswith(CAPTURE_SUFFIXES)
                or (p.suffix.lower() in (".sqlite", ".sqlite3", ".db") and is_openwpm(p)))),
        ])
    return [path]


def capture_size(path: Path) -> int:
    """Bytes of a capture: a file, or the Parquet files of an OpenWPM crawl folder."""
    if path.is_dir():
        return sum(p.stat().st_size for p in parquet_files(path))
    return path.stat().st_size


def default_clients(files: Sequence[Path]) -> list[str]:
    """One client id per file, unique per file: its path relative to the common root of all
    the inputs. Files given one by one often share a base name (every Polly.JS capture is
    ``recording.har``), and a base name alone would merge them into one client."""
    if not files:
        return []
    resolved = [f.resolve() for f in files]
    root = Path(os.path.commonpath([r.parent for r in resolved]))
    return [r.relative_to(root).as_posix() for r in resolved]


def file_sha256(path: Path) -> str:
    """sha256 hex of a file's bytes, read in large blocks.

    Large blocks matter when this runs on a thread beside the reader: each block costs two
    trips through the GIL, and a thread waits up to the switch interval (5 ms) for each.
    """
    digest = hashlib.sha256()
    block = bytearray(DIGEST_BLOCK)
    view = memoryview(block)
    for part in (parquet_files(path) if path.is_dir() else [path]):  # a crawl folder: its files
        if path.is_dir():
            digest.update(str(part.relative_to(path)).encode() + b"\0")
        with part.open("rb", buffering=0) as fh:
            while n := fh.readinto(block):
                digest.update(view[:n])  # releases the GIL for blocks this large
    return digest.hexdigest()


def ingest_paths(
    paths: Iterable[str | Path],
    store: Store,
    *,
    client: str | None = None,
    progress: bool = False,
    force: bool = False,
    backend_headers: Sequence[str] = DEFAULT_BACKEND_HEADERS,
    redact_validators: bool = False,
    jobs: int = 1,
    keep_query: bool = False,
    secret_headers: Sequence[str] = (),
) -> IngestReport:
    """Read every capture under ``paths`` into ``store``; never raises for bad input files.

    ``client`` overrides the default client id: the file's path relative to the common root
    of all the inputs (``default_clients``), or its full path when an earlier run stored another
    file under that id, so two files are never one client. ``progress`` shows a tqdm bar (bytes) on stderr. A large load into an empty
    store builds the exchanges indexes once at the end. ``jobs`` is how many
    processes may work when the captures are large (at least PARALLEL_MIN_BYTES in all):
    with 2, a second process writes the store while this one reads (``WriterProcess``); with
    more, ``jobs`` - 1 processes also convert the entries of large HAR files.
    """
    report = IngestReport()
    privacy = store.privacy_policy(keep_query, secret_headers)  # StoreError on a conflict
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            report.errors.append(FileError(str(p), "no such file or folder"))
            continue
        found.extend(find_captures(p))
    files = list(zip(found, default_clients(found), strict=True))
    total = sum(capture_size(f) for f, _ in files)
    bar = tqdm(
        total=total, unit="B", unit_scale=True, file=sys.stderr, disable=not progress,
        desc="ingest", leave=False,
    )
    bulk = total >= PARALLEL_MIN_BYTES
    deferred = bulk and store.is_empty()
    if deferred:
        store.drop_indexes()
    converters = jobs - 1 if jobs >= 3 else 1
    writer = None
    if jobs >= 2 and bulk and os.name == "posix":  # the writer process's pipe needs POSIX
        from analysis.writer_process import WriterProcess

        writer = WriterProcess(store.path, offload_share=OFFLOAD_SHARE if jobs == 2 else 0.0)
    done = False
    try:
        for path, default_client in files:
            if client is None and store.client_taken(default_client, str(path)):
                default_client = str(path.resolve())  # an earlier run's file has that id
            _ingest_file(path, client or default_client, store, report, force,
                         backend_headers, redact_validators, bar, converters, writer, privacy)
        done = True
    finally:
        bar.close()
        if writer is not None:
            if done:  # idle since its last sync: it exits while the indexes are built
                writer.stop()
            else:  # it may hold the write lock mid-transaction
                writer.close()
        if deferred:
            store.create_indexes()
        if writer is not None:
            writer.close()
    return report


def _ingest_file(
    path: Path,
    client: str,
    store: Store,
    report: IngestReport,
    force: bool,
    backend_headers: Sequence[str],
    redact_validators: bool,
    bar: tqdm,
    jobs: int = 1,
    writer: WriterProcess | None = None,
    privacy: Privacy = DEFAULT_PRIVACY,
) -> None:
    source = str(path)
    size = capture_size(path)
    report.files += 1
    try:
        kind = sniff(path)
    except ReadError as exc:
        report.errors.append(FileError(source, exc.message))
        report.failed += 1
        store.add_source(SourceRow(source, "unknown", None, size, client, 0, 0, 0, exc.message))
        bar.update(size)
        return
    digest: str | None = None
    # The sha256 costs a read of the whole file; it is needed up front only when an earlier
    # file had this very size, otherwise it is computed from the bytes as the reader reads.
    attempt = None
    while attempt is None:
        if not force:
            if digest is None and store.seen_size(size):
                digest = file_sha256(path)
            earlier = store.seen_sha256(digest) if digest is not None else None
            if earlier is not None:
                report.duplicates.append((source, earlier))
                bar.update(size)
                return
        # otherwise the digest is taken on a thread while the file is read (hashlib and file
        # reads release the GIL): the same bytes, at no cost to the reader
        try:
            attempt = store.begin_source(
                SourceRow(source, kind, None, size, client, 0, 0, 0), str(path.resolve()),
                size_unseen=not force and digest is None, digest=None if force else digest)
        except SourceBusy as exc:
            report.errors.append(FileError(source, str(exc)))
            bar.update(size)
            return
        except SizeSeen:  # a file of this size completed meanwhile (a concurrent ingest)
            continue
    if attempt.replaced:
        report.notes.append(Note(source, f"replaced the {attempt.replaced} rows an interrupted "
                                         "earlier ingest of this file had stored"))
    pending = _DIGESTS.submit(file_sha256, path) if digest is None else None
    counts = {"entries": 0}
    skips: list[Skip] = []
    failure: list[str] = []

    def rows() -> Iterator[tuple]:
        """Store rows (HAR readers build them directly; flow records are turned into them)."""
        hosts = report.hosts
        started = time.monotonic()
        shown = not bar.disable  # the bar's records per second, every 4096 records
        try:
            items = open_capture(
                path, client=client, key=store.key, source=source, kind=kind,
                backend_headers=backend_headers, redact_validators=redact_validators,
                privacy=privacy,
                on_read=bar.update, workers=jobs, offload=writer, rows=True,
            )
            for item in items:
                if type(item) is tuple:
                    counts["entries"] += 1
                    if item[HOST]:
                        hosts.add(item[HOST])
                    if shown and not counts["entries"] & 4095:
                        rate = counts["entries"] / max(time.monotonic() - started, 1e-6)
                        bar.set_postfix_str(f"{rate:,.0f} records/s", refresh=kind != "har")
                    yield item
                elif isinstance(item, Exchange):
                    counts["entries"] += 1
                    if item.host:
                        hosts.add(item.host)
                    yield msgspec.structs.astuple(item)
                elif isinstance(item, Skip):
                    counts["entries"] += 1
                    skips.append(item)
                else:
                    report.notes.append(item)
        except ReadError as exc:  # keep what was read before the damage
            failure.append(exc.message)

    stored = (writer or store).insert_rows(rows())
    if writer is not None and writer.runs.entries:  # entries the writer converted itself
        counts["entries"] += writer.runs.entries
        skips.extend(Skip(source, index, reason) for index, reason in writer.runs.skips)
        skips.sort(key=lambda s: s.entry_index)
        report.hosts.update(writer.runs.hosts)
    if kind in ("flow", "openwpm", "openwpm-parquet", "warc", "httparchive"):
        bar.update(size)
    if pending is not None:
        digest = pending.result()
    error = failure[0] if failure else None
    if error:
        report.errors.append(FileError(source, error))
        if not counts["entries"]:
            report.failed += 1
    if stored:
        report.clients.add(client)
    report.entries += counts["entries"]
    report.stored += stored
    report.skipped.extend(skips)
    store.finish_source(
        attempt,
        SourceRow(source, kind, digest, size, client, counts["entries"], stored, len(skips), error),
        skips,
    )


#: One thread for file digests, shared by all ingest runs of the process.
_DIGESTS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="etagwatch-digest")


def format_summary(report: IngestReport, db: str, *, verbose: int = 0) -> str:
    """The summary printed by `etagwatch ingest` (stdout); its warnings are ``warnings``."""
    failed = f", {report.failed} unreadable" if report.failed else ""
    again = f", {len(report.duplicates)} already ingested" if report.duplicates else ""
    broken = report.broken
    lines = [
        f"store:     {db}",
        f"files:     {report.files} ({report.read} read{failed}{again})",
        f"entries:   {report.entries}",
        f"stored:    {report.stored} exchanges",
        f"not HTTP:  {report.not_http} entries (data:, blob: URLs, TCP flows: nothing to store)",
        f"skipped:   {len(broken)} entries",
    ]
    counts = Counter(s.reason for s in broken)
    first: dict[str, Skip] = {}
    for skip in broken:
        first.setdefault(skip.reason, skip)
    shown = counts.most_common(None if verbose else 8)
    for reason, n in shown:
        where = first[reason]
        lines.append(f"  {n:>7}  {reason} (first: {where.file} entry {where.entry_index})")
    if len(counts) > len(shown):
        lines.append(f"  ... and {len(counts) - len(shown)} more reasons (-v lists them; table "
                     "'skipped' in the store)")
    if broken:
        lines.append("  (entries are numbered from 0, in file order)")
    lines.append(f"clients:   {len(report.clients)}")
    lines.append(f"hosts:     {len(report.hosts)}")
    return "\n".join(lines)


def warnings(report: IngestReport, *, verbose: int = 0) -> tuple[list[str], list[str]]:
    """(warnings, notes) an ingest run writes to stderr: unreadable files and files already
    ingested; the readers' notes (cut to 5 unless ``verbose``)."""
    out = [f"{err.file}: {err.message}" for err in report.errors]
    shown = report.duplicates if verbose else report.duplicates[:5]
    for file, earlier in shown:
        same = Path(file).resolve() == Path(earlier).resolve()
        what = "stored before" if same else f"same bytes as {earlier}"
        out.append(f"{file}: already ingested ({what}; --force reads it again)")
    if len(report.duplicates) > len(shown):
        out.append(f"{len(report.duplicates) - len(shown)} more files already ingested "
                   "(-v lists them)")
    notes = report.notes if verbose else report.notes[:5]
    lines = [f"{n.file}: {n.message}" for n in notes]
    if len(report.notes) > len(notes):
        lines.append(f"{len(report.notes) - len(notes)} more notes (-v shows them)")
    return out, lines
