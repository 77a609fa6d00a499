"""The representations a replaying proxy currently serves, and how writes change them.

Stateful replay lets API developers test clients against lost updates: a PUT, PATCH or DELETE
that passes its preconditions changes what later GETs see (new body, new strong ETag, new
Last-Modified), so a second client holding the old ETag gets 412.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import formatdate

from mitmproxy import http

ResourceKey = tuple[str, str, int, str]  # scheme, host, port, path with query


def resource_key(request: http.Request) -> ResourceKey:
    """One key per target resource; the same request hashing server replay does, minus body."""
    return (request.scheme, request.pretty_host.lower(), request.port, request.path)


def strong_etag(body: bytes) -> str:
    """A strong ETag derived from the bytes, so equal bodies give equal tags on every replay."""
    digest = hashlib.sha256(body).digest()[:15]
    return '"' + base64.urlsafe_b64encode(digest).decode() + '"'


def http_date(ts: float) -> str:
    """IMF-fixdate; engineer A's ``format_http_date`` when present, else the stdlib's."""
    try:
        from analysis.httpdate import format_http_date
    except ImportError:
        return formatdate(ts, usegmt=True)
    return format_http_date(ts)


@dataclass
class Representation:
    """The current selected representation of one resource: its full 200 response."""

    response: http.Response
    version: int = 0

    @property
    def etag(self) -> str | None:
        return self.response.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.response.headers.get("last-modified")


@dataclass
class ReplayState:
    """Representations by resource key; tombstones remember what a DELETE removed."""

    resources: dict[ResourceKey, Representation] = field(default_factory=dict)
    deleted: set[ResourceKey] = field(default_factory=set)
    #: the last recorded response of each GET and HEAD, any status: what hermetic replay
    #: reuses once server replay has none left (``addons.replay_guard``)
    recorded: dict[tuple[str, ResourceKey], http.Response] = field(default_factory=dict)

    def seed(self, flows: Iterable[http.HTTPFlow]) -> int:
        """Take each resource's representation from the last recorded successful GET."""
        seeded = 0
        for f in flows:
            if isinstance(f, http.HTTPFlow) and f.response is not None and f.request.method in ("GET", "HEAD"):
                self.recorded[(f.request.method, resource_key(f.request))] = f.response
            if (
                isinstance(f, http.HTTPFlow)
                and f.request.method == "GET"
                and f.response is not None
                and f.response.status_code == 200
                and f.response.raw_content is not None
            ):
                self.resources[resource_key(f.request)] = Representation(f.response.copy())
                seeded += 1
        return seeded

    def recorded_answer(self, request: http.Request) -> http.Response | None:
        """A copy of the last recorded response to this GET or HEAD (a HEAD falls back to the
        GET's, without its body), or None: other methods are answered from the recording only
        when server replay matched their body too."""
        method = request.method.upper()
        if method not in ("GET", "HEAD"):
            return None
        key = resource_key(request)
        rep = self.resources.get(key)
        if rep is not None and method == "GET":  # stateful writes change it
            return rep.response.copy()
        response = self.recorded.get((method, key))
        if response is None and method == "HEAD":
            response = rep.response if rep is not None else self.recorded.get(("GET", key))
            if response is not None:
                return head_of(response)
        return response.copy() if response is not None else None

    def get(self, key: ResourceKey) -> Representation | None:
        return self.resources.get(key)

    def knows_host(self, request: http.Request) -> bool:
        key = resource_key(request)
        return any(k[:3] == key[:3] for k in self.resources) or any(
            k[:3] == key[:3] for k in self.deleted
        )

    def put(self, key: ResourceKey, request: http.Request, now: float | None = None) -> Representation:
        """Store the request body as the new representation (PUT semantics, RFC 9110 9.3.4)."""
        body = request.raw_content or b""
        headers = [
            (b"content-type", request.headers.get("content-type", "application/octet-stream").encode()),
        ]
        return self._store(key, body, headers, now)

    def patch(self, key: ResourceKey, request: http.Request, now: float | None = None) -> Representation:
        """Apply a JSON merge patch (RFC 7396) when both sides are JSON; any other patch format
        is opaque to us, so the body stays and only the version (hence the ETag) moves on."""
        current = self.resources[key]
        old_body = current.response.content or b""
        patch_body = request.raw_content or b""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        new_body: bytes
        if ctype in ("application/merge-patch+json", "application/json"):
            try:
                merged = merge_patch(json.loads(old_body or b"{}"), json.loads(patch_body))
                new_body = json.dumps(merged, separators=(",", ":")).encode()
            except ValueError:
                new_body = old_body + b"\n" + patch_body
        else:
            new_body = old_body
        content_type = current.response.headers.get("content-type", "application/octet-stream")
        # an opaque patch leaves the bytes we know of unchanged, yet the resource did change
        tag_source = new_body if new_body != old_body else b"%b\0%d\0%b" % (new_body, current.version + 1, patch_body)
        return self._store(key, new_body, [(b"content-type", content_type.encode())], now, tag_source)

    def delete(self, key: ResourceKey) -> None:
        self.resources.pop(key, None)
        self.deleted.add(key)

    def _store(
        self,
        key: ResourceKey,
        body: bytes,
        headers: list[tuple[bytes, bytes]],
        now: float | None,
        tag_source: bytes | None = None,
    ) -> Representation:
        previous = self.resources.get(key)
        version = previous.version + 1 if previous else 0
        now = time.time() if now is None else now
        response = http.Response.make(
            200,
            body,
            [
                *headers,
                (b"etag", strong_etag(body if tag_source is None else tag_source).encode()),
                (b"last-modified", http_date(now).encode()),
                (b"date", http_date(now).encode()),
            ],
        )
        rep = Representation(response, version)
        self.resources[key] = rep
        self.deleted.discard(key)
        return rep


def head_of(response: http.Response) -> http.Response:
    """The same header section without the body, Content-Length kept as the GET's."""
    head = response.copy()
    if head.raw_content:
        length = len(head.raw_content)
        head.raw_content = b""
        head.headers["content-length"] = str(length)
    return head


def merge_patch(target: object, patch: object) -> object:
    """RFC 7396 JSON Merge Patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result
