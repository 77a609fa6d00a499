"""The WARC reader against its floor: bare iteration over the same archive by FastWARC (the
library it uses) and by warcio (the other one), each reading every payload, and our reader
(records built, nothing stored) and `etagwatch ingest` end to end, in one run.

usage: python bench/warc.py [EXCHANGES]   (default 50000; a per-record gzip archive is built
in a temporary folder, with a request record before each response)
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build(path: Path, n: int) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    body = b"x" * 2000
    with path.open("wb") as fh:
        w = WARCWriter(fh, gzip=True)
        for i in range(n):
            url = f"https://h{i % 50}.test/r{i % 3000}.js"
            resp = StatusAndHeaders("200 OK", [("ETag", f'"e{i % 3000}"'),
                                               ("Content-Length", str(len(body)))],
                                    protocol="HTTP/1.1")
            r = w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=resp)
            req = StatusAndHeaders(f"GET /r{i % 3000}.js HTTP/1.1", [("Host", f"h{i % 50}.test")],
                                   is_http_request=True)
            q = w.create_warc_record(url, "request", payload=io.BytesIO(b""), http_headers=req)
            q.rec_headers.add_header("WARC-Concurrent-To", r.rec_headers.get_header("WARC-Record-ID"))
            w.write_record(q)
            w.write_record(r)


def fastwarc_floor(path: Path) -> int:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    n = 0
    with path.open("rb") as fh:
        for rec in ArchiveIterator(fh, parse_http=True):
            if rec.record_type == WarcRecordType.response:
                rec.http_headers.astuples()
                hashlib.sha256(rec.reader.read())
                n += 1
    return n


def warcio_floor(path: Path) -> int:
    from warcio.archiveiterator import ArchiveIterator

    n = 0
    with path.open("rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type == "response":
                rec.http_headers.headers  # noqa: B018 (parsed)
                hashlib.sha256(rec.content_stream().read())
                n += 1
    return n


def reader(path: Path) -> int:
    from analysis.readers.warc import read_warc

    return sum(1 for item in read_warc(path, client="c", key=b"k" * 32) if type(item) is tuple)


def timed(fn, *args) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def ingest_timed(path: Path, db: Path, n: int, label: str) -> tuple[str, float, int]:
    """`etagwatch ingest` as a user runs it (a process of its own), timed."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "analysis", "ingest", str(path), "--db", str(db), "-q"],
                   check=True)
    return label, time.perf_counter() - t, n


def print_table(rows: list[tuple[str, float, int]]) -> None:
    """Seconds, exchanges per second and the ratio to the first row (the floor)."""
    print(f"{'':32} {'seconds':>8} {'exchanges/s':>12} {'x floor':>8}")
    for label, secs, count in rows:
        print(f"{label:32} {secs:8.2f} {int(count) / secs:12,.0f} {secs / rows[0][1]:8.2f}")


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 50_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.warc.gz"
        build(path, n)
        print(f"{n} exchanges, {path.stat().st_size / 1e6:.1f} MB per-record gzip")
        rows = [("fastwarc iteration (floor)", *timed(fastwarc_floor, path)),
                ("warcio iteration", *timed(warcio_floor, path)),
                ("etagwatch reader (rows built)", *timed(reader, path))]
        rows.append(ingest_timed(path, Path(tmp) / "s.sqlite", n, "etagwatch ingest (stored)"))
        print_table(rows)


if __name__ == "__main__":
    main(sys.argv[1:])
