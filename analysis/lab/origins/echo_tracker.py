"""evercookie's ETag backend: any If-None-Match is answered 304 with that very value echoed
as the ETag, whether or not it was ever issued; without one, 200 with a new identifier.

CORS headers let the first-party page's script respawn an identifier it kept elsewhere
(localStorage) by sending it as If-None-Match, which is how the echo shows in captures.
"""

from __future__ import annotations

import secrets

from analysis.lab.origins.base import PIXEL_GIF, LabHandler, PyOrigin

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag",
}


class EchoTrackerHandler(LabHandler):
    server_version = "echo-tracker"

    def do_OPTIONS(self) -> None:
        self.answer(
            204,
            {
                **CORS,
                "Access-Control-Allow-Headers": "If-None-Match",
                "Access-Control-Max-Age": "0",
            },
        )

    def do_GET(self) -> None:
        origin: EchoTrackerOrigin = self.origin  # type: ignore[assignment]
        sent = self.headers.get("If-None-Match")
        headers = {"Content-Type": "image/gif", "Cache-Control": "no-cache"}
        if self.headers.get("Origin"):  # CORS only for the page script's fetch
            headers.update(CORS)
        if sent:
            with origin.lock:
                origin.echoed += 1
            self.answer(304, {**headers, "ETag": sent.strip()})
            return
        self.answer(200, {**headers, "ETag": f'"{secrets.token_hex(12)}"'}, PIXEL_GIF)


class EchoTrackerOrigin(PyOrigin):
    kind = "echo-tracker"
    handler = EchoTrackerHandler

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.echoed = 0
