"""Ingest speed and memory: `etagwatch ingest` against haralyzer and the msgspec floor.

Builds two HARs from the real corpus (../shared/real_hars, bodies included) and runs each
contender on each in a fresh process, sampling the RSS of its process tree (workers included)
every 20 ms for the peak. Prints one table; BENCHMARKS.md "## Ingest" records the figures.

- ``bench``: entries sampled from the corpus, one compact line each, URL query and ETag varied
  per entry so rows differ;
- ``corpus``: the corpus's entries as a browser exports them (indented), spread over 500
  hosts and 50 clients (URL, Host, Referer, Origin, Location, user agent and cookie values).

    .venv/bin/python bench/ingest.py                   # both files, 200 MB, every contender
    .venv/bin/python bench/ingest.py --sizes 200 1000  # plus ingest alone at 1 GB (flat memory)
    .venv/bin/python bench/ingest.py --files corpus --sizes 1000 --ingest-only
    .venv/bin/python bench/ingest.py --rounds 3        # interleaved repeats, fastest kept

Contenders: `etagwatch ingest` as a user runs it (default --jobs: a writer process beside the
reader on machines with 2+ CPUs) and with --jobs 1; haralyzer's cheapest path (``json.load``
of the file through ``HarParser.from_file``, then every raw entry's request and response
headers walked, no HarPage / HarEntry objects); msgspec decoding the whole file into our typed
structs (the parsing floor: the least any reader that builds typed entries must pay).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
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
JOBS1 = "etagwatch ingest --jobs 1"
HARALYZER_NAME = "haralyzer: json.load + every entry's raw headers"
TYPED_NAME = "msgspec typed decode, our structs (floor)"

#: haralyzer's cheapest path: HarParser.from_file is json.load of the file; the raw entries
#: (``har_data["entries"]``, dicts) are walked without building HarPage / HarEntry objects.
HARALYZER = """
import sys
from haralyzer import HarParser
parser = HarParser.from_file(sys.argv[1])
n = 0
for entry in parser.har_data["entries"]:
    for h in entry["request"]["headers"]:
        h["name"], h["value"]
    for h in entry["response"]["headers"]:
        h["name"], h["value"]
    n += 1
print(n)
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
    """Write a HAR of at least ``megabytes`` MB; returns the number of entries.

    Entries sampled from the real corpus, one per line (compact JSON), with the URL's query
    and the ETag varied per entry so rows differ."""
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


