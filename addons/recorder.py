"""Record every HTTP exchange that passes the proxy into the etagwatch store.

Each flow becomes the very exchange record the HAR and flow-file readers make
(``analysis.readers.flow_exchange.exchange_from_flow``), so the detectors see no difference
between live and imported traffic. A flow is stored once, when it ends: in mitmproxy's
``response`` hook, or in its ``error`` hook, which mitmproxy fires instead when there is no
response or when the origin hangs up in the middle of the body (buffered or streamed). Such a
cut-short flow keeps the status and headers that arrived, with mitmproxy's error (under
Content-Length it says how far the body got: "received 100 bytes, expected 1000"); its body size
and hash stay unknown, since mitmproxy keeps no partial body on the flow. A flow still in flight
when the recorder stops (the proxy shuts down) reaches neither hook: ``done`` stores it with
what it has so far and the error :data:`UNFINISHED`.

The event loop only takes a snapshot of the flow (header lines by reference, the body's digest:
``addons.flow_snapshot``); a child process (``addons.record_writer``) builds the records from
the snapshots and stores them, rows shipped every 0.1 s and committed per shipment. So the
proxy neither builds records nor waits for SQLite nor shares the GIL with it, and a ``kill -9``
loses at most the last second of exchanges.

Other addons (the live annotator) subscribe with :meth:`Recorder.subscribe` and receive each
flow with a light record (the fields single-exchange checks read); a listener that takes a
third argument also gets a zero-argument callable that builds the full record, for the rare
moments (detector re-runs) that need it.

A listener that is a judge (it subscribes with ``verdicts=``) is not called per flow while the
writer process can judge instead: then the child judges the records it builds anyway
(``addons.writer_judge``) and its verdicts come back to ``verdicts`` with their flows, on the
event loop, a fraction of a second later. That is the default, also without a store (then the
writer process stores nothing and only judges); the judge stays in the proxy when flows are
streamed to a file as they finish (``save_stream_file``: the file gets each flow in the same
hook, so its verdicts must be on it).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import weakref
from collections.abc import Callable, Sequence
from functools import partial

import msgspec
from mitmproxy import ctx, http

from addons import option_checks
from addons.flow_snapshot import RecordConfig, light_exchange, take, to_exchange
from addons.guard import never_raise, report
from addons.live_checks import Update, Verdict
from addons.record_writer import RecordWriter, RecordWriterError
from analysis.exchange import DEFAULT_BACKEND_HEADERS, Exchange
from analysis.privacy import SECRET_HEADER_PARTS, Privacy

logger = logging.getLogger(__name__)

#: Default store path, relative to the directory mitmproxy was started from.
DEFAULT_DB = "etagwatch.sqlite"
SOURCE = "live:mitmproxy"

#: ``listener(flow, light_record)`` or ``listener(flow, light_record, full_record)``, where
#: ``full_record()`` builds the complete record (see the module docstring).
Listener = Callable[..., None]
#: ``consumer([(flow, Update), ...])``: verdicts the writer process judged.
VerdictConsumer = Callable[[list[tuple[http.HTTPFlow, Update]]], None]
#: The error of a flow that had not ended when the recorder stopped.
UNFINISHED = "unfinished: the proxy stopped before the exchange ended"
#: Flows remembered (weakly) for verdicts from the writer process; these come within a second
#: or two, so older ones are forgotten first.
RECENT_FLOWS = 20_000


def client_id(flow: http.HTTPFlow, mode: str) -> str:
    """'address': one client per client IP (a browser profile behind one address);
    'connection': one client per client connection; anything else: that fixed name."""
    if mode == "address":
        peer = flow.client_conn.peername
        return str(peer[0]) if peer else "unknown"
    if mode == "connection":
        return flow.client_conn.id
    return mode


#: The options the recorder adds (their --set values are applied one by one in ``load``).
OPTIONS = (
    "etagwatch_db",
    "etagwatch_client",
    "etagwatch_redact_validators",
    "etagwatch_keep_query",
    "etagwatch_secret_headers",
    "etagwatch_backend_headers",
)


class Recorder:
    """Turns flows into exchange records, stores them and hands them to subscribers."""

    name = "etagwatch_recorder"

    def __init__(self) -> None:
        self.store_path: str | None = None  # the store being recorded into, if any
        self.writer: RecordWriter | None = None  # the child process that owns it
        self.db_path: str = ""
        self.recorded = 0
        self._key: bytes = os.urandom(32)  # used when recording is off
        self._listeners: list[tuple[Listener, bool]] = []  # (listener, wants the full record)
        self._judges: list[tuple[Listener, bool, VerdictConsumer]] = []  # listeners the writer can replace
        self._in_proxy: list[tuple[Listener, bool]] = []  # the listeners called per flow now
        self.judged_in_writer = False
        self._ship = False  # snapshots go to the writer process (to store or to judge)
        self._recent: dict[str, weakref.ref[http.HTTPFlow]] = {}  # flow id -> flow, while judged in the writer
        # flow id -> flow, not yet recorded (held: at ``done`` the proxy may be dropping them)
        self._in_flight: dict[str, http.HTTPFlow] = {}
        self._in_flight_limit = RECENT_FLOWS  # then forget the flows that ended without a hook
        self._loop: asyncio.AbstractEventLoop | None = None
        # option values cached in configure: ctx.options deep-copies sequences on every read
        self._client_mode = "address"
        self._backend_headers: tuple[str, ...] = DEFAULT_BACKEND_HEADERS
        self._redact = False
        self._keep_query = False
        self._secret_parts: tuple[str, ...] = ()
        self._store_privacy: Privacy | None = None
        self._config = RecordConfig(source=SOURCE, source_kind="live", key=self._key)

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
            "etagwatch_keep_query",
            bool,
            False,
            "Store query values in clear (default: keyed hashes, names kept). A store keeps one "
            "setting: this needs a store without exchanges or one made with it.",
        )
        loader.add_option(
            "etagwatch_secret_headers",
            Sequence[str],
            [],
            "Parts of header names whose values are stored as keyed hashes, beyond Cookie, "
            "Set-Cookie, Authorization and names containing token, key, secret, auth, session, "
            "csrf, xsrf, signature, password or credential (remembered by the store).",
        )
        loader.add_option(
            "etagwatch_backend_headers",
            Sequence[str],
            list(DEFAULT_BACKEND_HEADERS),
            "Response headers that tell which backend answered (a trailing * matches a prefix).",
        )
        option_checks.apply_set_values(loader, OPTIONS)

    def subscribe(self, listener: Listener, *, verdicts: VerdictConsumer | None = None) -> None:
        """Call ``listener`` with each flow's light record; a judge also gives ``verdicts``,
        which receives the writer process's verdicts instead whenever that judges."""
        try:
            takes_full = len(inspect.signature(listener).parameters) >= 3
        except (TypeError, ValueError):
            takes_full = False
        if verdicts is None:
            self._listeners.append((listener, takes_full))
        else:
            self._judges.append((listener, takes_full, verdicts))
        self._choose_judge()

    def _choose_judge(self, may_start: bool = False) -> None:
        """Judge in the writer process (started for judging alone when nothing is recorded),
        unless flows are saved as they finish (then here) or annotations are off (then
        nowhere)."""
        try:
            streamed = bool(getattr(ctx.options, "save_stream_file", None))
            annotate = getattr(ctx.options, "etagwatch_annotate", True)
        except AttributeError:  # no master yet (subscribe before loading)
            streamed, annotate = False, True
        wanted = bool(self._judges) and annotate and not streamed
        if wanted and self.writer is None and may_start:
            self._start_judge()
        self.judged_in_writer = wanted and self.writer is not None
        judge_here = annotate and not self.judged_in_writer
        judges = [(f, full) for f, full, _ in self._judges] if judge_here else []
        self._in_proxy = [*self._listeners, *judges]
        self._ship = self.store_path is not None or self.judged_in_writer
        if not self.judged_in_writer:
            self._recent.clear()

    def _start_judge(self) -> None:
        """A writer process that stores nothing and only judges (``etagwatch_db`` is empty)."""
        try:
            self.writer = RecordWriter(None, on_verdicts=self._from_writer)
        except (OSError, RecordWriterError) as exc:  # then the judge runs here: slower, not wrong
            logger.warning(f"etagwatch: verdicts are found on the event loop ({exc})")
            return
        self._config = RecordConfig(source=SOURCE, source_kind="live", key=b"")  # sent next

    def configure(self, updated: set[str]) -> None:
        if "etagwatch_client" in updated and not ctx.options.etagwatch_client.strip():
            option_checks.refuse("etagwatch: etagwatch_client is empty: use 'address', 'connection' or a client name")
        else:
            self._client_mode = ctx.options.etagwatch_client
        option_checks.header_names("etagwatch_backend_headers", ctx.options.etagwatch_backend_headers, prefix_star=True)
        option_checks.header_names("etagwatch_secret_headers", ctx.options.etagwatch_secret_headers)
        self._backend_headers = tuple(ctx.options.etagwatch_backend_headers)
        self._redact = ctx.options.etagwatch_redact_validators
        self._keep_query = ctx.options.etagwatch_keep_query
        self._secret_parts = tuple(ctx.options.etagwatch_secret_headers)
        if updated & {"etagwatch_db", "etagwatch_keep_query", "etagwatch_secret_headers"}:
            self._open(ctx.options.etagwatch_db)  # the store decides what these become
        self._choose_judge(may_start=True)
        self._reconfigure()
        if "anticache" in updated and getattr(ctx.options, "anticache", False):
            logger.warning(
                "etagwatch: anticache is on: it strips If-None-Match and If-Modified-Since from "
                "every request, so no revalidation (and no ETag tracking) can be observed. "
                "Run without --anticache."
            )

    def _open(self, path: str) -> None:
        """Start the writer process on ``path``; it creates or migrates the store and hands
        back the store's key (SQLite never runs in the proxy's process)."""
        self._close()
        self.db_path = path
        if not path:
            return
        store_path = os.path.abspath(os.path.expanduser(path))
        problem = option_checks.store_path_problem(store_path)
        if problem is None:
            try:
                writer = RecordWriter(store_path, on_verdicts=self._from_writer,
                                      keep_query=self._keep_query, secret_headers=self._secret_parts)
            except (OSError, RecordWriterError) as exc:
                problem = str(exc).removeprefix(f"{store_path}: ")  # say the path once
        if problem is not None:
            option_checks.refuse(f"etagwatch: etagwatch_db={path}: {problem}; nothing is recorded")
            return
        assert writer.key is not None  # a store has its key
        self.store_path, self.writer = store_path, writer
        self._key = writer.key
        self._store_privacy = writer.privacy
        self._config = RecordConfig(source=SOURCE, source_kind="live", key=b"")  # sent below
        logger.info(f"etagwatch: recording exchanges into {store_path}")

    def _reconfigure(self) -> None:
        """Tell the writer process how to build records when an option or the key changed."""
        config = RecordConfig(
            source=SOURCE,
            source_kind="live",
            key=self._key,
            backend_headers=self._backend_headers,
            redact_validators=self._redact,
            judge=self.judged_in_writer,
            privacy=self._privacy(),
        )
        if config != self._config:
            self._config = config
            if self.writer is not None:
                self.writer.configure(config)

    def _privacy(self) -> Privacy:
        """The store's settings when recording, else those the options ask for."""
        if self.writer is not None and self._store_privacy is not None:
            return self._store_privacy
        return Privacy(keep_query=self._keep_query,
                       secret_headers=tuple(dict.fromkeys((*SECRET_HEADER_PARTS, *self._secret_parts))))

    @property
    def key(self) -> bytes:
        """The keyed-hash key of the store (or of this session when nothing is recorded)."""
        return self._key

    def exchange(self, flow: http.HTTPFlow) -> Exchange:
        """The full record of a flow, as the store gets it."""
        return to_exchange(take(flow, client_id(flow, self._client_mode)), self._config)

    def record(self, flow: http.HTTPFlow, error: str | None = None) -> Exchange | None:
        """Snapshot the flow for the writer and hand subscribers its light record; ``error``
        stands in for a flow's missing error."""
        self._in_flight.pop(flow.id, None)
        if flow.metadata.get("etagwatch_recorded"):
            return None  # a second hook for one flow (an error after the response): stored
        snap = take(flow, client_id(flow, self._client_mode))
        if error is not None and snap.error is None:
            snap = msgspec.structs.replace(snap, error=error)
        flow.metadata["etagwatch_recorded"] = True
        if self._ship and self.writer is not None:
            try:
                self.writer.put_snapshot(snap)
                self.recorded += self.store_path is not None
            except Exception as exc:  # the store failed: live annotations still go on
                report("recorder.store", exc)
        if self.judged_in_writer:
            self._remember(flow)
        listeners = self._in_proxy
        if not listeners:
            return None
        config = self._config
        light = light_exchange(snap, config)
        full = partial(to_exchange, snap, config)
        for listener, takes_full in listeners:
            try:
                if takes_full:
                    listener(flow, light, full)
                else:
                    listener(flow, light)
            except Exception as exc:
                report(f"{getattr(listener, '__qualname__', 'listener')}", exc)
        return light

    # --- verdicts judged in the writer process
    def _remember(self, flow: http.HTTPFlow) -> None:
        recent = self._recent
        recent[flow.id] = weakref.ref(flow)
        if len(recent) > RECENT_FLOWS:  # forget the dead, then the oldest
            alive = [(k, r) for k, r in recent.items() if r() is not None]
            self._recent = dict(alive[-RECENT_FLOWS // 2 :])

    def _from_writer(self, judged: list[list]) -> None:
        """On the writer's listener thread: hand the verdicts to the event loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._deliver, judged)

    def _deliver(self, judged: list[list]) -> None:
        """``[flow id, own, resource]`` items (``addons.writer_judge``) to the consumers, in
        order (a later revision of a flow's resource verdict wins)."""
        flows = []
        for flow_id, own, resource in judged:
            ref = self._recent.get(flow_id)
            flow = ref() if ref is not None else None
            if flow is not None:
                verdicts = None if resource is None else tuple(Verdict(*v) for v in resource)
                flows.append((flow, Update(tuple(Verdict(*v) for v in own), verdicts)))
        if not flows:
            return
        for _, _, consumer in self._judges:
            try:
                consumer(flows)
            except Exception as exc:
                report(f"{getattr(consumer, '__qualname__', 'verdicts')}", exc)

    def host_counters(self) -> dict[str, dict[str, int]]:
        """The writer process's per-host counters (flows it judged), as of now."""
        if self.writer is None or not self.judged_in_writer:
            return {}
        self.flush()
        return self.writer.host_counters

    # --- hooks: every HTTP exchange ends in `response` or in `error` (mitmproxy fires one of
    # the two; `record` keeps a flow that sees both to one row)
    def running(self) -> None:
        self._loop = asyncio.get_running_loop()
        option_checks.started()

    @never_raise("recorder.requestheaders")
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        flying = self._in_flight
        flying[flow.id] = flow  # the first hook of every HTTP flow
        if len(flying) > self._in_flight_limit:  # mitmproxy marks every ended flow not live
            self._in_flight = {k: f for k, f in flying.items() if f.live}
            self._in_flight_limit = max(RECENT_FLOWS, 2 * len(self._in_flight))

    @never_raise("recorder.response")
    def response(self, flow: http.HTTPFlow) -> None:
        self.record(flow)

    @never_raise("recorder.error")
    def error(self, flow: http.HTTPFlow) -> None:
        # also with flow.response set: the origin hung up mid-body, a body over
        # body_size_limit, headers refused by validate_inbound_headers, a flow killed after
        # its response headers; none of these reach the response hook
        self.record(flow)

    def flush(self) -> None:
        """Wait until every exchange seen so far is committed (for report and export)."""
        if self.writer is not None:
            self.writer.flush(timeout=30)

    def done(self) -> None:
        self._record_unfinished()
        self._close()

    def _record_unfinished(self) -> None:
        """Flows in flight now never reach ``response`` or ``error`` (mitmproxy tears their
        connections down without either): store each with what it has and :data:`UNFINISHED`."""
        unfinished, self._in_flight = self._in_flight, {}
        for flow in unfinished.values():
            try:
                self.record(flow, UNFINISHED)
            except Exception as exc:
                report("recorder.unfinished", exc)

    def _close(self) -> None:
        writer, self.writer, self.store_path = self.writer, None, None
        try:
            if writer is not None:
                writer.close()
        except Exception as exc:
            report("recorder.close", exc)
