"""mitmproxy addon for the lab only: connect to ``*.test`` names on loopback.

The lab's site names (news.lab.test, pixel.tracker.test, ...) resolve nowhere; Chromium maps
them itself, but behind a proxy it is mitmproxy that connects. This addon swaps the address
of the upstream connection for 127.0.0.1 (keeping the port) and leaves the request, its Host
header and URL untouched, so recorded exchanges keep the site names. Any other destination
that is not loopback (Chromium's component updater still calls out, whatever its flags say) is
refused before a connection is made: the lab never sends traffic off the machine.

    mitmdump -s addons/etagwatch.py -s analysis/lab/mitm_route.py
"""

from __future__ import annotations

import ipaddress

from mitmproxy import ctx
from mitmproxy.proxy import server_hooks

#: RFC 2606 reserves .test: such names never leave the machine, so routing them is safe.
LAB_SUFFIX = ".test"


class LabRoute:
    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        loader.add_option(
            "lab_route_to", str, "127.0.0.1", "Address that *.test lab names connect to."
        )

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        address = data.server.address
        if not address:
            return
        host = str(address[0]).lower().rstrip(".")
        if host.endswith(LAB_SUFFIX):
            data.server.address = (ctx.options.lab_route_to, address[1])
        elif not is_loopback(host):
            data.server.error = f"etagwatch lab: {host} is outside the lab; not connecting"


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses, the only other places the lab may reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


addons = [LabRoute()]
