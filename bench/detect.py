"""Time analysis.detectors.run_all on synthetic captures of 10k .. 5M exchanges.

The capture mixes what real traffic holds: static files with one value (most), load-balanced
files with per-backend ETags, per-client tracker pixels, random-per-response API ETags, and
resources without validators; 1000 clients; about 20 exchanges per resource; a third of the
requests are revalidations. Generation is vectorised numpy and is not timed.

usage: python bench/detect.py [SIZE ...]   (default: 10000 100000 1000000 5000000)
Target (BENCHMARKS.md): 1M exchanges in at most 15 s, near-linear growth.
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np
import pandas as pd

from analysis.detectors import run_all


def synthetic(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_res = max(n // 20, 10)
    res = rng.integers(0, n_res, n)
    kind = res % 20  # 0-13 static, 14-15 load-balanced, 16-17 tracker, 18 random, 19 none
    client = rng.integers(0, 1000, n)
    backend = rng.integers(0, 4, n)
    started = 1_700_000_000 + np.sort(rng.random(n)) * 86400 * 7
    reval = rng.random(n) < 0.33
    static_tag = np.char.add(np.char.add('"', np.char.mod("%x-5d2", res)), '"')
    lb_tag = np.char.add(np.char.add(np.char.mod('"%x-', res), np.char.mod("%x-5e1c2f3a4b5c6", backend)), '"')
    trk_tag = np.char.add(np.char.add('"', np.char.mod("%016x", res * 1000 + client)), '"')
    rnd_tag = np.char.add(np.char.add('"', np.char.mod("%012x", rng.integers(0, 2**47, n))), '"')
    tag = np.select(
        [kind < 14, kind < 16, kind < 18, kind == 18],
        [static_tag, lb_tag, trk_tag, rnd_tag], default="",
    ).astype(object)
    tag[kind == 19] = None
    status = np.where(reval & (kind < 14) | reval & (kind >= 16) & (kind < 18), 304, 200)
    inm = np.where(reval & (kind < 19), tag, None)
    lb = (kind >= 14) & (kind < 16)
    inm[lb & reval] = np.char.add(np.char.add(np.char.mod('"%x-', res[lb & reval]),
                                              np.char.mod("%x-5e1c2f3a4b5c6", (backend[lb & reval] + 1) % 4)), '"')
    opaque = pd.Series(tag).str.strip('"')
    urls = np.char.add("https://h", np.char.add(np.char.mod("%d", res % 500), np.char.mod(".example/r%d", res)))
    body = np.where(status == 304, 0, 1000 + (res % 97) * 10)
    return pd.DataFrame({
        "source": "bench.har", "source_kind": "har", "entry_index": np.arange(n), "client":
        np.char.mod("c%d", client), "started": started, "method": "GET", "url": urls,
        "host": np.char.mod("h%d.example", res % 500), "req_if_none_match": inm,
        "status": status, "etag": tag, "etag_count": (tag != None).astype(int),  # noqa: E711
        "etag_weak": False, "etag_opaque": opaque.to_numpy(), "body_size": body,
        "content_size": np.where(status == 304, np.nan, body), "content_type": "text/css",
        "content_hash": np.where(status == 304, None, np.char.mod("h%d", res)),
        "server_ip": "192.0.2.1", "backend": np.char.mod('{"x-backend": "web%d"}', backend),
        "req_headers": "[[\"host\", \"x\"]]",
    })


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [10_000, 100_000, 1_000_000, 5_000_000]
    print(f"{'exchanges':>10} {'seconds':>8} {'us/exch':>8} {'resources':>9} {'findings':>8} "
          f"{'identifier':>10} {'churn':>6} {'peak RSS':>9}")
    for n in sizes:
        df = synthetic(n)
        t = time.perf_counter()
        a = run_all(df)
        dt = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        v = a.summary["verdicts"]
        print(f"{n:>10} {dt:>8.2f} {1e6 * dt / n:>8.2f} {len(a.resources):>9} "
              f"{len(a.findings):>8} {v['identifier']:>10} {v['churn']:>6} {rss:>7.0f}MB", flush=True)
        del df, a


if __name__ == "__main__":
    main(sys.argv[1:])
