"""What the live annotator remembers: per-host counters and recent exchanges per resource.

Bounded on purpose (recent exchanges per resource, resources per proxy run), so a long browsing
session keeps a small, steady memory footprint. Recent flows are kept as opaque *handles*: the
proxy's annotator keeps weak references (a flow that nothing else keeps, as in mitmdump, cannot
be shown annotated anyway, and holding it would let every flow die old, in the cyclic
collector's oldest generation); the store's writer process, which judges flows it never sees,
keeps flow ids. No mitmproxy import: the writer process runs this too.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from analysis.exchange import Exchange

if TYPE_CHECKING:  # live_checks imports this module
    from addons.live_checks import Verdict

#: Recent exchanges kept per resource for detector re-runs.
EXCHANGES_PER_RESOURCE = 64
#: Recent flows kept per resource, whose annotation a revised verdict replaces.
FLOWS_PER_RESOURCE = 1000
#: Flows remembered over all resources (the recorder remembers as many for the writer's
#: verdicts); beyond it, the least recently seen resources are forgotten first.
MAX_FLOWS = 20_000
#: Resources remembered at once (least recently seen are forgotten first).
MAX_RESOURCES = 5000

CONDITIONAL_FIELDS: dict[str, str] = {
    "req_if_none_match": "if_none_match",
    "req_if_modified_since": "if_modified_since",
    "req_if_match": "if_match",
    "req_if_unmodified_since": "if_unmodified_since",
    "req_if_range": "if_range",
}


@dataclass
class HostCounters:
    """Validators and conditional exchanges seen for one host."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, ex: Exchange) -> None:
        c = self.counts
        c["exchanges"] += 1
        if ex.etag is not None:
            c["etag"] += 1
        if ex.last_modified is not None:
            c["last_modified"] += 1
        if (
            ex.req_if_none_match is not None
            or ex.req_if_modified_since is not None
            or ex.req_if_match is not None
            or ex.req_if_unmodified_since is not None
            or ex.req_if_range is not None
        ):  # the common unconditional request skips the per-field loop
            for column, name in CONDITIONAL_FIELDS.items():
                if getattr(ex, column) is not None:
                    c[name] += 1
            c["conditional"] += 1
        if ex.status == 304:
            c["not_modified"] += 1
        elif ex.status == 412:
            c["precondition_failed"] += 1
        if ex.etag_violations:
            c["etag_violations"] += 1

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)


@dataclass
class ResourceState:
    """Recent exchanges and flows of one resource, plus every ETag it ever carried."""

    #: full records, or callables that build them (``Recorder`` keeps them unbuilt)
    exchanges: deque[Exchange | Callable[[], Exchange]] = field(
        default_factory=lambda: deque(maxlen=EXCHANGES_PER_RESOURCE)
    )
    handles: deque[Hashable] = field(default_factory=lambda: deque(maxlen=FLOWS_PER_RESOURCE))
    etags: set[str] = field(default_factory=set)
    clients: set[str] = field(default_factory=set)
    revalidated: set[str] = field(default_factory=set)  # clients that got a 304
    last_etag: str | None = None
    seen: int = 0  # exchanges ever added
    last_modified: str | None = None
    #: the detectors' current verdicts, as on the resource's flows (revised in place)
    current: tuple[Verdict, ...] = ()

    def add(self, handle: Hashable, ex: Exchange, full: Callable[[], Exchange] | None = None) -> bool:
        """Remember the exchange; True when it may well change the detectors' verdict: a new
        ETag value, a new client, a client's first 304, a 412, or the 2nd, 4th, 8th or 16th
        exchange (verdicts weigh small counts of exchanges and 304s too). Other revisits wait
        for the judge's slower sweep: re-running after each of them cost the writer process
        about 0.5 ms of CPU per proxied request under load (bench/proxy.py)."""
        self.exchanges.append(ex if full is None else full)
        self.seen += 1
        self.handles.append(handle)
        new = False
        if ex.etag is not None and ex.status is not None and 200 <= ex.status < 400:
            if ex.etag not in self.etags:
                self.etags.add(ex.etag)
                new = True
            self.last_etag = ex.etag
        if ex.last_modified is not None and ex.status == 200:
            self.last_modified = ex.last_modified
        if ex.client not in self.clients:
            self.clients.add(ex.client)
            new = True
        if ex.status == 304 and ex.client not in self.revalidated:
            self.revalidated.add(ex.client)
            new = True
        return new or ex.status == 412 or (self.seen <= 16 and self.seen & (self.seen - 1) == 0)


class LiveState:
    """Host counters and resource states, least recently used resources evicted first."""

    def __init__(self, max_resources: int = MAX_RESOURCES, max_flows: int = MAX_FLOWS) -> None:
        self.hosts: dict[str, HostCounters] = {}
        self.resources: OrderedDict[str, ResourceState] = OrderedDict()
        self.max_resources = max_resources
        self.max_flows = max_flows
        self.flows = 0  # handles held over all resources

    def resource(self, url: str) -> ResourceState:
        state = self.resources.get(url)
        if state is None:
            state = self.resources[url] = ResourceState()
            while len(self.resources) > self.max_resources:
                self._forget_oldest()
        else:
            self.resources.move_to_end(url)
        return state

    def held(self, added: int) -> None:
        """``added`` handles more are held; forget the least recently seen resources beyond
        :data:`MAX_FLOWS` (never the last one, which was just seen)."""
        self.flows += added
        while self.flows > self.max_flows and len(self.resources) > 1:
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        _, gone = self.resources.popitem(last=False)
        self.flows -= len(gone.handles)

    def host(self, name: str) -> HostCounters:
        return self.hosts.setdefault(name, HostCounters())
