"""Capturing the lab: the browser's own HAR files, and the same browsing recorded live by
etagwatch's mitmproxy addon (store + flow files). Used by the tests, `etagwatch lab --browse`
and the regeneration of sample_captures/."""

from __future__ import annotations

from pathlib import Path

from analysis.lab.browse import browse
from analysis.lab.lab import Lab
from analysis.lab.mitm import MitmDump
from analysis.lab.net import LabError
from analysis.lab.trust import chromium_trust_args


def _check_scheme(lab: Lab, scheme: str) -> bool:
    """True for https (after checking the lab serves it), False for http."""
    if scheme not in ("http", "https"):
        raise ValueError(f"scheme must be http or https, not {scheme!r}")
    if scheme == "https" and lab.ca is None:
        raise LabError("the lab was started without TLS (Lab(tls=False)): no HTTPS to browse")
    return scheme == "https"


def browse_to_hars(
    lab: Lab, out: Path, *, profiles: int = 3, visits: int = 3, scheme: str = "http"
) -> list[Path]:
    """One HAR per fresh Chromium profile (``profile-N.har``) under ``out``; ``scheme="https"``
    browses the HTTPS page directly, Chromium trusting the lab CA."""
    https = _check_scheme(lab, scheme)
    results = browse(
        lab.https_page_url if https else lab.page_url,
        profiles=profiles,
        visits=visits,
        har_dir=out,
        resolver_rules=lab.resolver_rules(),
        extra_args=chromium_trust_args(lab.ca.cert_path) if https and lab.ca else (),
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
    scheme: str = "http",
    client_prefix: str = "live",
    relaunch: bool = False,
) -> dict[str, object]:
    """Browse as ``profiles`` fresh profiles, each through its own mitmdump running
    etagwatch's addon with ``etagwatch_client=live-N``; returns the store path and flow files.

    ``scheme="https"`` browses the lab's HTTPS page: mitmdump verifies the lab's servers with
    the lab CA and Chromium trusts mitmdump's CA (by SPKI hash, so responses are cached and
    revalidated as on any trusted site). ``relaunch``: see :func:`analysis.lab.browse.browse`.

    One mitmdump per profile because all profiles connect from 127.0.0.1: the addon's default
    'address' client mode would merge them into one client.
    """
    https = _check_scheme(lab, scheme)
    page_url = lab.https_page_url if https else lab.page_url
    out.mkdir(parents=True, exist_ok=True)
    db = db or out / "live.sqlite"
    flow_files: list[Path] = []
    clients = [f"{client_prefix}-{n}" for n in range(1, profiles + 1)]
    for client in clients:
        flow_file = out / f"{client}.flows" if flows else None
        upstream_ca = lab.ca.cert_path if https and lab.ca is not None else None
        with MitmDump(db=db, client=client, flows=flow_file, upstream_ca=upstream_ca) as proxy:
            try:
                browse(
                    page_url,
                    profiles=1,
                    visits=visits,
                    proxy=proxy.url,
                    client_prefix=client,
                    extra_args=chromium_trust_args(proxy.ca_cert) if https else (),
                    relaunch=relaunch,
                )
            except LabError as exc:
                alive = proxy.process is not None and proxy.process.poll() is None
                state = (
                    "running" if alive else f"exited {proxy.process and proxy.process.returncode}"
                )
                raise LabError(f"{exc} (mitmdump {state}: {proxy.log_tail()})") from None
        if flow_file is not None:
            flow_files.append(flow_file)
    return {"db": db, "flows": flow_files, "clients": clients}
