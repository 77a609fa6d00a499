"""`etagwatch crawl` over the lab: pages per minute with J=1 and J=2 profiles at once, time
per site per profile, and the crawl's peak memory (PSS of the crawler, its recorders and
browsers),
in one invocation so that the ratio J2/J1 sees the same machine.

    nice .venv/bin/python bench/crawl.py [--profiles 3] [--visits 3] [--scheme https]

The lab (real nginx, Apache httpd, haproxy and the Python origins) and a second first party
(shop.mall.test, embedding the same third parties) serve the two sites; every run is the real
command in a process of its own with --lab-route (nothing leaves loopback), into a fresh store.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.lab.lab import Lab  # noqa: E402
from analysis.lab.origins.first_party import FirstPartyOrigin  # noqa: E402
from analysis.lab.servers import NginxTLSFront  # noqa: E402


def _tree_pss(root: int) -> int:
    """Proportional set size of ``root`` and every process below it (crawler, mitmdumps,
    Chromium): pages shared by Chromium's processes are counted once, not once per process
    as a sum of RSS would."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            rollup = (entry / "smaps_rollup").read_text()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        found = re.search(r"^Pss:\s+(\d+) kB", rollup, re.M)
        rss[pid] = int(found.group(1)) * 1024 if found else 0
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def run_crawl(sites: Path, ca: Path | None, jobs: int, profiles: int, visits: int,
              out: Path) -> dict[str, float]:
    db = out / f"j{jobs}.sqlite"
    cmd = [sys.executable, "-m", "analysis", "crawl", str(sites), "--profiles", str(profiles),
           "--visits", str(visits), "--jobs", str(jobs), "--db", str(db), "--lab-route",
           "--ready", "window.labDone === true", "--settle", "0.3"]
    if ca is not None:
        cmd += ["--upstream-ca", str(ca)]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    peak = 0

    def sample() -> None:
        nonlocal peak
        while proc.poll() is None:
            peak = max(peak, _tree_pss(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.monotonic() - start
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"crawl J={jobs} failed ({proc.returncode}): {stderr}{stdout}")
    pages = int(re.search(r"; (\d+) pages? into", stdout).group(1))
    per_site = float(re.search(r"([\d.]+) s per site per profile", stdout).group(1))
    crawling = float(re.search(r"([\d.]+) pages per minute in this run", stdout).group(1))
    return {"wall": wall, "pages": pages, "ppm": 60 * pages / wall, "per_site": per_site,
            "crawl_ppm": crawling, "peak_mb": peak / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=3)
    parser.add_argument("--visits", type=int, default=3)
    parser.add_argument("--scheme", choices=("http", "https"), default="https")
    args = parser.parse_args()
    with Lab() as lab, tempfile.TemporaryDirectory(prefix="etagwatch-bench-crawl-") as tmp:
        out = Path(tmp)
        https = args.scheme == "https"
        embeds = {k: (s.embed, s.url_for(args.scheme)) for k, s in lab.sites.items()}
        shop = FirstPartyOrigin(embeds=embeds, name="shop",
                                respawn_url=lab.sites["echo"].url_for(args.scheme) + "?respawn=1")
        with shop:
            if https:
                files = lab.ca.issue(["shop.mall.test"], out, stem="shop")
                front = NginxTLSFront(f"127.0.0.1:{shop.port}", tls=files, name="shop-tls")
                front.start()
                urls = [lab.https_page_url, f"https://shop.mall.test:{front.port}/"]
            else:
                front = None
                urls = [lab.page_url, f"http://shop.mall.test:{shop.port}/"]
            sites = out / "sites.txt"
            sites.write_text("\n".join(urls) + "\n")
            try:
                results = {j: run_crawl(sites, lab.ca.cert_path if https else None, j,
                                        args.profiles, args.visits, out) for j in (1, 2)}
            finally:
                if front is not None:
                    front.stop()
    print(f"{args.scheme}, 2 sites x {args.profiles} profiles x {args.visits} visits")
    for j, r in results.items():
        print(f"J={j}: {r['pages']} pages in {r['wall']:.1f} s = {r['ppm']:.1f} pages/min "
              f"(the command's start and closing analysis included; {r['crawl_ppm']:.1f} while "
              "crawling); "
              f"{r['per_site']:.1f} s per site per profile (median); peak PSS "
              f"{r['peak_mb']:.0f} MB")
    print(f"J=2 / J=1 pages per minute: {results[2]['ppm'] / results[1]['ppm']:.2f} "
          f"(while crawling: {results[2]['crawl_ppm'] / results[1]['crawl_ppm']:.2f})")


if __name__ == "__main__":
    main()
