"""Ingest speed and memory: `etagwatch ingest` vs haralyzer vs a bare msgspec decode.

Builds a large HAR shaped like the real corpus (entries sampled from ../shared/real_hars with
their bodies, URLs and validators varied so rows differ), then runs each contender in its own
process and reads that process's peak RSS from wait4(). Prints one table; BENCHMARKS.md
"## Ingest" records the figures.

    .venv/bin/python bench/ingest.py                   # 200 MB: all three contenders
    .venv/bin/python bench/ingest.py --sizes 200 1000  # plus ingest alone at 1 GB (flat memory)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "real_hars"
PY = sys.executable

HARALYZER = """
import sys
from haralyzer import HarEntry, HarParser
with open(sys.argv[1], "rb") as fh:
    parser = HarParser.from_string(fh.read())
n = 0
for page in parser.pages:
    for entry in page.entries:
        entry.request.headers; entry.response.headers
        n += 1
print(n)
"""

BARE = """
import sys, msgspec
with open(sys.argv[1], "rb") as fh:
    doc = msgspec.json.decode(fh.read())
print(len(doc["log"]["entries"]))
"""

TYPED = """
import sys, msgspec
from analysis.readers.model import Entry
class Log(msgspec.Struct):
    entries: list[Entry] = []
class Har(msgspec.Struct):
    log: Log
with open(sys.argv[1], "rb") as fh:
    doc = msgspec.json.decode(fh.read(), type=Har)
print(len(doc.log.entries))
"""


def corpus_entries() -> list[dict]:
    """Every http(s) entry of the real corpus (bodies included), for sampling."""
    out = []
    for path in sorted(CORPUS.rglob("*.har")):
        try:
            doc = json.loads(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
            entries = doc["log"]["entries"]
        except (ValueError, KeyError, TypeError):
            continue
        out.extend(
            e for e in entries
            if isinstance(e, dict) and str(e.get("request", {}).get("url", "")).startswith("http")
        )
    return out


def build_har(path: Path, megabytes: int, seed: int = 1) -> int:
    """Write a HAR of at least ``megabytes`` MB; returns the number of entries."""
    rng = random.Random(seed)
    pool = [json.dumps(e) for e in corpus_entries()]
    target = megabytes * 1_000_000
    n = 0
    with path.open("w") as fh:
        fh.write('{"log": {"version": "1.2", "creator": {"name": "bench", "version": "1"},'
                 ' "pages": [{"id": "page_1", "title": "https://www.example.com/",'
                 ' "startedDateTime": "2024-01-01T00:00:00Z", "pageTimings": {}}],'
                 ' "entries": [\n')
        size = 0
        while size < target:
            text = rng.choice(pool)
            entry = json.loads(text)
            entry["pageref"] = "page_1"
            entry["request"]["url"] = entry["request"]["url"].split("#")[0] + (
                ("&" if "?" in entry["request"]["url"] else "?") + f"bench={n}"
            )
            for h in entry.get("response", {}).get("headers", []):
                if isinstance(h, dict) and str(h.get("name", "")).lower() == "etag":
                    h["value"] = f'"{rng.getrandbits(64):x}-{n % 97}"'
            chunk = ("" if n == 0 else ",\n") + json.dumps(entry)
            fh.write(chunk)
            size += len(chunk)
            n += 1
        fh.write("\n]}}\n")
    return n


def measure(argv: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB of the process tree, stdout) of one child process.

    RSS is sampled every 20 ms and summed over the child and its worker processes (wait4's
    ru_maxrss would report only the largest single process).
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        ps = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            try:
                tree = [ps, *ps.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.02)
        elapsed = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{argv[:4]} failed ({proc.returncode}): {stderr[-2000:]}")
    return elapsed, peak / 2**20, stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[200], help="HAR sizes in MB")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "etagwatch-bench")
    ap.add_argument("--keep", action="store_true", help="keep generated HARs for the next run")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rows = []
    for mb in args.sizes:
        har = args.workdir / f"bench-{mb}mb.har"
        if not har.exists():
            t = time.perf_counter()
            n = build_har(har, mb)
            print(f"built {har} ({n} entries) in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        entries = None
        contenders = [("etagwatch ingest", ["--jobs", "1"])]
        if mb == args.sizes[0]:
            contenders.append(("etagwatch ingest --jobs 2", ["--jobs", "2"]))
        if mb == args.sizes[0]:
            contenders += [("haralyzer (load + headers)", HARALYZER),
                           ("msgspec bare decode", BARE), ("msgspec typed decode", TYPED)]
        for name, script in contenders:
            if isinstance(script, list):
                db = args.workdir / f"bench-{mb}.sqlite"
                for suffix in ("", "-wal", "-shm"):
                    Path(str(db) + suffix).unlink(missing_ok=True)
                argv = [PY, "-m", "analysis.cli", "ingest", str(har), "--db", str(db),
                        "--no-progress", *script]
                secs, rss, out = measure(argv, env)
                stored = int(next(line for line in out.splitlines() if line.startswith("stored:"))
                             .split()[1])
                skipped = int(next(line for line in out.splitlines() if line.startswith("skipped:"))
                              .split()[1])
                entries = stored + skipped
                for suffix in ("", "-wal", "-shm"):
                    Path(str(db) + suffix).unlink(missing_ok=True)
            else:
                secs, rss, out = measure([PY, "-c", script, str(har)], env)
                entries = int(out.strip().splitlines()[-1])
            rows.append((mb, name, entries, secs, entries / secs, rss))
            print(f"{mb:>5} MB  {name:<28} {entries:>8} entries  {secs:7.2f} s  "
                  f"{entries / secs:>9.0f} entries/s  peak {rss:7.0f} MiB", flush=True)
        if not args.keep:
            har.unlink()
    base = {name: (eps, rss) for mb, name, _, _, eps, rss in rows if mb == args.sizes[0]}
    ours = base["etagwatch ingest"]
    if "haralyzer (load + headers)" in base:
        hz = base["haralyzer (load + headers)"]
        bare = base["msgspec bare decode"]
        print(f"\nvs haralyzer: {ours[0] / hz[0]:.2f}x entries/s, peak memory "
              f"{100 * ours[1] / hz[1]:.0f}% of haralyzer's")
        print(f"vs bare msgspec decode: {ours[0] / bare[0]:.2f}x its entries/s, "
              f"{100 * ours[1] / bare[1]:.0f}% of its peak memory")
    sizes = [(mb, rss) for mb, name, *_, rss in rows if name == "etagwatch ingest"]
    if len(sizes) > 1:
        print("ingest peak memory by size: " + ", ".join(f"{mb} MB: {rss:.0f} MiB" for mb, rss in sizes))


if __name__ == "__main__":
    main()
