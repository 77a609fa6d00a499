"""mitmproxy flow files (``mitmdump -w``), read with mitmproxy's own reader.

Non-HTTP flows (TCP, UDP, DNS) are skipped with a reason. A corrupt file yields the flows
before the damage, then raises ReadError naming the flow index where reading stopped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from analysis.exchange import DEFAULT_BACKEND_HEADERS, Exchange
from analysis.privacy import DEFAULT_PRIVACY, Privacy
from analysis.readers.result import ReadError, Skip


class _Clamped:
    """A file whose reads never ask for more than is left in it.

    mitmproxy's tnetstring reader reads a record's declared length in one call: a corrupt or
    hostile prefix (``99999999999:``) made Python allocate that many bytes (MemoryError).
    Clamped, the read comes back short and mitmproxy reports the flow as truncated."""

    def __init__(self, raw: BinaryIO, size: int) -> None:
        self._raw = raw
        self._size = size

    def read(self, n: int = -1) -> bytes:
        left = max(0, self._size - self._raw.tell())
        return self._raw.read(left if n is None or n < 0 else min(n, left))

    def __getattr__(self, name: str):
        return getattr(self._raw, name)


def looks_like_flow_file(head: bytes) -> bool:
    """mitmproxy's dump format is tnetstring: it starts with '<digits>:'."""
    digits = head[:12].split(b":", 1)[0]
    return bool(digits) and digits.isdigit() and b":" in head[:12]


def read_flows(
    path: str | Path,
    *,
    client: str,
    key: bytes,
    source: str | None = None,
    backend_headers: Sequence[str] = DEFAULT_BACKEND_HEADERS,
    redact_validators: bool = False,
    privacy: Privacy = DEFAULT_PRIVACY,
) -> Iterator[Exchange | Skip]:
    """Exchanges from a flow file, in file order; ``entry_index`` is the flow's position."""
    # mitmproxy takes a quarter of a second to import: only flow files pay for it
    from mitmproxy import http, io
    from mitmproxy.exceptions import FlowReadException

    from analysis.readers.flow_exchange import exchange_from_flow

    source = source or str(path)
    index = 0
    try:
        with Path(path).open("rb") as raw:
            fh = _Clamped(raw, os.fstat(raw.fileno()).st_size)
            flows = io.FlowReader(fh).stream()
            while True:
                try:
                    flow = next(flows)
                except StopIteration:
                    break
                except (FlowReadException, OSError):
                    raise
                except Exception as exc:  # mitmproxy lets others through on damaged data
                    raise FlowReadException(f"{type(exc).__name__}: {exc}") from None
                if not isinstance(flow, http.HTTPFlow):
                    yield Skip(source, index, f"{type(flow).__name__}: not an HTTP exchange")
                    index += 1
                    continue
                try:
                    yield exchange_from_flow(
                        flow,
                        client=client,
                        source=source,
                        source_kind="flow",
                        key=key,
                        entry_index=index,
                        backend_headers=backend_headers,
                        redact_validators=redact_validators,
                        privacy=privacy,
                    )
                except Exception as exc:  # a damaged flow costs that flow alone
                    yield Skip(source, index, f"unusable flow: {type(exc).__name__}: {exc}")
                index += 1
    except FlowReadException as exc:
        raise ReadError(source, f"not a readable flow file (stopped at flow {index}): {exc}") from None
    except OSError as exc:
        raise ReadError(source, f"cannot read: {exc}") from None
