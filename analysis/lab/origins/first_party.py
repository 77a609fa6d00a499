"""The first-party page (news.lab.test) that embeds resources from every other lab site, so
they load in a third-party context, as trackers and CDNs do on real sites.

Its script plays evercookie's respawn: it keeps an identifier in localStorage and sends it to
the echo tracker as If-None-Match, a value that server never issued, which it echoes with 304.
When everything has loaded the page sets ``window.labDone`` so a browser driver can wait for it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping

from analysis.lab.origins.base import LabHandler, PyOrigin

#: How each embedded kind of resource is written into the page.
_TAGS = {
    "css": '<link rel="stylesheet" href="{url}">',
    "js": '<script src="{url}"></script>',
    "img": '<img src="{url}" alt="" width="1" height="1">',
}

_RESPAWN = """<script>
(async () => {
  let id = localStorage.getItem("lab-id");
  if (!id) {
    id = Array.from(crypto.getRandomValues(new Uint8Array(12)),
                    b => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem("lab-id", id);
  }
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), 2000);
  try {
    await fetch(%s, {headers: {"If-None-Match": '"' + id + '"'}, cache: "no-store",
                     signal: stop.signal});
  } catch (e) { /* the page must finish even if the tracker is down or slow */ }
  clearTimeout(timer);
  window.labDone = true;
})();
</script>"""


def render_page(embeds: Mapping[str, tuple[str, str]], respawn_url: str | None) -> bytes:
    """The page: ``embeds`` maps a label to (kind, url), kind in css / js / img."""
    parts = ["<!doctype html>", "<meta charset=utf-8>", "<title>Lab News</title>"]
    for label, (kind, url) in embeds.items():
        parts.append(f"<!-- {html.escape(label)} -->")
        parts.append(_TAGS[kind].format(url=html.escape(url, quote=True)))
    parts.append("<h1>Lab News</h1><p>Today: validators.</p>")
    if respawn_url:
        parts.append(_RESPAWN % json.dumps(respawn_url))
    else:
        parts.append("<script>window.labDone = true;</script>")
    return ("\n".join(parts) + "\n").encode()


class FirstPartyHandler(LabHandler):
    server_version = "news-site"

    def do_GET(self) -> None:
        origin: FirstPartyOrigin = self.origin  # type: ignore[assignment]
        if self.path.split("?", 1)[0] not in ("/", "/index.html"):
            super().do_GET()
            return
        page = render_page(origin.embeds, origin.respawn_url)
        self.answer(
            200, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"}, page
        )


class FirstPartyOrigin(PyOrigin):
    kind = "first-party"
    handler = FirstPartyHandler

    def __init__(
        self,
        embeds: Mapping[str, tuple[str, str]] | None = None,
        respawn_url: str | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.embeds = dict(embeds or {})
        self.respawn_url = respawn_url
