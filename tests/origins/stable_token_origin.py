"""A benign first-party resource that one client cannot tell from a tracker: one opaque,
high-entropy ETag (no digest of the body, no server format) that every client gets and
that If-None-Match revalidates. A single-client capture leaves it undetermined; fresh clients
all getting the same value clear it."""

from __future__ import annotations

from analysis.lab.origins.base import LabHandler, PyOrigin, if_none_match_tags

ETAG = "Zq81hR2mK0pL7sX4vW9y"
#: A session cookie on every response: no store or output may hold its value in clear.
COOKIE_SECRET = "s3cr3t-session-7d41c9"
BODY = b'{"items": [' + b",".join(b'"item-%04d"' % i for i in range(600)) + b"]}\n"  # ~7 kB


class StableTokenHandler(LabHandler):
    server_version = "app-server"

    def do_GET(self) -> None:
        headers = {"Content-Type": "application/json", "ETag": f'"{ETAG}"',
                   "Cache-Control": "no-cache", "Set-Cookie": f"sid={COOKIE_SECRET}; Path=/"}
        sent = if_none_match_tags(self.headers.get("If-None-Match"))
        self.answer(304 if ETAG in sent else 200, headers, BODY)


class StableTokenOrigin(PyOrigin):
    kind = "stable-token"
    handler = StableTokenHandler
