"""A tracking pixel that stores a unique identifier in the browser's cache through its ETag.

A client without If-None-Match gets a fresh high-entropy ETag and the pixel with
``Cache-Control: no-cache``, which makes the browser revalidate on every visit and so send the
identifier back. A client whose If-None-Match holds an issued value gets 304 and keeps it.
Unknown values get a new identifier, as a real tracker would (it never reflects them).
"""

from __future__ import annotations

import secrets

from analysis.lab.origins.base import PIXEL_GIF, LabHandler, PyOrigin, if_none_match_tags


class TrackerHandler(LabHandler):
    server_version = "pixel-tracker"

    def do_GET(self) -> None:
        origin: TrackerOrigin = self.origin  # type: ignore[assignment]
        sent = if_none_match_tags(self.headers.get("If-None-Match"))
        with origin.lock:
            known = next((t for t in sent if t in origin.issued), None)
            if known is None:
                known = secrets.token_hex(16)
                origin.issued.add(known)
                status = 200
            else:
                status = 304
        self.answer(
            status,
            {
                "Content-Type": "image/gif",
                "ETag": f'"{known}"',
                "Cache-Control": "no-cache",
            },
            PIXEL_GIF,
        )


class TrackerOrigin(PyOrigin):
    kind = "tracker"
    handler = TrackerHandler

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.issued: set[str] = set()
