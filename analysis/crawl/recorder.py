"""The recorder of one crawl profile: a real mitmdump running etagwatch's addon with
``etagwatch_client`` set to the profile's name (every profile reaches the proxy from
127.0.0.1, so the address alone would merge them), writing into the crawl's store.

Every recorder of a crawl shares one mitmproxy CA, kept beside the store so that a resumed
profile still trusts it; the orphan guard stops a recorder whose crawl was killed.
"""

from __future__ import annotations

import os
from pathlib import Path

from analysis.lab.mitm import ADDON, CA_CERT_NAME, ROUTE, MitmDump
from analysis.lab.trust import spki_sha256

GUARD = Path(__file__).resolve().with_name("orphan_guard.py")


def ensure_ca(confdir: Path) -> str:
    """Create the crawl's mitmproxy CA in ``confdir`` once (before recorders start side by
    side) and return its SPKI hash for Chromium."""
    from mitmproxy.certs import CertStore

    confdir.mkdir(parents=True, exist_ok=True)
    if not (confdir / CA_CERT_NAME).exists():
        CertStore.from_store(confdir, "mitmproxy", 2048)
    return spki_sha256((confdir / CA_CERT_NAME).read_bytes())


class Recorder(MitmDump):
    """``mitmdump -s addons/etagwatch.py -s orphan_guard.py [-s mitm_route.py]`` for one
    profile; ``lab_route`` confines it to the lab (``*.test`` on loopback, nothing else)."""

    kind = "recorder"
    stop_with_parent = False  # the orphan guard shuts it down cleanly (the store flushed)

    def __init__(self, *, db: Path, client: str, confdir: Path, lab_route: bool = False,
                 upstream_ca: Path | None = None) -> None:
        scripts = [ADDON, GUARD, *((ROUTE,) if lab_route else ())]
        options = {"crawl_parent": str(os.getpid())}
        super().__init__(db=db, client=client, scripts=scripts, options=options, name=client,
                         upstream_ca=upstream_ca, confdir=confdir)

    def command(self, workdir: Path) -> list[str]:
        # the guard removes this private folder (its log) when the crawl is gone: a crawl
        # killed by SIGKILL cannot stop its recorders itself
        self.options["crawl_workdir"] = str(workdir)
        return super().command(workdir)
