"""What the etagwatch recorder costs a proxy: requests/s and p50/p99 latency through mitmdump
with and without addons/etagwatch.py, same run, same load generator, same local nginx.

    .venv/bin/python bench/proxy.py [--seconds 8] [--rounds 2] [--concurrency 8]

The phases alternate (plain, etagwatch, plain, etagwatch, ...) so drift in machine load hits
both alike. Half of the requests revalidate with If-None-Match (nginx answers 304), like a
browser revisiting a site. Bounded: about rounds x 2 x (seconds + 4) seconds in all.

Besides the mean throughput cost it prints the cost of each round and their median (one busy
moment on a shared machine skews the mean), and the CPU time each proxy (mitmdump and its child
processes, from /proc) spent per request: the steadiest measure of what the addon costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.lab.mitm import ADDON, MitmDump  # noqa: E402
from analysis.lab.servers import NginxOrigin  # noqa: E402


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its descendants (Linux /proc;
    0.0 elsewhere). Children that already ended are not counted."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    family, grown = {pid}, True
    while grown:
        found = {p for p, parent in parents.items() if parent in family} - family
        family |= found
        grown = bool(found)
    return sum(cpu.get(p, 0.0) for p in family)


FILES = {f"asset{i}.js": (f"/* asset {i} */ " + "x" * (200 + 37 * i) + "\n").encode() for i in range(20)}


async def load(proxy_url: str, base: str, seconds: float, concurrency: int, etags: dict[str, str]) -> list[float]:
    """Closed-loop load: ``concurrency`` workers, each sending its next request when the last
    one is answered. Returns per-request latencies in seconds."""
    latencies: list[float] = []
    names = sorted(FILES)
    stop_at = time.perf_counter() + seconds

    async def worker(n: int, client: httpx.AsyncClient) -> None:
        i = n
        while time.perf_counter() < stop_at:
            name = names[i % len(names)]
            headers = {"If-None-Match": etags[name]} if i % 2 else {}
            t0 = time.perf_counter()
            r = await client.get(f"{base}/{name}", headers=headers)
            latencies.append(time.perf_counter() - t0)
            if r.status_code not in (200, 304):
                raise RuntimeError(f"unexpected status {r.status_code} for {name}")
            i += concurrency

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(proxy=proxy_url, limits=limits, timeout=30, trust_env=False) as client:
        await asyncio.gather(*(worker(n, client) for n in range(concurrency)))
    return latencies


def phase(label: str, proxy: MitmDump, base: str, args: argparse.Namespace, etags: dict[str, str]) -> dict:
    asyncio.run(load(proxy.url, base, 1.0, args.concurrency, etags))  # warm up connections
    assert proxy.process is not None
    cpu_before = tree_cpu(proxy.process.pid)
    lat = asyncio.run(load(proxy.url, base, args.seconds, args.concurrency, etags))
    cpu = tree_cpu(proxy.process.pid) - cpu_before
    lat.sort()
    return {
        "label": label,
        "requests": len(lat),
        "rps": len(lat) / args.seconds,
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "cpu_us": 1e6 * cpu / max(1, len(lat)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per phase")
    parser.add_argument("--rounds", type=int, default=2, help="plain/etagwatch phase pairs")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="etagwatch-bench-") as tmp:
        docroot = Path(tmp) / "docroot"
        docroot.mkdir()
        for name, body in FILES.items():
            (docroot / name).write_bytes(body)
            os.utime(docroot / name, (1_700_000_000, 1_700_000_000))
        db = Path(tmp) / "bench.sqlite"
        with NginxOrigin(docroot) as origin:
            etags = {n: httpx.get(f"{origin.url}/{n}", trust_env=False).headers["etag"] for n in FILES}
            quiet = {"termlog_verbosity": "error", "flow_detail": "0"}
            with MitmDump(scripts=(), options=quiet, name="plain") as plain, MitmDump(
                scripts=(ADDON,), db=db, options=quiet, name="etagwatch"
            ) as watched:
                results = []
                for _ in range(args.rounds):
                    results.append(phase("mitmdump", plain, origin.url, args, etags))
                    results.append(phase("mitmdump + etagwatch", watched, origin.url, args, etags))
                    for r in results[-2:]:
                        print(f"  {r['label']:<22} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  proxy CPU {r['cpu_us']:5.0f} us/req")
            recorded = __import__("sqlite3").connect(db).execute("select count(*) from exchanges").fetchone()[0]

    def mean(label: str, key: str) -> float:
        return statistics.mean(r[key] for r in results if r["label"] == label)

    base, rec = "mitmdump", "mitmdump + etagwatch"
    cost = 1 - mean(rec, "rps") / mean(base, "rps")
    print(f"concurrency {args.concurrency}, {args.rounds} x {args.seconds:.0f} s per variant, {os.cpu_count()} cores")
    for label in (base, rec):
        print(f"{label:<22} {mean(label, 'rps'):8.0f} req/s  p50 {mean(label, 'p50_ms'):6.2f} ms  p99 {mean(label, 'p99_ms'):6.2f} ms")
    print(f"recorder throughput cost: {100 * cost:.1f} % (target <= 10 %); exchanges stored: {recorded}")
    rounds = [1 - w["rps"] / p["rps"] for p, w in zip(results[::2], results[1::2], strict=True)]
    shown = ", ".join(f"{100 * c:.1f}" for c in rounds)
    print(f"cost per round: {shown} %; median {100 * statistics.median(rounds):.1f} %")
    cpu_base, cpu_rec = statistics.median(r["cpu_us"] for r in results if r["label"] == base), statistics.median(
        r["cpu_us"] for r in results if r["label"] == rec
    )
    if cpu_base > 0:
        print(f"proxy CPU per request (median): {cpu_base:.0f} us plain, {cpu_rec:.0f} us with etagwatch "
              f"(+{100 * (cpu_rec / cpu_base - 1):.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
