"""Probe response -> exchange record, through the readers' own assembler.

``analysis.readers.record.build_exchange`` is where every source becomes an Exchange (validator
parsing, keyed hashing of cookies and credentials, body digests), so a probe row is judged by
the detectors exactly like a HAR or flow row; this module only supplies the parts.
"""

from __future__ import annotations

from analysis.exchange import Exchange
from analysis.headers import normalise
from analysis.probe.client import ProbeResponse
from analysis.readers.record import build_exchange

SOURCE_KIND = "probe"


def probe_source(url: str) -> str:
    """The ``source`` of every exchange one probe run stores."""
    return f"probe:{url}"


def _representation(response: ProbeResponse) -> bytes | None:
    """The decoded body when it is the selected representation (a 200 to GET). HEAD and 304
    carry none, a 206 only a part, and a 412 or 404 an error page: their digests would claim
    other content under the same ETag and make the detectors see content change."""
    if response.request.method != "GET" or response.status != 200:
        return None
    return response.content


def to_exchange(
    response: ProbeResponse, *, url: str, client: str, key: bytes, entry_index: int,
    redact_validators: bool = False,
) -> Exchange:
    """The exchange record of one probe request and its response (validators as keyed hashes
    with ``redact_validators``, as `ingest --redact-validators` stores them)."""
    return build_exchange(
        source=probe_source(url),
        source_kind=SOURCE_KIND,
        client=client,
        key=key,
        entry_index=entry_index,
        started=response.started,
        method=response.request.method,
        url=response.request.url,
        http_version=response.http_version,
        req_headers=normalise(response.request.headers)[0],
        resp_headers=normalise(response.headers)[0],
        status=response.status,
        body=_representation(response),
        body_size=len(response.raw),
        server_ip=response.server_addr[0] if response.server_addr else None,
        redact_validators=redact_validators,
    )
