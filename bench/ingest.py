"""Ingest speed and memory: `etagwatch ingest` vs haralyzer vs a bare msgspec decode.

Builds a large HAR shaped like the real corpus (entries sampled from ../shared/real_hars with
their bodies, URLs and validators varied so rows differ), then runs each contender in a fresh
process and samples the RSS of its process tree (workers included) every 20 ms for the peak.
Prints one table; BENCHMARKS.md "## Ingest" records the figures.

    .venv/bin/python bench/ingest.py                   # 200 MB: every contender
    .venv/bin/python bench/ingest.py --sizes 200 1000  # plus ingest alone at 1 GB (flat memory)
    .venv/bin/python bench/ingest.py --rounds 2        # interleaved repeats, fastest kept

Contenders: `etagwatch ingest` as a user runs it (default --jobs: a writer process beside the
reader on machines with 2+ CPUs) and with --jobs 1; haralyzer loading the file and touching
every entry's request and response headers; msgspec decoding the whole file untyped (what the
issue calls the bare decode) and into our typed structs (the real parsing floor: the least any
reader that builds typed entries must pay).
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

DEFAULT = "etagwatch ingest (default --jobs)"
HARALYZER_NAME = "haralyzer: load + touch every entry's headers"
BARE_NAME = "msgspec bare decode, untyped (whole file)"
TYPED_NAME = "msgspec typed decode, our structs (floor)"

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


def _ingest_entries(out: str) -> int:
    lines = out.splitlines()
    stored = int(next(x for x in lines if x.startswith("stored:")).split()[1])
    skipped = int(next(x for x in lines if x.startswith("skipped:")).split()[1])
    return stored + skipped


def run_contender(har: Path, db: Path, script: str | list[str], env: dict) -> tuple[int, float, float]:
    """(entries, seconds, peak MiB) of one contender in a fresh process."""
    if isinstance(script, list):
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        argv = [PY, "-m", "analysis.cli", "ingest", str(har), "--db", str(db), "--no-progress",
                *script]
        secs, rss, out = measure(argv, env)
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        return _ingest_entries(out), secs, rss
    secs, rss, out = measure([PY, "-c", script, str(har)], env)
    return int(out.strip().splitlines()[-1]), secs, rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[200], help="HAR sizes in MB")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every contender this many times, interleaved; report the fastest")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "etagwatch-bench")
    ap.add_argument("--keep", action="store_true", help="keep generated HARs for the next run")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    print(f"cpus: {os.cpu_count()}, load average at start: "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    rows = []
    for mb in args.sizes:
        har = args.workdir / f"bench-{mb}mb.har"
        if not har.exists():
            t = time.perf_counter()
            n = build_har(har, mb)
            print(f"built {har} ({n} entries) in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        contenders: list[tuple[str, str | list[str]]] = [(DEFAULT, [])]
        if mb == args.sizes[0]:
            contenders += [("etagwatch ingest --jobs 1", ["--jobs", "1"]),
                           (HARALYZER_NAME, HARALYZER), (BARE_NAME, BARE), (TYPED_NAME, TYPED)]
        best: dict[str, tuple[int, float, float]] = {}
        for _ in range(args.rounds):
            for name, script in contenders:
                entries, secs, rss = run_contender(har, args.workdir / f"bench-{mb}.sqlite",
                                                   script, env)
                print(f"{mb:>5} MB  {name:<44} {entries:>8} entries  {secs:7.2f} s  "
                      f"{entries / secs:>9.0f} entries/s  peak {rss:7.0f} MiB", flush=True)
                if name not in best or secs < best[name][1]:
                    best[name] = (entries, secs, rss)
        for name, _ in contenders:
            entries, secs, rss = best[name]
            rows.append((mb, name, entries, secs, entries / secs, rss))
        if not args.keep:
            har.unlink()
    print("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print("\n| size | contender | entries | seconds | entries/s | peak memory |")
    print("|---:|---|---:|---:|---:|---:|")
    for mb, name, entries, secs, eps, rss in rows:
        print(f"| {mb} MB | {name} | {entries:,} | {secs:.2f} | {eps:,.0f} | {rss:,.0f} MiB |")
    base = {name: (eps, rss) for mb, name, _, _, eps, rss in rows if mb == args.sizes[0]}
    ours = base[DEFAULT]
    if HARALYZER_NAME in base:
        hz, bare, typed = base[HARALYZER_NAME], base[BARE_NAME], base[TYPED_NAME]
        print(f"\nvs haralyzer: {ours[0] / hz[0]:.2f}x its entries/s (target >= 2x), peak memory "
              f"{100 * ours[1] / hz[1]:.0f}% of its peak (target < 25%)")
        print(f"vs bare untyped msgspec decode: {ours[0] / bare[0]:.2f}x its entries/s, "
              f"{100 * ours[1] / bare[1]:.0f}% of its peak memory")
        print(f"vs typed msgspec decode (the parsing floor): {ours[0] / typed[0]:.2f}x its "
              f"entries/s, {100 * ours[1] / typed[1]:.0f}% of its peak memory")
    sizes = [(mb, rss) for mb, name, *_, rss in rows if name == DEFAULT]
    if len(sizes) > 1:
        print("ingest peak memory by size: "
              + ", ".join(f"{mb} MB: {rss:.0f} MiB" for mb, rss in sizes))


if __name__ == "__main__":
    main()
