"""Fixtures for end-to-end tests: real nginx origins, the whole lab (started once per session),
Chromium browsing it directly and through mitmdump.

Plain helpers (need_program, free_port, PROFILES, VISITS) live in tests/support.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import NGINX_FILES, PROFILES, VISITS, need_program

from analysis.lab.origins.tracker import TrackerOrigin
from analysis.lab.servers import NginxOrigin


@pytest.fixture
def tracker() -> Iterator[TrackerOrigin]:
    """The lab's tracking pixel: a unique ETag per client, kept with 304s."""
    origin = TrackerOrigin().start()
    try:
        yield origin
    finally:
        origin.stop()


@pytest.fixture
def nginx_docroot(tmp_path: Path) -> Path:
    """A directory with NGINX_FILES, mtimes fixed in the past (so ETags are stable and strong)."""
    root = tmp_path / "docroot"
    root.mkdir()
    for name, body in NGINX_FILES.items():
        (root / name).write_bytes(body)
        os.utime(root / name, (1_700_000_000, 1_700_000_000))
    return root


@pytest.fixture
def nginx_factory() -> Iterator[Callable[..., NginxOrigin]]:
    """Start plain nginx origins: ``nginx_factory(root, **NginxOrigin options)``; all are
    stopped when the test ends, also when it fails."""
    need_program("nginx")
    started: list[NginxOrigin] = []

    def start(root: Path, **options: object) -> NginxOrigin:
        origin = NginxOrigin(root, **options)  # type: ignore[arg-type]
        started.append(origin)
        return origin.start()

    try:
        yield start
    finally:
        for origin in reversed(started):
            origin.stop()


@pytest.fixture
def nginx_origin(nginx_factory: Callable[..., NginxOrigin], nginx_docroot: Path) -> NginxOrigin:
    """A plain nginx origin on a free loopback port serving NGINX_FILES
    (``Cache-Control: no-cache``, ``X-Backend: nginx``); ``.url`` is its base URL."""
    return nginx_factory(nginx_docroot, name="nginx")


# --- the whole lab, once per session -------------------------------------------------------



@pytest.fixture(scope="session")
def lab() -> Iterator[object]:
    """Every lab origin (nginx, Apache + haproxy, nginx + haproxy, Python origins) on loopback;
    see analysis.lab.lab.Lab. Stopped at the end of the session, also on failure."""
    need_program("nginx", "apache2", "haproxy")
    from analysis.lab.lab import Lab

    with Lab() as running:
        yield running


@pytest.fixture(scope="session")
def browser_hars(lab, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """One Playwright HAR per fresh Chromium profile, each visiting the lab VISITS times."""
    need_program("chromium")
    from analysis.lab.capture import browse_to_hars

    return browse_to_hars(
        lab, tmp_path_factory.mktemp("browser-hars"), profiles=PROFILES, visits=VISITS
    )


@pytest.fixture(scope="session")
def live_capture(lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The same browsing through ``mitmdump -s addons/etagwatch.py`` (one mitmdump per
    profile, client name = profile): the addon's store and the saved flow files."""
    need_program("chromium")
    from analysis.lab.capture import browse_through_mitmdump

    out = tmp_path_factory.mktemp("live")
    return browse_through_mitmdump(
        lab, out, profiles=PROFILES, visits=VISITS, db=out / "live.sqlite"
    )


@pytest.fixture(scope="session")
def browser_hars_https(lab, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """``browser_hars`` over HTTPS: Chromium straight to the lab's HTTPS page, trusting the lab
    CA by its SPKI hash."""
    need_program("chromium")
    from analysis.lab.capture import browse_to_hars

    return browse_to_hars(
        lab,
        tmp_path_factory.mktemp("browser-hars-https"),
        profiles=PROFILES,
        visits=VISITS,
        scheme="https",
    )


@pytest.fixture(scope="session")
def live_capture_https(lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """``live_capture`` over HTTPS: Chromium trusts mitmdump's CA, mitmdump trusts the lab CA;
    the lab's servers speak HTTP/2."""
    need_program("chromium")
    from analysis.lab.capture import browse_through_mitmdump

    out = tmp_path_factory.mktemp("live-https")
    return browse_through_mitmdump(
        lab,
        out,
        profiles=PROFILES,
        visits=VISITS,
        db=out / "live.sqlite",
        flows=False,
        scheme="https",
    )