#: Hosts and clients of the corpus-shaped file.
CORPUS_HOSTS, CORPUS_CLIENTS = 500, 50
_URL_HOST = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)([^/?#]*)")
_COOKIE_VALUE = re.compile(r"=([^;]*)")
_HOST_HEADERS = frozenset({"host", ":authority", "referer", "origin", "location"})


def build_corpus_har(path: Path, megabytes: int, seed: int = 2) -> int:
    """Write a HAR of at least ``megabytes`` MB as a browser exports one (indented two spaces,
    pages listed); returns the number of entries.

    The real corpus's entries repeated as they are (bodies, cookies, validators, each source
    tool's field order), spread over CORPUS_HOSTS hosts (every host of the corpus mapped to
    several, in the URL and in the Host, Referer, Origin and Location values) and
    CORPUS_CLIENTS clients (a user agent and cookie values per client), so the store sees many
    hosts, sites and clients as a long multi-site capture would."""
    rng = random.Random(seed)
    pool = corpus_entries()
    labels = ("www", "cdn", "static", "api", "img")
    hosts = [f"{labels[k % 5]}{k}.site{k % 97}.example" for k in range(CORPUS_HOSTS)]
    target = megabytes * 1_000_000
    n = 0

    def move(value: str, host: str) -> str:
        return _URL_HOST.sub(lambda m: m.group(1) + host, value, count=1)

    with path.open("w") as fh:
        pages = [{"startedDateTime": "2024-01-01T00:00:00.000Z", "id": f"page_{p}",
                  "title": f"https://{hosts[p]}/", "pageTimings": {}} for p in range(50)]
        head = json.dumps({"log": {"version": "1.2", "creator": {"name": "WebInspector",
                                                                 "version": "537.36"},
                                   "pages": pages, "entries": []}}, indent=2)
        fh.write(head[: head.rindex("[]")] + "[")
        size = 0
        while size < target:
            entry = json.loads(json.dumps(rng.choice(pool)))
            host = hosts[rng.randrange(CORPUS_HOSTS)]
            page = rng.randrange(len(pages))
            client = rng.randrange(CORPUS_CLIENTS)
            entry["pageref"] = f"page_{page}"
            req = entry.get("request") or {}
            if isinstance(req.get("url"), str):
                req["url"] = move(req["url"], host)
            for part in (req, entry.get("response") or {}):
                for h in part.get("headers") or []:
                    if not isinstance(h, dict) or not isinstance(h.get("value"), str):
                        continue
                    name = str(h.get("name", "")).lower()
                    if name in ("host", ":authority"):
                        h["value"] = host
                    elif name in _HOST_HEADERS:
                        h["value"] = move(h["value"], hosts[page])
                    elif name == "user-agent":
                        h["value"] = f"{h['value']} client/{client}"
                    elif name == "cookie":
                        h["value"] = _COOKIE_VALUE.sub(rf"=\g<1>c{client}", h["value"])
                for c in part.get("cookies") or []:
                    if isinstance(c, dict) and isinstance(c.get("value"), str):
                        c["value"] += f"c{client}"
            text = json.dumps(entry, indent=2).replace("\n", "\n      ")
            chunk = ("\n      " if n == 0 else ",\n      ") + text
            fh.write(chunk)
            size += len(chunk)
            n += 1
        fh.write("\n    ]\n  }\n}\n")
    return n


def measure(argv: list[str], env: dict | None = None) -> tuple[float, float, str, float]:
    """(seconds, peak RSS MiB of the process tree, stdout, CPU seconds) of one child process.

    RSS is sampled every 20 ms and summed over the child and its worker processes (wait4's
    ru_maxrss would report only the largest single process). CPU is user + system time of the
    child and of the processes it waited for (the writer process), from getrusage: on a
    machine shared with other jobs it tells the work done apart from the waiting.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
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
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, peak / 2**20, stdout, cpu


def _ingest_entries(out: str) -> int:
    lines = out.splitlines()
    stored = int(next(x for x in lines if x.startswith("stored:")).split()[1])
    skipped = int(next(x for x in lines if x.startswith("skipped:")).split()[1])
    return stored + skipped


def run_contender(har: Path, db: Path, script: str | list[str],
                  env: dict) -> tuple[int, float, float, float]:
    """(entries, seconds, peak MiB, CPU seconds) of one contender in a fresh process."""
    if isinstance(script, list):
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        argv = [PY, "-m", "analysis.cli", "ingest", str(har), "--db", str(db), "--no-progress",
                *script]
        secs, rss, out, cpu = measure(argv, env)
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        return _ingest_entries(out), secs, rss, cpu
    secs, rss, out, cpu = measure([PY, "-c", script, str(har)], env)
    return int(out.strip().splitlines()[-1]), secs, rss, cpu


#: The files the bench builds: name -> (builder, what it is).
FILES = {
    "bench": (build_har, "sampled corpus entries, one compact line each, URL and ETag varied"),
    "corpus": (build_corpus_har, f"corpus entries as a browser exports them (indented), "
                                 f"{CORPUS_HOSTS} hosts, {CORPUS_CLIENTS} clients"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", nargs="+", choices=list(FILES), default=list(FILES),
                    help="which built files to run (default: both)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[200],
                    help="HAR sizes in MB; every contender runs on the first, ingest alone on "
                         "the others (haralyzer would need about 5 GB for 1 GB)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every contender this many times, interleaved; report the fastest "
                         "(on the first size; ingest runs once on the others)")
    ap.add_argument("--ingest-only", action="store_true",
                    help="run only `etagwatch ingest` (default --jobs): memory at large sizes")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "etagwatch-bench")
    ap.add_argument("--keep", action="store_true", help="keep generated HARs for the next run")
    args = ap.parse_args()
    if not CORPUS.is_dir():
        print(f"skipped: the real corpus is not at {CORPUS} (../shared/real_hars); both files "
              "are built from its entries")
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    print(f"cpus: {os.cpu_count()}, load average at start: "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    rows = []
    for kind in args.files:
        builder, what = FILES[kind]
        for mb in args.sizes:
            har = args.workdir / f"{kind}-{mb}mb.har"
            if not har.exists():
                t = time.perf_counter()
                n = builder(har, mb)
                print(f"built {har} ({n} entries; {what}) in {time.perf_counter() - t:.1f} s",
                      file=sys.stderr, flush=True)
            contenders: list[tuple[str, str | list[str]]] = [(DEFAULT, [])]
            if mb == args.sizes[0] and not args.ingest_only:
                contenders += [(JOBS1, ["--jobs", "1"]), (HARALYZER_NAME, HARALYZER),
                               (TYPED_NAME, TYPED)]
            best: dict[str, tuple[int, float, float, float]] = {}
            for _ in range(args.rounds if mb == args.sizes[0] else 1):  # larger: memory
                for name, script in contenders:
                    entries, secs, rss, cpu = run_contender(
                        har, args.workdir / f"bench-{mb}.sqlite", script, env)
                    print(f"{kind:>6} {mb:>5} MB  {name:<50} {entries:>8} entries  {secs:7.2f} s"
                          f"  cpu {cpu:7.2f} s  peak {rss:7.0f} MiB  load "
                          f"{os.getloadavg()[0]:.1f}", flush=True)
                    if name not in best or secs < best[name][1]:
                        least = min(cpu, best[name][3]) if name in best else cpu
                        best[name] = (entries, secs, rss, least)
                    elif cpu < best[name][3]:
                        best[name] = (*best[name][:3], cpu)
            for name, _ in contenders:
                entries, secs, rss, cpu = best[name]
                rows.append((kind, mb, name, entries, secs, rss, cpu))
            if not args.keep:
                har.unlink()
    print("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print("\n| file | size | contender | entries | seconds | entries/s | CPU seconds "
          "| peak memory |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for kind, mb, name, entries, secs, rss, cpu in rows:
        print(f"| {kind} | {mb} MB | {name} | {entries:,} | {secs:.2f} | {entries / secs:,.0f} "
              f"| {cpu:.2f} | {rss:,.0f} MiB |")
    print("(fastest wall time of the rounds; CPU: least of the rounds, user + system)\n")
    for kind in args.files if not args.ingest_only else ():
        base = {name: (secs, rss, cpu) for k, mb, name, _, secs, rss, cpu in rows
                if k == kind and mb == args.sizes[0]}
        ours = base[DEFAULT]
        hz, typed = base[HARALYZER_NAME], base[TYPED_NAME]
        print(f"{kind}: {hz[0] / ours[0]:.2f}x haralyzer's speed (target >= 2x), "
              f"{typed[0] / ours[0]:.2f}x the typed-decode floor's (target >= 1.0x); peak memory "
              f"{100 * ours[1] / hz[1]:.0f}% of haralyzer's (target <= 25%); CPU seconds "
              f"{ours[2] / hz[2]:.2f}x haralyzer's, {ours[2] / typed[2]:.2f}x the floor's")
    for kind in args.files:
        sizes = [(mb, rss) for k, mb, name, *_, rss, _cpu in rows
                 if k == kind and name == DEFAULT]
        if len(sizes) > 1 or args.ingest_only:
            print(f"{kind}: ingest peak memory by size: "
                  + ", ".join(f"{mb} MB: {rss:.0f} MiB" for mb, rss in sizes))


if __name__ == "__main__":
    main()
