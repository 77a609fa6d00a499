"""Capturing the lab: the browser's own HAR files, and the same browsing recorded live by
etagwatch's mitmproxy addon (store + flow files). Used by the tests, `etagwatch lab --browse`
and the regeneration of sample_captures/."""

from __future__ import annotations

from pathlib import Path

from analysis.lab.browse import browse
from analysis.lab.lab import Lab
from analysis.lab.mitm import MitmDump
from analysis.lab.net import LabError


def browse_to_hars(lab: Lab, out: Path, *, profiles: int = 3, visits: int = 3) -> list[Path]:
    """One HAR per fresh Chromium profile (``profile-N.har``) under ``out``."""
    results = browse(
        lab.page_url,
        profiles=profiles,
        visits=visits,
        har_dir=out,
        resolver_rules=lab.resolver_rules(),
    )
    return [r.har for r in results if r.har is not None]


def browse_through_mitmdump(
    lab: Lab,
    out: Path,
    *,
    profiles: int = 3,
    visits: int = 3,
    db: Path | None = None,
    flows: bool = True,
) -> dict[str, object]:
    """Browse as ``profiles`` fresh profiles, each through its own mitmdump running
    etagwatch's addon with ``etagwatch_client=live-N``; returns the store path and flow files.

    One mitmdump per profile because all profiles connect from 127.0.0.1: the addon's default
    'address' client mode would merge them into one client.
    """
    out.mkdir(parents=True, exist_ok=True)
    db = db or out / "live.sqlite"
    flow_files: list[Path] = []
    for n in range(1, profiles + 1):
        client = f"live-{n}"
        flow_file = out / f"{client}.flows" if flows else None
        with MitmDump(db=db, client=client, flows=flow_file) as proxy:
            try:
                browse(
                    lab.page_url, profiles=1, visits=visits, proxy=proxy.url, client_prefix=client
                )
            except LabError as exc:
                alive = proxy.process is not None and proxy.process.poll() is None
                state = (
                    "running" if alive else f"exited {proxy.process and proxy.process.returncode}"
                )
                raise LabError(f"{exc} (mitmdump {state}: {proxy.log_tail()})") from None
        if flow_file is not None:
            flow_files.append(flow_file)
    return {"db": db, "flows": flow_files, "clients": [f"live-{n}" for n in range(1, profiles + 1)]}
