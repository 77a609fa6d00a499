"""mitmproxy addon for the lab only: connect to ``*.test`` names on loopback.

The lab's site names (news.lab.test, pixel.tracker.test, ...) resolve nowhere; Chromium maps
them itself, but behind a proxy it is mitmproxy that connects. This addon swaps the address
of the upstream connection for 127.0.0.1 (keeping the port) and leaves the request, its Host
header and URL untouched, so recorded exchanges keep the site names.

    mitmdump -s addons/etagwatch.py -s analysis/lab/mitm_route.py
"""

from __future__ import annotations

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
        if address and str(address[0]).lower().rstrip(".").endswith(LAB_SUFFIX):
            data.server.address = (ctx.options.lab_route_to, address[1])


addons = [LabRoute()]
