"""Builders of synthetic multi-client Exchange records for detector tests.

Each scenario is a small story told as real exchanges (a 200 that issues a validator, later
revalidations answered 304 or 200), so detector tests exercise the same columns the readers fill.
Reusable by other engineers: ``frame(records)`` turns records into the detectors' DataFrame.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable
from pathlib import Path

import msgspec
import pandas as pd

from analysis.digests import digest_match
from analysis.exchange import COLUMNS, Exchange

T0 = 1_700_000_000.0
_counter = itertools.count()


def body_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def http_date(ts: float) -> str:
    from email.utils import formatdate

    return formatdate(ts, usegmt=True)


def exchange(
    *,
    client: str,
    url: str,
    status: int = 200,
    etag: str | None = None,
    inm: str | None = None,
    method: str = "GET",
    body: str | None = "same body",
    started: float | None = None,
    server_ip: str | None = "192.0.2.1",
    backend: dict[str, str] | None = None,
    last_modified: float | None = None,
    ims: float | None = None,
    source: str | None = None,
    **extra: object,
) -> Exchange:
    """One exchange with realistic derived columns (host, opaque tag, sizes, hashes, dates)."""
    idx = next(_counter)
    host = url.split("/")[2]
    started = T0 + idx if started is None else started
    weak = etag.startswith("W/") if etag else None
    opaque = etag[2:].strip('"') if weak else etag.strip('"') if etag else None
    has_body = status != 304 and body is not None and method != "HEAD"
    req_headers = [["host", host]]
    if inm:
        req_headers.append(["if-none-match", inm])
    if ims is not None:
        req_headers.append(["if-modified-since", http_date(ims)])
    for name in ("req_if_match", "req_if_unmodified_since"):
        if extra.get(name):
            req_headers.append([name[4:].replace("_", "-"), str(extra[name])])
    resp_headers = [["date", http_date(started)]]
    if etag:
        resp_headers.append(["etag", etag])
    if last_modified is not None:
        resp_headers.append(["last-modified", http_date(last_modified)])
    fields: dict[str, object] = {
        "source": source or f"synthetic/{client}.har",
        "source_kind": "har",
        "entry_index": idx,
        "client": client,
        "started": started,
        "method": method,
        "url": url,
        "scheme": url.split(":")[0],
        "host": host,
        "path": "/" + url.split("/", 3)[3].split("?")[0] if url.count("/") >= 3 else "/",
        "query": url.split("?", 1)[1] if "?" in url else None,
        "req_if_none_match": inm,
        "req_if_modified_since": http_date(ims) if ims is not None else None,
        "req_headers": json.dumps(req_headers),
        "resp_headers": json.dumps(resp_headers),
        "status": status,
        "etag": etag,
        "etag_count": 1 if etag else 0,
        "etag_weak": weak,
        "etag_opaque": opaque,
        "etag_hash": hashlib.sha256(b"k" + opaque.encode()).hexdigest()[:32] if opaque else None,
        "last_modified": http_date(last_modified) if last_modified is not None else None,
        "last_modified_ts": last_modified,
        "date": http_date(started),
        "date_ts": started,
        "content_type": "image/gif" if has_body or status == 304 else None,
        "body_size": len(body) if has_body and body else 0,
        "content_size": len(body) if has_body and body else None,
        "content_hash": body_hash(body) if has_body and body else None,
        # as the readers do while the body is at hand
        "etag_digest": digest_match(opaque, body.encode()) if has_body and body else None,
        "server_ip": server_ip,
        "backend": json.dumps(backend) if backend else None,
    }
    fields.update(extra)
    return Exchange(**fields)  # type: ignore[arg-type]


def store(path: Path, records: Iterable[Exchange]) -> Path:
    """A store at ``path`` holding ``records`` (for commands that read a .sqlite input)."""
    from analysis.store import Store

    with Store(path) as db:
        db.insert(records)
    return path


def frame(records: Iterable[Exchange]) -> pd.DataFrame:
    """The detectors' input: one row per exchange, columns = analysis.exchange.COLUMNS."""
    rows = [msgspec.structs.asdict(r) for r in records]
    return pd.DataFrame(rows, columns=list(COLUMNS))


