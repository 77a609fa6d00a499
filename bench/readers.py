"""The OpenWPM and HTTP Archive readers against their floors, in one run: for a generated crawl
database, sqlite3 running the reader's indexed join of requests and responses and json.loads
of their headers (what any reader must do); for a generated HTTP Archive JSON-lines export, json.loads of every
line. Then etagwatch's reader (rows built, nothing stored) and `etagwatch ingest` (stored).

usage: python bench/readers.py [EXCHANGES]   (default 50000)
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from warc import ingest_timed, print_table, timed


def build_openwpm(path: Path, n: int) -> None:
    from test_readers_openwpm import DDL

    conn = sqlite3.connect(path)
    conn.executescript(DDL)
    req = json.dumps([["User-Agent", "Firefox"], ["Accept", "*/*"]])
    conn.executemany(
        "INSERT INTO http_requests (browser_id, visit_id, url, top_level_url, method, referrer,"
        " headers, request_id, resource_type, time_stamp) VALUES (?,?,?,?,?,?,?,?,?,?)",
        ((i % 5, i // 50, f"https://h{i % 50}.test/r{i % 3000}.js", "https://news.test/", "GET",
          "https://news.test/", req, i, "script", "2024-05-01T10:00:00.000Z") for i in range(n)))
    conn.executemany(
        "INSERT INTO http_responses (browser_id, visit_id, url, method, response_status,"
        " response_status_text, is_cached, headers, request_id, location, time_stamp) VALUES"
        " (?,?,?,?,?,?,?,?,?,?,?)",
        ((i % 5, i // 50, f"https://h{i % 50}.test/r{i % 3000}.js", "GET", 200, "OK", 0,
          json.dumps([["ETag", f'"e{i % 3000}"'], ["Content-Type", "text/javascript"]]), i, "",
          "2024-05-01T10:00:00.000Z") for i in range(n)))
    conn.commit()
    conn.close()


def openwpm_floor(path: Path) -> int:
    from analysis.readers.openwpm import _KEYS, _RESPONSES

    conn = sqlite3.connect(path)
    conn.executescript(_KEYS)  # the same indexed join the reader runs
    n = 0
    for row in conn.execute(_RESPONSES):
        json.loads(row[6])
        json.loads(row[9])
        n += 1
    conn.close()
    return n


def build_httparchive(path: Path, n: int) -> None:
    with path.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({
                "date": "2024-05-01", "client": "desktop" if i % 2 else "mobile",
                "page": f"https://site{i % 500}.test/", "url": f"https://h{i % 50}.test/r{i % 3000}.js",
                "request_headers": [{"name": "User-Agent", "value": "Chrome"}],
                "response_headers": [{"name": "ETag", "value": f'"e{i % 3000}"'},
                                     {"name": "Content-Type", "value": "text/javascript"}],
                "summary": json.dumps({"status": 200, "method": "GET", "respBodySize": 900}),
            }) + "\n")


def httparchive_floor(path: Path) -> int:
    n = 0
    with path.open("rb") as fh:
        for line in fh:
            json.loads(json.loads(line)["summary"])
            n += 1
    return n


def reader(kind: str, path: Path) -> int:
    from analysis.readers import ROW_READERS

    items = ROW_READERS[kind](path, client="c", key=b"k" * 32)
    return sum(1 for item in items if type(item) is tuple)


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 50_000
    with tempfile.TemporaryDirectory() as tmp:
        for kind, build, floor, name in (("openwpm", build_openwpm, openwpm_floor, "crawl.sqlite"),
                                         ("httparchive", build_httparchive, httparchive_floor,
                                          "requests.jsonl")):
            path = Path(tmp) / name
            build(path, n)
            rows = [(f"{kind}: floor", *timed(floor, path)),
                    (f"{kind}: etagwatch reader", *timed(reader, kind, path))]
            rows.append(ingest_timed(path, Path(tmp) / f"{kind}.sqlite", n,
                                     f"{kind}: etagwatch ingest"))
            print(f"{n} exchanges, {path.stat().st_size / 1e6:.1f} MB")
            print_table(rows)


if __name__ == "__main__":
    main(sys.argv[1:])
