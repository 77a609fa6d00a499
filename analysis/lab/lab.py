"""The whole lab: every origin on loopback under its own site name, started and stopped as one.

Site names end in ``.test`` (reserved by RFC 2606, never resolvable on the Internet) and have
distinct registrable domains, so the first-party page embeds the others in a third-party
context. A browser maps the names to 127.0.0.1 with ``--host-resolver-rules`` (see
:meth:`Lab.resolver_rules`); through mitmproxy, ``analysis/lab/mitm_route.py`` does the same.
URLs keep each origin's port.

Every site is also served over HTTPS on a port of its own (``LabSite.https_url``,
``Lab.https_page_url``), with a certificate from a CA made at start (``Lab.ca``, see
:mod:`analysis.lab.tls`): nginx with HTTP/2, Apache httpd with mod_ssl and mod_http2, haproxy
terminating TLS with ALPN h2, and the Python origins behind an nginx TLS + HTTP/2 front. The
HTTPS first-party page embeds the HTTPS URLs (a browser blocks or upgrades mixed content).
Chromium trusts the CA with :func:`analysis.lab.trust.chromium_trust_args`, mitmdump with
``--set ssl_verify_upstream_trusted_ca=<lab.ca.cert_path>``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from analysis.lab.net import StartStop
from analysis.lab.origins.digest import DigestOrigin
from analysis.lab.origins.echo_tracker import EchoTrackerOrigin
from analysis.lab.origins.first_party import FirstPartyOrigin
from analysis.lab.origins.random_etag import RandomETagOrigin
from analysis.lab.origins.tracker import TrackerOrigin
from analysis.lab.servers import ApacheOrigin, HAProxy, NginxOrigin, NginxTLSFront
from analysis.lab.tls import LabCA, TLSFiles

#: A fixed past modification time: strong, stable validators (Apache weakens fresh files).
MTIME = 1_700_000_000
#: How far apart the two mtime-churn copies are (an unsynchronised deploy an hour apart).
MTIME_SKEW = 3600

STATIC_CSS = b"/* static.nginx-cdn.test */\nbody { font-family: sans-serif; margin: 2em; }\n"
LIB_JS = b"/* inode.apache-farm.test: identical bytes on both backends */\nwindow.labLib = 1;\n"
BANNER_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="20">'
    b'<rect width="120" height="20" fill="#36c"/></svg>\n'
)

#: Every lab host name: the leaf certificate's subject alternative names.
HOSTNAMES: tuple[str, ...] = (
    "news.lab.test",
    "static.nginx-cdn.test",
    "pixel.tracker.test",
    "echo.evercookie.test",
    "inode.apache-farm.test",
    "mtime.nginx-farm.test",
    "digest.objstore.test",
    "random.unstable.test",
)


@dataclass(frozen=True)
class LabSite:
    """One lab resource: where it lives and what etagwatch should say about it."""

    key: str
    hostname: str
    port: int
    path: str
    demonstrates: str
    expected: str  # the verdict etagwatch must reach (analysis.detectors.verdicts.VERDICTS)
    backends: tuple[str, ...] = ()
    cause: str | None = None  # for churn: what differs between backends' ETags
    embed: str = "img"  # how the first-party page embeds it: css, js, img
    tls_port: int | None = None  # where the same resource is served over HTTPS

    @property
    def url(self) -> str:
        return f"http://{self.hostname}:{self.port}{self.path}"

    @property
    def https_url(self) -> str:
        if self.tls_port is None:
            raise ValueError(f"{self.key} is not served over HTTPS (Lab(tls=False))")
        return f"https://{self.hostname}:{self.tls_port}{self.path}"

    def url_for(self, scheme: str) -> str:
        """``url`` or ``https_url``, by scheme ('http' or 'https')."""
        return self.https_url if scheme == "https" else self.url

    @property
    def loopback_url(self) -> str:
        """The same resource addressed by IP, for clients without the name mapping."""
        return f"http://127.0.0.1:{self.port}{self.path}"


@dataclass
class _Trees:
    root: Path
    static: Path = field(init=False)
    inode: tuple[Path, Path] = field(init=False)
    mtime: tuple[Path, Path] = field(init=False)


def _write(path: Path, body: bytes, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    os.utime(path, (mtime, mtime))


def build_trees(root: Path) -> _Trees:
    """The files the system servers serve: byte-identical copies for both churn pairs, with
    the same mtime but different inodes (Apache pair) or different mtimes (nginx pair)."""
    trees = _Trees(root)
    trees.static = root / "static"
    _write(trees.static / "app.css", STATIC_CSS, MTIME)
    a, b = root / "inode-a", root / "inode-b"
    _write(a / "lib.js", LIB_JS, MTIME)
    b.mkdir()
    shutil.copy2(a / "lib.js", b / "lib.js")  # same bytes and mtime, another inode
    trees.inode = (a, b)
    c, d = root / "mtime-a", root / "mtime-b"
    _write(c / "banner.svg", BANNER_SVG, MTIME)
    _write(d / "banner.svg", BANNER_SVG, MTIME + MTIME_SKEW)
    trees.mtime = (c, d)
    return trees


class Lab(StartStop):
    """Start with ``with Lab() as lab:``; ``lab.sites`` describes every resource,
    ``lab.page_url`` is the first-party page (``lab.https_page_url`` over HTTPS),
    ``lab.resolver_rules()`` maps the names, ``lab.ca`` is the CA the HTTPS sites use.

    ``tls=False`` starts the plain-HTTP lab only (no CA, no HTTPS ports)."""

    def __init__(self, *, host: str = "127.0.0.1", tls: bool = True) -> None:
        self.host = host
        self.tls = tls
        self.sites: dict[str, LabSite] = {}
        self.page_url = ""
        self.https_page_url = ""
        self.ca: LabCA | None = None
        self.servers: list[object] = []
        self._stack: contextlib.ExitStack | None = None
        self._tmp: Path | None = None

    def start(self) -> Self:
        stack = contextlib.ExitStack()
        self._stack = stack
        try:
            self._start(stack)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, stack: contextlib.ExitStack) -> None:
        tmp = Path(tempfile.mkdtemp(prefix="etagwatch-lab-"))
        tmp.chmod(0o755)  # Apache's workers (an unprivileged user when we are root) read it
        stack.callback(shutil.rmtree, tmp, True)
        self._tmp = tmp
        trees = build_trees(tmp)
        h = self.host
        tls: TLSFiles | None = None
        if self.tls:
            self.ca = LabCA.create(tmp / "tls")
            tls = self.ca.issue(HOSTNAMES, tmp / "tls")

        def run(server):  # type: ignore[no-untyped-def]
            started = stack.enter_context(server)
            self.servers.append(started)
            return started

        def tls_port(origin) -> int | None:  # type: ignore[no-untyped-def]
            """The HTTPS port of a Python origin: an nginx TLS + HTTP/2 front before it."""
            if tls is None:
                return None
            upstream = f"{h}:{origin.port}" if ":" not in h else f"[{h}]:{origin.port}"
            return run(NginxTLSFront(upstream, tls=tls, host=h, name=f"{origin.name}-tls")).port

        static = run(NginxOrigin(trees.static, host=h, name="nginx-static", tls=tls))
        ap1 = run(ApacheOrigin(trees.inode[0], host=h, name="apache-1"))
        ap2 = run(ApacheOrigin(trees.inode[1], host=h, name="apache-2"))
        inode_lb = run(
            HAProxy(
                [("apache-1", h, ap1.port), ("apache-2", h, ap2.port)],
                host=h,
                name="haproxy-inode",
                tls=tls,
            )
        )
        ng1 = run(NginxOrigin(trees.mtime[0], host=h, name="nginx-1"))
        ng2 = run(NginxOrigin(trees.mtime[1], host=h, name="nginx-2"))
        mtime_lb = run(
            HAProxy(
                [("nginx-1", h, ng1.port), ("nginx-2", h, ng2.port)],
                host=h,
                name="haproxy-mtime",
                tls=tls,
            )
        )
        tracker = run(TrackerOrigin(host=h, name="tracker"))
        echo = run(EchoTrackerOrigin(host=h, name="echo-tracker"))
        digest = run(DigestOrigin(host=h, name="digest"))
        rnd = run(RandomETagOrigin(host=h, name="random"))

        sites = [
            LabSite(
                "nginx",
                "static.nginx-cdn.test",
                static.port,
                "/app.css",
                "plain nginx: stable mtime-size ETag, 304 on revalidation",
                "stable",
                embed="css",
                tls_port=static.tls_port,
            ),
            LabSite(
                "tracker",
                "pixel.tracker.test",
                tracker.port,
                "/pixel.gif",
                "tracking pixel: a unique ETag per client, kept alive with 304s",
                "identifier",
                tls_port=tls_port(tracker),
            ),
            LabSite(
                "echo",
                "echo.evercookie.test",
                echo.port,
                "/e.gif",
                "evercookie: 304 echoing any If-None-Match, even one never issued",
                "identifier",
                tls_port=tls_port(echo),
            ),
            LabSite(
                "inode",
                "inode.apache-farm.test",
                inode_lb.port,
                "/lib.js",
                "haproxy over two Apache httpd (FileETag INode MTime Size): identical "
                "bytes, ETags differ by inode",
                "churn",
                backends=("apache-1", "apache-2"),
                cause="inode",
                embed="js",
                tls_port=inode_lb.tls_port,
            ),
            LabSite(
                "mtime",
                "mtime.nginx-farm.test",
                mtime_lb.port,
                "/banner.svg",
                "haproxy over two nginx whose copies differ only in mtime: ETags and "
                "Last-Modified differ",
                "churn",
                backends=("nginx-1", "nginx-2"),
                cause="mtime",
                tls_port=mtime_lb.tls_port,
            ),
            LabSite(
                "digest",
                "digest.objstore.test",
                digest.port,
                "/widget.js",
                "ETag = SHA-256 of the body: content-derived, benign",
                "stable",
                embed="js",
                tls_port=tls_port(digest),
            ),
            LabSite(
                "random",
                "random.unstable.test",
                rnd.port,
                "/ticker.js",
                "a new random ETag on every response: unstable, never a 304",
                "unstable",
                embed="js",
                tls_port=tls_port(rnd),
            ),
        ]
        self.sites = {s.key: s for s in sites}

        def first_party(scheme: str) -> FirstPartyOrigin:
            """The page, embedding every site over ``scheme`` (one page per scheme)."""
            return run(
                FirstPartyOrigin(
                    embeds={s.key: (s.embed, s.url_for(scheme)) for s in sites},
                    respawn_url=self.sites["echo"].url_for(scheme) + "?respawn=1",
                    host=h,
                    name="first-party" if scheme == "http" else "first-party-https",
                )
            )

        page = first_party("http")
        self.first_party = LabSite(
            "page",
            "news.lab.test",
            page.port,
            "/",
            "first-party page embedding all of the above",
            "none",
            tls_port=tls_port(first_party("https")) if tls is not None else None,
        )
        self.page_url = self.first_party.url
        if tls is not None:
            self.https_page_url = self.first_party.https_url

    def stop(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()
        self.servers = []

    @property
    def hostnames(self) -> list[str]:
        return [self.first_party.hostname, *(s.hostname for s in self.sites.values())]

    def resolver_rules(self) -> str:
        """Chromium ``--host-resolver-rules`` value mapping every lab name to loopback."""
        return ", ".join(f"MAP {name} {self.host}" for name in self.hostnames)

    def describe(self, scheme: str = "http") -> list[str]:
        """One line per site: URL (``scheme``: http or https) and what it demonstrates (for
        `etagwatch lab`)."""
        rows = [self.first_party, *self.sites.values()]
        return [f"{s.url_for(scheme):<48} {s.expected:<10} {s.demonstrates}" for s in rows]
