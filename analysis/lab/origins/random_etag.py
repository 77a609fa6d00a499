"""An origin that sends a new random ETag on every response for the same bytes: the validator
is useless (never a 304) but identifies nobody, since no client ever sees a value twice."""

from __future__ import annotations

import secrets

from analysis.lab.origins.base import LabHandler, PyOrigin

TICKER_JS = b"/* ticker */\ndocument.documentElement.dataset.ticker = 'ok';\n"


class RandomETagHandler(LabHandler):
    server_version = "unstable-api"

    def do_GET(self) -> None:
        headers = {
            "Content-Type": "application/javascript",
            "ETag": f'"{secrets.token_hex(8)}"',
            "Cache-Control": "no-cache",
        }
        self.answer(200, headers, TICKER_JS)


class RandomETagOrigin(PyOrigin):
    kind = "random"
    handler = RandomETagHandler
