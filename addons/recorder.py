"""Record every HTTP exchange that passes the proxy into the etagwatch store.

Each flow becomes the very exchange record the HAR and flow-file readers make
(``analysis.readers.flow_exchange.exchange_from_flow``), so the detectors see no difference
between live and imported traffic. Writing happens on the store's background writer thread
(batched transactions, a commit at least every 0.5 s), so the proxy's event loop never waits
for SQLite and a ``kill -9`` loses at most the last second of exchanges.

Other addons (the live annotator) subscribe with :meth:`Recorder.subscribe` and receive each
flow with its exchange record, so the record is built once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

from mitmproxy import ctx, exceptions, http

from addons.guard import never_raise, report
from analysis.exchange import DEFAULT_BACKEND_HEADERS, Exchange

logger = logging.getLogger(__name__)

#: Default store path, relative to the directory mitmproxy was started from.
DEFAULT_DB = "etagwatch.sqlite"
SOURCE = "live:mitmproxy"

Listener = Callable[[http.HTTPFlow, Exchange], None]


def client_id(flow: http.HTTPFlow, mode: str) -> str:
    """'address': one client per client IP (a browser profile behind one address);
    'connection': one client per client connection; anything else: that fixed name."""
    if mode == "address":
        peer = flow.client_conn.peername
        return str(peer[0]) if peer else "unknown"
    if mode == "connection":
        return flow.client_conn.id
    return mode


class Recorder:
    """Turns flows into exchange records, stores them and hands them to subscribers."""

    name = "etagwatch_recorder"

    def __init__(self) -> None:
        self.store = None  # analysis.store.Store, opened in configure
        self.writer = None  # its BackgroundWriter
        self.db_path: str = ""
        self.recorded = 0
        self._key: bytes = os.urandom(32)  # used when recording is off
        self._listeners: list[Listener] = []
        # option values cached in configure: ctx.options deep-copies sequences on every read
        self._client_mode = "address"
        self._backend_headers: tuple[str, ...] = DEFAULT_BACKEND_HEADERS
        self._redact = False

    def load(self, loader) -> None:
        loader.add_option(
            "etagwatch_db",
            str,
            DEFAULT_DB,
            "etagwatch store (SQLite) that receives every exchange; relative paths are relative "
            "to the directory mitmproxy starts in; empty to record nothing.",
        )
        loader.add_option(
            "etagwatch_client",
            str,
            "address",
            "How exchanges are attributed to clients: 'address' (one client per client IP), "
            "'connection' (one per client connection) or any other text (one fixed client name).",
        )
        loader.add_option(
            "etagwatch_redact_validators",
            bool,
            False,
            "Store ETag and If-None-Match values only as keyed hashes (they can be identifiers).",
        )
        loader.add_option(
            "etagwatch_backend_headers",
            Sequence[str],
            list(DEFAULT_BACKEND_HEADERS),
            "Response headers that tell which backend answered (a trailing * matches a prefix).",
        )

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def configure(self, updated: set[str]) -> None:
        self._client_mode = ctx.options.etagwatch_client
        self._backend_headers = tuple(ctx.options.etagwatch_backend_headers)
        self._redact = ctx.options.etagwatch_redact_validators
        if "etagwatch_db" in updated:
            self._open(ctx.options.etagwatch_db)
        if "anticache" in updated and getattr(ctx.options, "anticache", False):
            logger.warning(
                "etagwatch: anticache is on: it strips If-None-Match and If-Modified-Since from "
                "every request, so no revalidation (and no ETag tracking) can be observed. "
                "Run without --anticache."
            )

    def _open(self, path: str) -> None:
        from analysis.store import Store, StoreError

        self._close()
        self.db_path = path
        if not path:
            return
        try:
            store = Store(os.path.expanduser(path))
            writer = store.writer()
        except (OSError, StoreError, Exception) as exc:
            raise exceptions.OptionsError(f"etagwatch_db: cannot open {path}: {exc}") from exc
        self.store, self.writer = store, writer
        self._key = store.key
        logger.info(f"etagwatch: recording exchanges into {os.path.abspath(path)}")

    @property
    def key(self) -> bytes:
        """The keyed-hash key of the store (or of this session when nothing is recorded)."""
        return self._key

    def exchange(self, flow: http.HTTPFlow) -> Exchange:
        from analysis.readers.flow_exchange import exchange_from_flow

        return exchange_from_flow(
            flow,
            client=client_id(flow, self._client_mode),
            source=SOURCE,
            source_kind="live",
            key=self._key,
            backend_headers=self._backend_headers,
            redact_validators=self._redact,
        )

    def record(self, flow: http.HTTPFlow) -> Exchange | None:
        if flow.metadata.get("etagwatch_recorded"):
            return None  # an error after the response: the exchange is already stored
        exchange = self.exchange(flow)
        flow.metadata["etagwatch_recorded"] = True
        if self.writer is not None:
            self.writer.put(exchange)
            self.recorded += 1
        for listener in self._listeners:
            try:
                listener(flow, exchange)
            except Exception as exc:
                report(f"{getattr(listener, '__qualname__', 'listener')}", exc)
        return exchange

    # --- hooks: every HTTP exchange ends in `response` or in `error`
    @never_raise("recorder.response")
    def response(self, flow: http.HTTPFlow) -> None:
        self.record(flow)

    @never_raise("recorder.error")
    def error(self, flow: http.HTTPFlow) -> None:
        if flow.response is None:
            self.record(flow)

    def flush(self) -> None:
        """Wait until every exchange seen so far is committed (for report and export)."""
        if self.writer is not None:
            self.writer.flush(timeout=30)

    def done(self) -> None:
        self._close()

    def _close(self) -> None:
        writer, store = self.writer, self.store
        self.writer = self.store = None
        try:
            if writer is not None:
                writer.close()
        except Exception as exc:
            report("recorder.close", exc)
        finally:
            if store is not None:
                store.close()
