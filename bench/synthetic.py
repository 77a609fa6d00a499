"""Synthetic captures for the benchmarks (bench/detect.py, bench/analyze.py) and the tests that
need a large capture: a frame with the store's columns, and a store file built from it.

The capture mixes what real traffic holds: static files with one value (most), load-balanced
files with per-backend ETags, per-client tracker pixels, random-per-response API ETags, and
resources without validators; 1000 clients; about 20 exchanges per resource; a third of the
requests are revalidations. Generation is vectorised numpy.
"""

from __future__ import annotations

import sqlite3
from email.utils import formatdate
from pathlib import Path

import numpy as np
import pandas as pd


def synthetic(n: int, seed: int = 1) -> pd.DataFrame:
    """``n`` exchanges with the columns the detectors read (others missing)."""
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


def as_loaded(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` in the dtypes ``analysis.store.load_exchanges`` gives: text as object, equal
    strings one object (missing: NaN, or None in a column of missing values only)."""
    out = {}
    for name in frame.columns:
        col = frame[name]
        if col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
            codes, uniques = pd.factorize(col.to_numpy(dtype=object))
            fill = None if len(uniques) == 0 else np.nan
            col = pd.Series(np.append(np.asarray(uniques, dtype=object), fill)[codes],
                            dtype=object)
        out[name] = col
    return pd.DataFrame(out, copy=False)


def _text(*parts: object) -> np.ndarray:
    """Element-wise concatenation of arrays and constants, as an object array of str."""
    n = next(len(p) for p in parts if not isinstance(p, str))  # type: ignore[arg-type]
    acc = np.full(n, "", dtype=object)
    for part in parts:
        acc = acc + (part if isinstance(part, str)
                     else pd.Series(np.asarray(part, dtype=object)).astype(str).to_numpy(dtype=object))
    return acc


def as_stored(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (from ``synthetic``) with what a real ingest also stores: scheme, path, query,
    HTTP version, page and first party, Date / Last-Modified (static files), Cache-Control,
    Server and both header lists as JSON, so loading the store costs what a real one costs."""
    out = frame.copy()
    n = len(out)
    url = out["url"].astype(str)
    parts = url.str.extract(r"^(\w+)://([^/]+)(/[^?]*)", expand=True)
    res = pd.Series(parts[2].str.slice(2), dtype=object).astype(int).to_numpy()
    static = res % 20 < 14
    secs = np.floor(out["started"].to_numpy()).astype(np.int64)
    day = secs // 86400
    dates = pd.Series(pd.unique(day)).map(lambda d: formatdate(d * 86400, usegmt=True))
    date = pd.Series(day).map(dict(zip(pd.unique(day), dates, strict=True))).to_numpy(dtype=object)
    lm_of = {r: formatdate(1_600_000_000 + (r % 20_000) * 3600, usegmt=True) for r in np.unique(res[static])}
    last_modified = np.full(n, None, dtype=object)
    last_modified[static] = pd.Series(res[static]).map(lm_of).to_numpy(dtype=object)
    ok = out["status"].to_numpy() == 200
    etag = out["etag"].to_numpy(dtype=object)
    tag_line = np.where(pd.isna(etag), "", _text('["etag", "', pd.Series(etag).fillna("")
                                                  .str.replace('"', '\\"'), '"], '))
    lm_line = np.where(pd.isna(last_modified), "",
                       _text('["last-modified", "', pd.Series(last_modified).fillna(""), '"], '))
    length = np.where(ok, _text('["content-length", "', out["body_size"], '"], '), "")
    out["scheme"] = parts[0].to_numpy(dtype=object)
    out["path"] = parts[2].to_numpy(dtype=object)
    out["query"] = None
    out["http_version"] = "HTTP/2"
    out["page_url"] = _text("https://", parts[1], "/")
    out["first_party"] = out["host"]
    out["third_party"] = False
    out["date"] = date
    out["date_ts"] = (day * 86400).astype(float)
    out["last_modified"] = last_modified
    out["last_modified_ts"] = np.where(static, 1_600_000_000 + (res % 20_000) * 3600.0, np.nan)
    out["cache_control"] = "max-age=0, must-revalidate"
    out["server"] = "nginx/1.24.0"
    out["req_headers"] = _text('[["host", "', parts[1], '"], ["user-agent", "Mozilla/5.0 (X11; '
                               'Linux x86_64) AppleWebKit/537.36"], ["accept", "text/css,*/*;q=0.1"]'
                               ', ["accept-encoding", "gzip, deflate, br"]]')
    out["resp_headers"] = _text('[', tag_line, lm_line, length, '["content-type", "text/css"], '
                                '["date", "', date, '"], ["server", "nginx/1.24.0"], '
                                '["cache-control", "max-age=0, must-revalidate"]]')
    return out


def write_store(frame: pd.DataFrame, path: Path, *, batch: int = 50_000) -> Path:
    """A store file holding ``frame``'s rows (columns it lacks stored as NULL)."""
    from analysis.store import Store

    Store(path).close()  # the schema, meta and key of a real store
    cols = list(frame.columns)
    conn = sqlite3.connect(path)
    sql = f"INSERT INTO exchanges ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    with conn:
        for start in range(0, len(frame), batch):
            part = frame.iloc[start:start + batch].astype(object)
            part = part.where(part.notna(), None)
            conn.executemany(sql, [tuple(_plain(v) for v in row)
                                   for row in part.itertuples(index=False, name=None)])
    conn.close()
    return path


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value
