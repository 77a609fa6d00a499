"""One resource, probed as fresh clients and with a forged tag: the requests and what came back.

Each fresh client is nothing but the validator it holds: every request goes out on a new
connection (a new ``httpx.Client``: no cookies kept, no cache, no proxy from the environment,
no redirects followed), so a 304 to a client's own value can only come from that value, and a
layer-4 balancer pinning a connection to one backend cannot pass for a client id. The clients
take turns round by round (every client fetches, then every client revalidates, twice): a value
still answered 304 after the other clients got theirs was current for all of them at once,
which a content change between clients cannot fake. Last, a client that never fetched sends an
If-None-Match the server cannot have issued.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from analysis.probe.checks.forged import forged_tag
from analysis.probe.client import ProbeResponse, fetch, new_client, tls_context
from analysis.probe.context import ProbeOptions

#: A fetch, then two revalidations with the value held.
ROUNDS = 3
FORGED_CLIENT = "forged"


@dataclass(frozen=True)
class Request:
    """One probe request: who sent what, what came back, when."""

    client: str
    round: int  # 0 the first fetch, 1.. revalidations; the forged request is round 0
    if_none_match: str | None
    status: int
    etag: str | None
    last_modified: str | None
    body_sha256: str | None  # of the decoded body of a 2xx; never the body itself
    body_size: int | None
    at: float  # epoch seconds when it was sent

    def to_dict(self, show: Callable[[str | None], str | None]) -> dict[str, object]:
        """As stored: validators through ``show`` (clear, or keyed hashes)."""
        return {
            "client": self.client, "round": self.round,
            "sent": {"method": "GET", "if_none_match": show(self.if_none_match)},
            "status": self.status, "etag": show(self.etag),
            "last_modified": show(self.last_modified), "body_sha256": self.body_sha256,
            "body_size": self.body_size,
            "at": datetime.fromtimestamp(self.at, UTC).isoformat(timespec="milliseconds"),
        }


@dataclass
class Trial:
    """Every request of one resource's probe, in the order sent."""

    url: str
    clients: int
    requests: list[Request] = field(default_factory=list)
    forged: str | None = None  # the never-issued tag sent
    stopped: str | None = None  # why the probe stopped early (a non-2xx first answer)

    def of(self, client: str) -> list[Request]:
        return [r for r in self.requests if r.client == client]

    @property
    def fresh(self) -> list[str]:
        return [f"fresh-{i}" for i in range(1, self.clients + 1)]

    @property
    def forged_answer(self) -> Request | None:
        return next((r for r in self.requests if r.client == FORGED_CLIENT), None)


def _request(client: str, rnd: int, inm: str | None, response: ProbeResponse) -> Request:
    ok = 200 <= response.status < 300
    body = response.content if response.content is not None else response.raw
    return Request(
        client, rnd, inm, response.status, response.header("etag"),
        response.header("last-modified"),
        hashlib.sha256(body).hexdigest() if ok else None, len(body) if ok else None,
        response.started,
    )


def run_trial(trial: Trial, options: ProbeOptions, pace: Callable[[str], None]) -> Trial:
    """Probe ``trial.url``, adding each request to ``trial`` as it is answered (so a failure
    keeps the ones before it); ``pace(host)`` is called before every request (the rate
    limit). Network failures raise ProbeError (one line naming the URL)."""
    url = trial.url
    host = httpx.URL(url).host
    verify = tls_context(options.insecure, options.ca_file)

    def send(client: str, rnd: int, inm: str | None) -> Request:
        with new_client(timeout=options.timeout, insecure=options.insecure,
                        headers=options.headers, verify=verify) as http:
            pace(host)  # after building the client: the limit holds when the request leaves
            response = fetch(http, "GET", url, {"If-None-Match": inm} if inm else None)
        request = _request(client, rnd, inm, response)
        trial.requests.append(request)
        return request

    held: dict[str, str | None] = {}
    for rnd in range(ROUNDS):
        for name in trial.fresh:
            got = send(name, rnd, held.get(name))
            if rnd == 0 and not 200 <= got.status < 300:
                trial.stopped = f"answered {got.status} to a plain GET"
                return trial
            if 200 <= got.status < 300 and got.etag:
                held[name] = got.etag  # a browser replaces its copy and its validator
        if rnd == 0 and not any(held.values()):
            break  # no ETag to revalidate: nothing the later rounds could show
    trial.forged = forged_tag()
    send(FORGED_CLIENT, 0, trial.forged)
    return trial
