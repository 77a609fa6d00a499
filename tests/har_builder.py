"""Hand-made HAR files that look like real browser exports (Chrome's WebInspector, Firefox, IE
and Edge's F12 tools, Polly.JS): pages, ``pageref``, timings, ``_fromCache``, per-request id
headers. Verdict tests write them to disk and run ``etagwatch analyze`` on them, so the readers'
ingest-side evidence (digests, response ids, cache hits) is part of what is tested.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any

CREATORS = {
    "chrome": {"name": "WebInspector", "version": "537.36"},
    "firefox": {"name": "Firefox", "version": "115.0"},
    "ie": {"name": "F12 Developer Tools", "version": "11.0.9600"},
    "polly": {"name": "Polly.JS", "version": "6.0.6"},
}


def http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Har:
    """One capture: add pages and exchanges in time order, then ``write(path)``."""

    def __init__(self, producer: str = "chrome") -> None:
        self.creator = CREATORS[producer]
        self.pages: list[dict[str, Any]] = []
        self.entries: list[dict[str, Any]] = []

    def page(self, url: str, at: float) -> str:
        """A top-level page; returns its id for ``pageref``."""
        pid = f"page_{len(self.pages) + 1}"
        self.pages.append({"startedDateTime": iso(at), "id": pid, "title": url,
                           "pageTimings": {"onContentLoad": 100, "onLoad": 200}})
        return pid

    def get(
        self,
        url: str,
        *,
        at: float,
        status: int = 200,
        etag: str | None = None,
        last_modified: float | None = None,
        inm: str | None = None,
        ims: float | None = None,
        body: bytes | str | None = None,
        size: int | None = None,
        mime: str = "image/gif",
        page: str | None = None,
        date: float | None = None,
        headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
        req_headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
        timings: dict[str, float] | None = None,
        time: float = 35.0,
        **extra: object,
    ) -> dict[str, Any]:
        """One GET. ``body``: the content text (bytes go in base64, as Chrome writes binary
        bodies); ``size`` without ``body``: an export that kept only the size."""
        resp = [("Date", http_date(at if date is None else date)), *headers]
        if etag is not None:
            resp.append(("ETag", etag))
        if last_modified is not None:
            resp.append(("Last-Modified", http_date(last_modified)))
        req = [("Host", url.split("/")[2]), ("User-Agent", "Mozilla/5.0 etagwatch-test"),
               *req_headers]
        if inm is not None:
            req.append(("If-None-Match", inm))
        if ims is not None:
            req.append(("If-Modified-Since", http_date(ims)))
        content: dict[str, Any] = {"size": 0, "mimeType": mime}
        if body is not None and status != 304:
            raw = body.encode() if isinstance(body, str) else body
            content["size"] = len(raw)
            if isinstance(body, bytes):
                content["text"], content["encoding"] = base64.b64encode(raw).decode(), "base64"
            else:
                content["text"] = body
        elif size is not None and status != 304:
            content["size"] = size
        entry: dict[str, Any] = {
            "startedDateTime": iso(at),
            "time": time,
            "request": {"method": "GET", "url": url, "httpVersion": "HTTP/1.1",
                        "headers": [{"name": n, "value": v} for n, v in req],
                        "cookies": [], "queryString": [], "headersSize": -1, "bodySize": 0},
            "response": {"status": status, "statusText": "OK" if status == 200 else "Not Modified",
                         "httpVersion": "HTTP/1.1",
                         "headers": [{"name": n, "value": v} for n, v in resp],
                         "cookies": [], "content": content, "redirectURL": "",
                         "headersSize": -1, "bodySize": content["size"]},
            "cache": {},
            "timings": timings or {"blocked": 1, "dns": -1, "connect": -1, "ssl": -1,
                                   "send": 1, "wait": time - 3, "receive": 1},
        }
        if page is not None:
            entry["pageref"] = page
        entry.update(extra)
        self.entries.append(entry)
        return entry

    def write(self, path: Path) -> Path:
        log: dict[str, Any] = {"version": "1.2", "creator": self.creator}
        if self.pages:
            log["pages"] = self.pages
        log["entries"] = self.entries
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"log": log}), encoding="utf-8")
        return path
