"""What the etagwatch recorder costs a proxy: requests/s and p50/p99 latency through mitmdump
with and without addons/etagwatch.py, same run, same load generator, same local nginx.

    .venv/bin/python bench/proxy.py [--rounds 24] [--seconds 2] [--client wrk|httpx] [--pin]
    .venv/bin/python bench/proxy.py --instructions 1000

Two mitmdump processes run side by side, one plain, one with the addon (recording into a
store, live annotations on); the measured phases alternate (plain, etagwatch, plain, ...) so
drift in machine load hits both alike. Half of the requests revalidate with If-None-Match
(nginx answers 304), like a browser revisiting a site. It prints each phase, the cost of each
round and their median (one busy moment on a shared machine skews a mean), and the CPU time
per request of each process: mitmdump, etagwatch's child processes, the load generator, nginx.

The load generator is wrk (Debian package ``wrk``): it needs about 60 us of CPU per request,
so on a small machine mitmdump, not the client, is what saturates. ``--client httpx`` uses an
asyncio httpx client instead (about a millisecond per request: it competes with the proxy).
``--pin`` puts mitmdump's main process on the last CPU and everything else (load generator,
nginx, etagwatch's writer process) on the others, as an idle multi-core
machine's scheduler would.

``--instructions N`` measures instead what the machine's load cannot change: the instructions
mitmdump's own process (every thread) executes per request, counted by valgrind's callgrind
over N requests after a warm-up, plain and with etagwatch. Repeatable to about 0.1 %; slow
(about 75 s per 1000 requests per variant).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.lab.mitm import ADDON, MitmDump  # noqa: E402
from analysis.lab.servers import NginxOrigin  # noqa: E402

FILES = {f"asset{i}.js": (f"/* asset {i} */ " + "x" * (200 + 37 * i) + "\n").encode() for i in range(20)}
QUIET = {"termlog_verbosity": "error", "flow_detail": "0"}
PLAIN, WATCHED = "mitmdump", "mitmdump + etagwatch"
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# --- processes and their CPU time (Linux /proc)
def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    """Every descendant of ``pid``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parents[int(entry.name)] = int(_stat(int(entry.name))[1])
        except (OSError, IndexError, ValueError):
            continue
    family, grown = {pid}, True
    while grown:
        found = {p for p, parent in parents.items() if parent in family} - family
        family |= found
        grown = bool(found)
    return sorted(family - {pid})


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = _stat(pid)
        except (OSError, IndexError):
            continue  # ended meanwhile
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def pin(pid: int, cpus: set[int]) -> None:
    """Set the CPU affinity of every thread of ``pid``."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except OSError:
            continue


# --- the origin and the proxies
@contextmanager
def origin(tmp: Path) -> Iterator[tuple[NginxOrigin, dict[str, str]]]:
    docroot = tmp / "docroot"
    docroot.mkdir()
    for name, body in FILES.items():
        (docroot / name).write_bytes(body)
        os.utime(docroot / name, (1_700_000_000, 1_700_000_000))
    with NginxOrigin(docroot) as server:
        etags = {n: httpx.get(f"{server.url}/{n}", trust_env=False).headers["etag"] for n in FILES}
        yield server, etags


def wrk_script(path: Path, origin_url: str, etags: dict[str, str]) -> None:
    """wrk's request generator: absolute-form GETs (mitmdump is an explicit proxy), every
    second one with If-None-Match."""
    names = sorted(FILES)
    host = origin_url.split("://", 1)[1]
    lua_names = ", ".join(f'"{n}"' for n in names)
    lua_etags = ", ".join(f"['{n}'] = '{etags[n]}'" for n in names)
    path.write_text(
        f"""local names = {{{lua_names}}}
local etags = {{{lua_etags}}}
local n = 0
request = function()
  n = n + 1
  local name = names[(n % {len(names)}) + 1]
  local headers = {{["Host"] = "{host}"}}
  if n % 2 == 1 then headers["If-None-Match"] = etags[name] end
  return wrk.format("GET", "{origin_url}/" .. name, headers)
