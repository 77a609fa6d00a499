"""One visit of one site by one profile: a load, a reload or a revisit in a new tab (visits
cycle through the three, as a person returns to a site), then optionally K same-site links,
each in a tab of its own so the site's tab stays for the next reload."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analysis.sites import site_of_url

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Response

#: What visit n does: KINDS[(n - 1) % 3].
KINDS = ("load", "reload", "new-tab")


class VisitError(Exception):
    """A visit that failed (timeout, refused, crashed page): recorded, never fatal."""


@dataclass(frozen=True)
class VisitOptions:
    timeout: float = 30.0  # seconds per page
    settle: float = 1.0  # seconds to wait after the load event for late requests
    ready: str = ""  # a JavaScript expression awaited after load (e.g. the lab's window.labDone)
    links: int = 0  # same-site links followed per visit


def visit_kind(number: int) -> str:
    return KINDS[(number - 1) % len(KINDS)]


class Tab:
    """The profile's site tab, carried from one visit to the next."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.page: Page | None = None
        self.url = ""

    def open(self, url: str, kind: str, options: VisitOptions) -> Page:
        ms = options.timeout * 1000
        if kind == "reload" and self.page is not None and self.url == url:
            _check(url, self.page.reload(wait_until="load", timeout=ms))
            return self.page
        if kind == "new-tab" or self.page is None or self.page.is_closed():
            old, self.page = self.page, self.context.new_page()
            if old is not None and not old.is_closed():
                old.close()
        self.url = url
        _check(url, self.page.goto(url, wait_until="load", timeout=ms))
        return self.page


    def discard(self) -> None:
        """After a failure: the tab may still be on its way to an error page, which would cut
        the next navigation short; the next visit gets a fresh tab."""
        page, self.page, self.url = self.page, None, ""
        if page is not None and not page.is_closed():
            from playwright.sync_api import Error as PlaywrightError

            with contextlib.suppress(PlaywrightError):
                page.close()


def _check(url: str, response: Response | None) -> None:
    """A page the site (or the proxy, for a site it could not reach) answered with an error
    status is a failed visit, though the browser shows it: its exchanges stay recorded."""
    if response is not None and response.status >= 400:
        reason = f" {response.status_text}" if response.status_text else ""
        raise VisitError(f"HTTP {response.status}{reason} for {url}")


def _settle(page: Page, options: VisitOptions) -> None:
    if options.ready:
        page.wait_for_function(options.ready, timeout=options.timeout * 1000)
    if options.settle > 0:
        page.wait_for_timeout(options.settle * 1000)


def same_site_links(page: Page, url: str, limit: int) -> list[str]:
    """The first ``limit`` distinct http(s) links of the page on the page's own site."""
    if limit <= 0:
        return []
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    site = site_of_url(url)
    out: list[str] = []
    for href in hrefs:
        link = str(href).split("#", 1)[0]
        if (link.startswith(("http://", "https://")) and link != url and link not in out
                and site_of_url(link) == site):
            out.append(link)
        if len(out) >= limit:
            break
    return out


def run_visit(tab: Tab, url: str, number: int, options: VisitOptions) -> int:
    """Visit ``url`` as visit ``number``; the pages loaded, or VisitError."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        return _visit(tab, url, number, options)
    except VisitError:
        tab.discard()
        raise
    except PlaywrightError as exc:
        tab.discard()
        text = str(exc).strip()
        raise VisitError(text.splitlines()[0] if text else type(exc).__name__) from None


def _visit(tab: Tab, url: str, number: int, options: VisitOptions) -> int:
    page = tab.open(url, visit_kind(number), options)
    _settle(page, options)
    pages = 1
    for link in same_site_links(page, url, options.links):
        extra = tab.context.new_page()
        try:
            extra.goto(link, wait_until="load", timeout=options.timeout * 1000)
            _settle(extra, VisitOptions(options.timeout, options.settle))
            pages += 1
        finally:
            extra.close()
    return pages
