"""Load replay sources: mitmproxy flow files as they are, HAR files cleaned entry by entry.

mitmproxy's HAR reader aborts the whole file on one entry it cannot convert (data: URLs,
non-ASCII URLs, postData without text) and turns browser cache hits and 304 entries into
responses the origin never sent for that request. So we walk the entries ourselves, drop cache
hits, 304s, failed entries and non-HTTP URLs, and hand each remaining entry to mitmproxy's own
converter (``mitmproxy.io.har.request_to_flow``) one at a time, dropping those it rejects.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mitmproxy import exceptions, http, io
from mitmproxy.io.har import request_to_flow


@dataclass
class LoadedSource:
    """Flows from one file plus what was dropped and why (reason -> count, first examples)."""

    path: str
    flows: list[http.HTTPFlow] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def drop(self, index: int, reason: str) -> None:
        self.dropped[reason] += 1
        if len(self.examples) < 3:
            self.examples.append(f"entry {index}: {reason}")

    def summary(self) -> str:
        text = f"{self.path}: {len(self.flows)} flows loaded"
        if self.dropped:
            parts = ", ".join(f"{n} {reason}" for reason, n in self.dropped.most_common())
            text += f", {sum(self.dropped.values())} entries dropped ({parts}; e.g. {'; '.join(self.examples)})"
        return text


def is_cache_hit(entry: dict) -> bool:
    """Chrome ``_fromCache``, Safari ``_fetchType`` cache kinds, Firefox cache entries with no
    httpVersion and no headers: the browser answered, the network did not."""
    if entry.get("_fromCache"):
        return True
    fetch_type = str(entry.get("_fetchType") or "").lower()
    if "cache" in fetch_type:
        return True
    response = entry.get("response") or {}
    return not response.get("httpVersion") and not response.get("headers") and bool(entry.get("cache"))


def drop_reason(entry: object) -> str | None:
    """Why an entry cannot be a replay source, or None when it can."""
    if not isinstance(entry, dict):
        return "not an object"
    request = entry.get("request")
    response = entry.get("response")
    if not isinstance(request, dict) or not isinstance(response, dict):
        return "no request or response"
    url = str(request.get("url") or "")
    if not url.lower().startswith(("http://", "https://")):
        return "not an http(s) URL"
    if is_cache_hit(entry):
        return "cache hits"
    status = response.get("status")
    if not isinstance(status, int) or status <= 0:
        return "failed requests"
    if status == 304:
        return "304 responses (the addon derives 304s from the 200)"
    return None


def load_har(path: str | Path) -> LoadedSource:
    loaded = LoadedSource(str(path))
    try:
        with open(path, "rb") as fh:
            har = json.loads(fh.read().decode("utf-8-sig"))
        entries = har["log"]["entries"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise exceptions.OptionsError(f"{path}: not a readable HAR file ({exc})") from exc
    for index, entry in enumerate(entries):
        reason = drop_reason(entry)
        if reason is None:
            try:
                flow = request_to_flow(entry)
                flow.request.url.encode("ascii")
            except Exception as exc:  # mitmproxy's converter rejects it: skip this entry only
                reason = f"rejected by mitmproxy's HAR reader ({type(exc).__name__})"
            else:
                loaded.flows.append(flow)
                continue
        loaded.drop(index, reason)
    return loaded


def load_flow_file(path: str | Path) -> LoadedSource:
    loaded = LoadedSource(str(path))
    try:
        with open(path, "rb") as fh:
            for f in io.FlowReader(fh).stream():
                if isinstance(f, http.HTTPFlow):
                    loaded.flows.append(f)
    except (OSError, exceptions.FlowReadException) as exc:
        raise exceptions.OptionsError(f"{path}: cannot read flows ({exc})") from exc
    return loaded


def load_source(path: str | Path) -> LoadedSource:
    """HAR when the file starts with '{' (after an optional BOM), as mitmproxy decides."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise exceptions.OptionsError(f"{path}: cannot read replay source ({exc.strerror})") from exc
    if head.lstrip(b"\xef\xbb\xbf").lstrip().startswith(b"{"):
        return load_har(path)
    return load_flow_file(path)
