"""An origin whose ETag is the SHA-256 hex digest of the body (as object stores use a digest
of the bytes): content-derived, the same for every client, benign. Honours If-None-Match."""

from __future__ import annotations

import hashlib

from analysis.lab.origins.base import LabHandler, PyOrigin, http_date, if_none_match_tags

WIDGET_JS = b"/* widget: content-addressed */\ndocument.documentElement.dataset.widget = 'ok';\n"
#: A fixed modification time, so Last-Modified is stable too.
MODIFIED = 1_700_000_000


class DigestHandler(LabHandler):
    server_version = "object-store"

    def do_GET(self) -> None:
        etag = hashlib.sha256(WIDGET_JS).hexdigest()
        headers = {
            "Content-Type": "application/javascript",
            "ETag": f'"{etag}"',
            "Last-Modified": http_date(MODIFIED),
            "Cache-Control": "no-cache",
        }
        sent = if_none_match_tags(self.headers.get("If-None-Match"))
        self.answer(304 if etag in sent or "*" in sent else 200, headers, WIDGET_JS)


class DigestOrigin(PyOrigin):
    kind = "digest"
    handler = DigestHandler