end
"""
    )


# --- load generators: each returns (requests, seconds, p50 ms, p99 ms)
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def run_wrk(proxy_url: str, script: Path, seconds: float, concurrency: int) -> tuple[int, float, float, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "10s", "--latency", "-s", str(script), proxy_url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if not found:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad or "Socket errors" in out:
        raise RuntimeError(f"requests failed through the proxy:\n{out}")
    requests, elapsed = int(found.group(1)), float(found.group(2)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[found.group(3)]

    def percentile(p: int) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * _UNITS[unit]

    return requests, elapsed, percentile(50), percentile(99)


async def _httpx_load(proxy_url: str, base: str, etags: dict[str, str], concurrency: int, *, seconds: float = 0, count: int = 0) -> list[float]:
    """Closed loop: ``concurrency`` workers, each sending its next request when the last one is
    answered, for ``seconds`` or until ``count`` requests were sent. Returns latencies."""
    latencies: list[float] = []
    names = sorted(FILES)
    stop_at = time.perf_counter() + seconds
    sent = 0

    async def worker(n: int, client: httpx.AsyncClient) -> None:
        nonlocal sent
        i = n
        while (count and sent < count) or (not count and time.perf_counter() < stop_at):
            sent += 1
            name = names[i % len(names)]
            headers = {"If-None-Match": etags[name]} if i % 2 else {}
            t0 = time.perf_counter()
            r = await client.get(f"{base}/{name}", headers=headers)
            latencies.append(time.perf_counter() - t0)
            if r.status_code not in (200, 304):
                raise RuntimeError(f"unexpected status {r.status_code} for {name}")
            i += concurrency

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(proxy=proxy_url, limits=limits, timeout=600, trust_env=False) as client:
        await asyncio.gather(*(worker(n, client) for n in range(concurrency)))
    return latencies


def run_httpx(proxy_url: str, base: str, etags: dict[str, str], seconds: float, concurrency: int) -> tuple[int, float, float, float]:
    lat = sorted(asyncio.run(_httpx_load(proxy_url, base, etags, concurrency, seconds=seconds)))
    return len(lat), seconds, 1000 * statistics.median(lat), 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))]


# --- throughput
def throughput(args: argparse.Namespace) -> int:
    if args.paired and args.client != "wrk":
        print("bench/proxy.py: --paired needs --client wrk", file=sys.stderr)
        return 2
    if args.client == "wrk" and not shutil.which("wrk"):
        print("bench/proxy.py: wrk not found: apt-get install wrk, or use --client httpx", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="etagwatch-bench-") as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        server, etags = stack.enter_context(origin(tmp))
        script = tmp / "requests.lua"
        wrk_script(script, server.url, etags)
        db = tmp / "bench.sqlite"
        proxies = {
            PLAIN: stack.enter_context(MitmDump(scripts=(), options=QUIET, name="plain")),
            WATCHED: stack.enter_context(
                MitmDump(
                    scripts=(ADDON,),
                    # an option given twice on mitmdump's command line left the script inert
                    db=None if "etagwatch_db" in dict(args.set) else db,
                    options={**QUIET, **dict(args.set)},
                    name="etagwatch",
                )
            ),
        }
        time.sleep(2)  # etagwatch's writer process starts
        last = max(os.sched_getaffinity(0))
        others = set(os.sched_getaffinity(0)) - {last}
        if args.pin or args.paired:
            if not others:
                print("bench/proxy.py: --pin and --paired need two CPUs", file=sys.stderr)
                return 2
            os.sched_setaffinity(0, others)  # this script, hence the load generator
            for pid in [server.process.pid, *children(server.process.pid)]:  # type: ignore[union-attr]
                pin(pid, others)
            for proxy in proxies.values():
                pin(proxy.process.pid, {last})  # type: ignore[union-attr]
                for pid in children(proxy.process.pid):  # type: ignore[union-attr]
                    pin(pid, others)

        def load(proxy: MitmDump, seconds: float) -> tuple[int, float, float, float]:
            if args.client == "wrk":
                return run_wrk(proxy.url, script, seconds, args.concurrency)
            return run_httpx(proxy.url, server.url, etags, seconds, args.concurrency)

        def phase(labels: tuple[str, ...]) -> list[dict]:
            """Load the proxies named in ``labels`` at the same time (one wrk each)."""
            mains = {label: proxies[label].process.pid for label in labels}  # type: ignore[union-attr]
            kids = {label: children(pid) for label, pid in mains.items()}
            nginx = [server.process.pid, *children(server.process.pid)]  # type: ignore[union-attr]

            def cpu() -> dict[str, tuple[float, ...]]:
                shared = (cpu_seconds(nginx), _client_cpu())
                return {label: (cpu_seconds([mains[label]]), cpu_seconds(kids[label]), *shared) for label in labels}

            before = cpu()
            loads = {}
            threads = [
                threading.Thread(target=lambda label=label: loads.__setitem__(label, load(proxies[label], args.seconds)))
                for label in labels
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            after = cpu()
            total = sum(loads[label][0] for label in labels)
            out = []
            for label in labels:
                requests, elapsed, p50, p99 = loads[label]
                per = [requests, requests, total, total]  # nginx and the load generators serve all
                us = [1e6 * (b - a) / max(1, n) for a, b, n in zip(before[label], after[label], per, strict=True)]
                out.append({"label": label, "rps": requests / elapsed, "p50": p50, "p99": p99, "requests": requests,
                            "cpu_main": us[0], "cpu_children": us[1], "cpu_nginx": us[2], "cpu_client": us[3]})
            return out

        for label in proxies:  # warm up connections, caches and etagwatch's state
            load(proxies[label], 2)
        results: list[dict] = []
        for n in range(args.rounds):
            order = (PLAIN, WATCHED) if n % 2 == 0 else (WATCHED, PLAIN)  # ABBA: no order bias
            for labels in [order] if args.paired else [(label,) for label in order]:
                for r in phase(labels):
                    results.append(r)
                    print(f"  round {n + 1}  {r['label']:<21} {r['rps']:6.0f} req/s  p50 {r['p50']:6.2f} ms  p99 {r['p99']:6.2f} ms"
                          f"  CPU/request: mitmdump {r['cpu_main']:5.0f} us, its children {r['cpu_children']:4.0f} us,"
                          f" client {r['cpu_client']:4.0f} us, nginx {r['cpu_nginx']:3.0f} us", flush=True)
        recorded = stored_exchanges(db)
    report(results, args, recorded)
    return 0


def stored_exchanges(db: Path) -> int | None:
    """Exchanges the recorder stored (None when it recorded nothing, e.g. etagwatch_db=)."""
    if not db.exists():
        return None
    with closing(sqlite3.connect(db)) as conn:
        try:
            return conn.execute("select count(*) from exchanges").fetchone()[0]
        except sqlite3.Error:
            return None


def _client_cpu() -> float:
    """CPU seconds of this script plus its ended children (wrk)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def bootstrap_interval(values: list[float], level: float = 0.95, resamples: int = 5000) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (seeded: the same rounds give the same
    interval). Rounds on a shared machine scatter by +-20 %, so one figure without its
    interval says little."""
    rng = random.Random(0)
    means = sorted(statistics.fmean(rng.choices(values, k=len(values))) for _ in range(resamples))
    tail = (1 - level) / 2
    return means[int(tail * resamples)], means[min(resamples - 1, int((1 - tail) * resamples))]


def report(results: list[dict], args: argparse.Namespace, recorded: int | None) -> None:
    def of(label: str, key: str) -> list[float]:
        return [r[key] for r in results if r["label"] == label]

    print(f"\n{args.client}, {args.concurrency} connections, {args.rounds} rounds x {args.seconds:g} s per variant, "
          f"{os.cpu_count()} CPUs{', paired on one CPU' if args.paired else ', pinned' if args.pin else ''}, load average {os.getloadavg()[0]:.1f}")
    for label in (PLAIN, WATCHED):
        print(f"{label:<21} {statistics.mean(of(label, 'rps')):6.0f} req/s  p50 {statistics.mean(of(label, 'p50')):6.2f} ms"
              f"  p99 {statistics.mean(of(label, 'p99')):6.2f} ms  CPU/request (median): mitmdump "
              f"{statistics.median(of(label, 'cpu_main')):.0f} us + children {statistics.median(of(label, 'cpu_children')):.0f} us")
    rounds = [1 - w / p for p, w in zip(of(PLAIN, "rps"), of(WATCHED, "rps"), strict=True)]
    low, high = bootstrap_interval(rounds)
    print(f"throughput cost: {100 * statistics.mean(rounds):.1f} % mean of rounds, 95 % interval "
          f"{100 * low:.1f} to {100 * high:.1f} % (target <= 10 %); median {100 * statistics.median(rounds):.1f} %")
    print(f"  per round: {', '.join(f'{100 * c:.1f}' for c in rounds)} %")
    print(f"exchanges stored: {recorded}")


# --- instructions (callgrind)
class CallgrindMitmDump(MitmDump):
    """mitmdump under ``valgrind --tool=callgrind``, counting nothing until told to."""

    def __init__(self, out: Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self.out = out

    def command(self, workdir: Path) -> list[str]:
        cmd = super().command(workdir)
        return ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={self.out}",
                sys.executable, *cmd]

    def control(self, *flags: str) -> None:
        subprocess.run(["callgrind_control", *flags, str(self.process.pid)], check=True, capture_output=True)  # type: ignore[union-attr]


def _wait_for_dump(out: Path, timeout: float = 120) -> int:
    """Instructions in the newest callgrind dump of ``out``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for dump in sorted(out.parent.glob(out.name + ".*"), key=os.path.getmtime, reverse=True):
            found = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(errors="replace"), re.M)
            if found:
                return int(found.group(1))
        time.sleep(0.5)
    raise RuntimeError(f"callgrind wrote no dump next to {out}")


