"""Headless Chromium (the system's, through Playwright's Python package) visiting the lab as
several fresh profiles, each several times, so that it revalidates what it cached.

Every profile is a persistent context with its own empty user-data directory: its own HTTP
cache, localStorage and cookies, i.e. one client. Each visit is a new navigation
(``page.goto``), so resources marked ``Cache-Control: no-cache`` are revalidated with
If-None-Match / If-Modified-Since. Playwright writes one HAR per profile.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from analysis.lab.daemon import find_program
from analysis.lab.net import LabError

#: Flags that keep Chromium quiet and local: no sandbox (containers), no GPU, no QUIC, and no
#: background connections to Google services (they would be refused noisily offline).
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--no-default-browser-check",
)


def chromium_path() -> str:
    """The system Chromium (Debian's /usr/bin/chromium), never a Playwright download."""
    for name in ("chromium", "chromium-browser"):
        try:
            return find_program(name)
        except LabError:
            continue
    raise LabError("chromium not found (install the Debian package: apt-get install chromium)")


@dataclass(frozen=True)
class BrowseResult:
    """What one profile produced: its client name and HAR file (None when not recorded)."""

    client: str
    har: Path | None
    visits: int


def browse(
    page_url: str,
    *,
    profiles: int = 3,
    visits: int = 3,
    har_dir: str | Path | None = None,
    resolver_rules: str = "",
    proxy: str | None = None,
    proxy_for_profile: Sequence[str] | None = None,
    client_prefix: str = "profile",
    har_content: str = "embed",
    timeout_ms: int = 15_000,
    executable: str | None = None,
    extra_args: Sequence[str] = (),
    relaunch: bool = False,
) -> list[BrowseResult]:
    """Visit ``page_url`` ``visits`` times in each of ``profiles`` fresh Chromium profiles.

    ``proxy`` (``http://127.0.0.1:PORT``) sends all traffic through one proxy;
    ``proxy_for_profile`` gives each profile its own (one mitmdump per client). The page is
    expected to set ``window.labDone`` once its scripts finished (the lab's page does).
    ``extra_args`` are added to Chromium's command line, e.g.
    :func:`analysis.lab.trust.chromium_trust_args` for an HTTPS page.

    ``relaunch`` starts Chromium afresh on the same profile for every visit, so that only its
    disk HTTP cache carries over: within one running browser, Blink's memory cache revalidates
    a page's subresources by itself, so a revalidation seen there does not prove the HTTP cache
    kept the response (it does not after a certificate error). Not with ``har_dir`` (each
    launch would overwrite the profile's HAR).
    """
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    if relaunch and har_dir is not None:
        raise ValueError("relaunch cannot record HARs: each launch would overwrite the last")
    executable = executable or chromium_path()
    out = Path(har_dir) if har_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    args = list(CHROMIUM_FLAGS)
    if resolver_rules:
        args.append(f"--host-resolver-rules={resolver_rules}")
    args += extra_args
    results: list[BrowseResult] = []
    with sync_playwright() as pw:
        for n in range(1, profiles + 1):
            client = f"{client_prefix}-{n}"
            har = out / f"{client}.har" if out is not None else None
            proxy_url = proxy_for_profile[n - 1] if proxy_for_profile else proxy
            user_data = tempfile.mkdtemp(prefix=f"etagwatch-chromium-{client}-")
            options: dict[str, object] = {}
            if har is not None:
                options.update(record_har_path=str(har), record_har_content=har_content)
            if proxy_url:
                options["proxy"] = {"server": proxy_url, "bypass": "<-loopback>"}
            launches = [1] * visits if relaunch else [visits]
            try:
                for visits_now in launches:
                    context = pw.chromium.launch_persistent_context(
                        user_data,
                        executable_path=executable,
                        headless=True,
                        args=args,
                        ignore_default_args=["--headless"],
                        **options,  # type: ignore[arg-type]
                    )
                    try:
                        page = context.new_page()
                        for _ in range(visits_now):
                            page.goto(page_url, wait_until="load", timeout=timeout_ms)
                            page.wait_for_function("window.labDone === true", timeout=timeout_ms)
                    finally:
                        context.close()  # writes the HAR
            except PlaywrightError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                raise LabError(f"chromium ({client}) failed on {page_url}: {first}") from None
            finally:
                shutil.rmtree(user_data, ignore_errors=True)
            results.append(BrowseResult(client, har, visits))
    return results