# ---------------------------------------------------------------- scenarios


def visits(
    client: str, url: str, tag: str, *, revisits: int = 2, start: float = T0, **kw: object
) -> list[Exchange]:
    """A client's first fetch (200 issuing ``tag``) and revisits answered 304 for it."""
    out = [exchange(client=client, url=url, etag=tag, started=start, **kw)]  # type: ignore[arg-type]
    for i in range(revisits):
        out.append(
            exchange(  # type: ignore[arg-type]
                client=client, url=url, status=304, etag=tag, inm=tag,
                started=start + 60 * (i + 1), **kw,
            )
        )
    return out


def tracker(n_clients: int, url: str = "https://t.example.net/pixel.gif") -> list[Exchange]:
    """A tracker: one unique, stable, high-entropy ETag per client, always revalidated 304."""
    out: list[Exchange] = []
    for c in range(n_clients):
        tag = '"' + hashlib.sha1(f"user-{c}".encode()).hexdigest() + '"'
        out += visits(f"client{c}", url, tag, start=T0 + c * 7, third_party=True)
    return out


def load_balanced(
    n_backends: int, n_clients: int, url: str = "https://www.example.org/app.js",
    *, fetches: int = 6,
) -> list[Exchange]:
    """Apache inode-size-mtime ETags differing per backend for identical bytes: each request
    goes round robin to a backend; revalidations hit another backend and get 200 again."""
    tags = [f'"{0x1a2b + b:x}-5d2-5e1c2f3a4b5c6"' for b in range(n_backends)]
    out: list[Exchange] = []
    rr = itertools.count()
    for c in range(n_clients):
        held: str | None = None
        for f in range(fetches):
            b = next(rr) % n_backends
            kw = {"server_ip": "192.0.2.10", "backend": {"x-backend": f"web{b}"}}
            started = T0 + c * 1000 + f * 60
            if held == tags[b]:
                out.append(exchange(client=f"client{c}", url=url, status=304, etag=tags[b],
                                    inm=held, started=started, **kw))  # type: ignore[arg-type]
            else:
                out.append(exchange(client=f"client{c}", url=url, etag=tags[b], inm=held,
                                    started=started, **kw))  # type: ignore[arg-type]
            held = tags[b]
    return out


def echo_tracker(url: str = "https://e.example.com/ec.png") -> list[Exchange]:
    """evercookie's ETag backend seen by one client: it issues an id, then answers 304 to
    If-None-Match values it never issued, echoing them back."""
    out = [exchange(client="solo", url=url, etag='"id-7f3a9c"', started=T0)]
    for i, forged in enumerate(('"forged-1b2c3d"', '"forged-9e8f7a"')):
        out.append(exchange(client="solo", url=url, status=304, etag=forged, inm=forged,
                            started=T0 + 100 * (i + 1)))
    return out


def digest_origin(n_clients: int = 3, url: str = "https://cdn.example.com/lib.css") -> list[Exchange]:
    """S3-style MD5-of-body ETag: the same value for everyone; a content change gives a new one."""
    out: list[Exchange] = []
    for c in range(n_clients):
        body = "v1 body" if c < n_clients - 1 else "v2 body"
        tag = '"' + hashlib.md5(body.encode()).hexdigest() + '"'
        out += visits(f"client{c}", url, tag, body=body, start=T0 + c * 10)
    return out


def random_per_response(
    n_clients: int = 2, fetches: int = 5, url: str = "https://api.example.com/feed"
) -> list[Exchange]:
    """A fresh random ETag on every response for identical content; never a 304."""
    out: list[Exchange] = []
    for c in range(n_clients):
        held: str | None = None
        for f in range(fetches):
            tag = '"' + hashlib.sha256(f"{c}-{f}".encode()).hexdigest()[:20] + '"'
            out.append(exchange(client=f"client{c}", url=url, etag=tag, inm=held,
                                started=T0 + c * 1000 + f))
            held = tag
    return out