def instructions(args: argparse.Namespace) -> int:
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        print("bench/proxy.py: valgrind not found: apt-get install valgrind", file=sys.stderr)
        return 2
    count = args.instructions
    per_request: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="etagwatch-bench-") as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        server, etags = stack.enter_context(origin(tmp))
        for label, scripts in ((PLAIN, ()), (WATCHED, (ADDON,))):
            out = tmp / f"{'watched' if scripts else 'plain'}.callgrind"
            db = tmp / "bench.sqlite" if scripts else None
            with CallgrindMitmDump(out, scripts=scripts, db=db, options=QUIET, name=label) as proxy:
                asyncio.run(_httpx_load(proxy.url, server.url, etags, args.concurrency, count=300))  # warm up
                proxy.control("--instr=on")
                proxy.control("--zero")
                started = time.monotonic()
                asyncio.run(_httpx_load(proxy.url, server.url, etags, args.concurrency, count=count))
                proxy.control("--dump")
                per_request[label] = _wait_for_dump(out) / count
                print(f"  {label:<21} {per_request[label]:12,.0f} instructions/request in mitmdump's process "
                      f"({count} requests, {time.monotonic() - started:.0f} s under callgrind)", flush=True)
    extra = per_request[WATCHED] / per_request[PLAIN] - 1
    print(f"etagwatch adds {per_request[WATCHED] - per_request[PLAIN]:,.0f} instructions per request to mitmdump's "
          f"process: +{100 * extra:.1f} % (its child processes run beside it and are not counted)")
    return 0


def _option(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected OPTION=VALUE, got {text!r}")
    return name, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="See BENCHMARKS.md, section Proxy.")
    parser.add_argument("--seconds", type=float, default=2.0, help="measured seconds per phase (default 2)")
    parser.add_argument("--rounds", type=int, default=24, help="plain/etagwatch phase pairs (default 24)")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections (default 8)")
    parser.add_argument("--client", choices=("wrk", "httpx"), default="wrk", help="load generator (default wrk)")
    parser.add_argument("--pin", action="store_true", help="mitmdump on the last CPU, everything else on the others")
    parser.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE", type=_option,
                        help="an etagwatch option for the watched proxy, e.g. etagwatch_annotate=false (repeatable)")
    parser.add_argument("--paired", action="store_true",
                        help="load both proxies at once, both pinned to the last CPU (needs wrk)")
    parser.add_argument("--instructions", type=int, metavar="N", default=0,
                        help="count instructions per request over N requests under callgrind instead")
    args = parser.parse_args()
    if args.instructions:
        return instructions(args)
    return throughput(args)


if __name__ == "__main__":
    sys.exit(main())
