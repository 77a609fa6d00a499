"""State shared by the probe's checks: the URL, the fresh clients, every exchange sent so far
and the validators the server issued first (what the conditional requests are built from)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from analysis.conditional import Decision, evaluate
from analysis.etag import EntityTag, parse_etag
from analysis.exchange import Exchange
from analysis.httpdate import parse_http_date
from analysis.probe.client import ProbeResponse, fetch, new_client, tls_context
from analysis.probe.to_exchange import to_exchange


@dataclass(frozen=True)
class ProbeOptions:
    """What the user chose on the command line."""

    clients: int = 3
    timeout: float = 10.0
    insecure: bool = False
    ca_file: str | None = None  # a CA to trust besides the default bundle (--cacert)
    headers: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True)
class Sent:
    """One probe request as sent and answered, with its place in the store."""

    client: str
    entry_index: int
    response: ProbeResponse

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def etag(self) -> str | None:
        return self.response.header("etag")


@dataclass
class ProbeContext:
    url: str
    options: ProbeOptions
    key: bytes
    exchanges: list[Exchange] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    baseline: Sent | None = None  # the first 200 of the first client: the validators to test
    _clients: dict[str, httpx.Client] = field(default_factory=dict)

    def client(self, name: str) -> httpx.Client:
        """The named probe client, created fresh (own connections, no cookies) on first use."""
        if name not in self._clients:
            self._clients[name] = new_client(
                timeout=self.options.timeout,
                insecure=self.options.insecure,
                verify=tls_context(self.options.insecure, self.options.ca_file)
                if self.options.ca_file else None,
                headers=self.options.headers,
            )
        return self._clients[name]

    def send(
        self, client: str, method: str = "GET", headers: Mapping[str, str] | None = None
    ) -> Sent:
        """Send one request to the probed URL as ``client`` and store it as an exchange."""
        response = fetch(self.client(client), method, self.url, dict(headers or {}))
        sent = Sent(client, len(self.exchanges), response)
        self.exchanges.append(
            to_exchange(
                response, url=self.url, client=client, key=self.key, entry_index=sent.entry_index
            )
        )
        self.sent.append(sent)
        return sent

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    # --- the validators the server issued first
    @property
    def etag(self) -> EntityTag | None:
        raw = self.baseline.etag if self.baseline else None
        return parse_etag(raw).tag if raw else None

    @property
    def last_modified(self) -> str | None:
        return self.baseline.response.header("last-modified") if self.baseline else None

    @property
    def last_modified_ts(self) -> float | None:
        value = self.last_modified
        return parse_http_date(value.strip()).timestamp if value else None

    def expect(self, method: str, headers: Mapping[str, str]) -> Decision:
        """What RFC 9110 says the origin answers, given the validators it issued first."""
        return evaluate(
            method,
            dict(headers),
            etag=self.baseline.etag if self.baseline else None,
            last_modified=self.last_modified,
            exists=True,
            unconditional_status=self.baseline.status if self.baseline else None,
        )
