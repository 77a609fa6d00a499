"""How a crawl profile's Chromium is launched: Debian's /usr/bin/chromium through Playwright's
Python package (never a Playwright download), a persistent user-data directory per profile,
its traffic through the profile's own mitmdump, whose CA it trusts by the SPKI hash.

Trust by ``--ignore-certificate-errors-spki-list`` rather than by ignoring certificate errors:
Chromium does not cache a response that came with a certificate error, so it would never
revalidate, and no ETag would ever come back to the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.lab.browse import CHROMIUM_FLAGS, chromium_path

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Playwright

#: Chromium's HTTP-cache partitioning (keyed by top-level site and frame site since Chrome 86).
PARTITION_FEATURE = "SplitCacheByNetworkIsolationKey"
#: Features off in every crawl: no HTTPS-first upgrades of http:// sites, no calls home.
#: One list because Chromium keeps only the last ``--disable-features`` (this one replaces
#: Playwright's, which also turns off storage partitioning: a crawl keeps the browser's own).
QUIET_FEATURES: tuple[str, ...] = (
    "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable",
    "OptimizationHints",
    "NetworkTimeServiceQuerying",
    "AimEnabled",
    "PreconnectToSearch",
    "MediaRouter",
    "LensOverlay",
    "PaintHolding",
    "AvoidCorsURLLoaderRestartOnRedirect",
)


@dataclass(frozen=True)
class BrowserOptions:
    """What every profile of one crawl shares."""

    partitioned: bool = True
    executable: str = ""
    extra_args: tuple[str, ...] = ()

    def args(self, trusted_spki: tuple[str, ...] = ()) -> list[str]:
        disabled = [*QUIET_FEATURES, *(() if self.partitioned else (PARTITION_FEATURE,))]
        args = [*CHROMIUM_FLAGS, f"--disable-features={','.join(disabled)}"]
        if trusted_spki:
            args.append(f"--ignore-certificate-errors-spki-list={','.join(trusted_spki)}")
        return [*args, *self.extra_args]


def launch_profile(
    pw: Playwright,
    user_data: Path,
    options: BrowserOptions,
    *,
    proxy: str | None,
    trusted_spki: tuple[str, ...] = (),
    har: Path | None = None,
) -> BrowserContext:
    """A persistent Chromium context on ``user_data`` (kept between runs: the profile's cache
    is its identity), its traffic through ``proxy``; a HAR when ``har`` is given."""
    user_data.mkdir(parents=True, exist_ok=True)
    extra: dict[str, object] = {}
    if har is not None:
        har.parent.mkdir(parents=True, exist_ok=True)
        extra.update(record_har_path=str(har), record_har_content="omit")
    if proxy:
        extra["proxy"] = {"server": proxy, "bypass": "<-loopback>"}
    return pw.chromium.launch_persistent_context(
        str(user_data),
        executable_path=options.executable or chromium_path(),
        headless=True,
        args=options.args(trusted_spki),
        ignore_default_args=["--headless"],
        **extra,  # type: ignore[arg-type]
    )
