"""Server replay that honours preconditions (RFC 9110 13).

mitmproxy's server replay sends the recorded response whatever the request's If-None-Match,
If-Modified-Since, If-Match, If-Unmodified-Since or Range say. This addon evaluates them with
``analysis.conditional.evaluate`` against the replayed representation and answers 304, 412, 206
or the full response.

Hook order (read from mitmproxy/addons/serverplayback.py and the HTTP layer): server replay sets
``flow.response`` in its ``request`` hook, and script addons run before it in that hook, so
anything we set there would be overwritten. The replayed response is visible in the ``response``
hook with ``flow.is_replay == "response"``, before it goes on the wire, so that is where we act.
In stateful mode we also answer in ``request`` (no upstream connection is ever made for a
resource we hold) and restore our answer in ``response`` if server replay overwrote it.

``server_replay_refresh`` (on by default) shifts Last-Modified by the time since recording on
every replay, so If-Modified-Since could never match; while this addon replays, it turns that
option off and says so in the event log.

Replay is hermetic unless ``etagwatch_replay_passthrough`` is on: what server replay leaves
unanswered is answered by ``addons.replay_guard`` (from the recording, or 404), never by the
network, and ``connection_strategy`` is lazy, so no upstream connection opens ahead of a request.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from mitmproxy import ctx, exceptions, http

from addons import option_checks, replay_guard
from addons import replay_responses as responses
from addons.guard import report
from addons.replay_sources import load_source
from addons.replay_state import ReplayState, head_of, resource_key

logger = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE"})
READ_METHODS = frozenset({"GET", "HEAD"})


def _evaluate(method: str, headers: http.Headers, etag: str | None, last_modified: str | None, exists: bool):
    from analysis.conditional import evaluate  # engineer A's RFC core

    return evaluate(method, headers, etag=etag, last_modified=last_modified, exists=exists)


def _precondition_required(method: str, headers: http.Headers, exists: bool):
    from analysis.conditional import precondition_required

    return precondition_required(method, headers, exists=exists)


def conditional_answer(request: http.Request, full: http.Response) -> http.Response:
    """What an RFC 9110 origin holding ``full`` as the current representation answers."""
    decision = _evaluate(
        request.method,
        request.headers,
        full.headers.get("etag"),
        full.headers.get("last-modified"),
        True,
    )
    if decision.status == 304:
        return responses.not_modified(full)
    if decision.status == 412:
        return responses.precondition_failed(decision.reason, decision.rfc)
    range_value = request.headers.get("range")
    if (
        request.method == "GET"
        and range_value
        and (decision.status == 206 or "if-range" not in request.headers)
    ):
        part = responses.partial(full, range_value)
        if part is not None:
            return part
    return full


#: The options the replay addon adds (their --set values are applied one by one in ``load``).
OPTIONS = (
    "etagwatch_replay",
    "etagwatch_replay_conditional",
    "etagwatch_replay_stateful",
    "etagwatch_require_preconditions",
    "etagwatch_replay_passthrough",
)


class PreconditionReplay:
    """Answers replayed requests as an origin that evaluates preconditions would."""

    name = "etagwatch_replay"

    def __init__(self) -> None:
        self.state = ReplayState()
        self._answers: dict[str, http.Response] = {}
        self._loaded: tuple[str, ...] = ()
        self._seeded_from_server_replay: tuple[str, ...] = ()
        self._stateful = False  # cached in configure: the request hook runs on every flow
        self.guard = replay_guard.HermeticReplay(self.state)  # installed in running

    def load(self, loader) -> None:
        loader.add_option(
            "etagwatch_replay",
            Sequence[str],
            [],
            "Replay responses from these flow or HAR files (HAR entries that are cache hits, "
            "304s or rejected by mitmproxy's HAR reader are dropped) through server replay, "
            "honouring the requests' preconditions.",
        )
        loader.add_option(
            "etagwatch_replay_conditional",
            bool,
            True,
            "Evaluate If-None-Match, If-Modified-Since, If-Match, If-Unmodified-Since and "
            "If-Range of replayed requests (RFC 9110 13) and answer 304, 412 or 206.",
        )
        loader.add_option(
            "etagwatch_replay_stateful",
            bool,
            False,
            "Successful PUT, PATCH and DELETE change the replayed representation (new strong "
            "ETag), so clients can be tested against lost updates.",
        )
        loader.add_option(
            "etagwatch_require_preconditions",
            bool,
            False,
            "In stateful replay, answer 428 to an unconditional write to an existing resource.",
        )
        loader.add_option(
            "etagwatch_replay_passthrough",
            bool,
            False,
            "While replaying (etagwatch_replay or server_replay), send requests the recording "
            "cannot answer to the network. Off: they get 404 with an X-Etagwatch-Replay header "
            "saying why, and nothing leaves the proxy.",
        )
        option_checks.apply_set_values(loader, OPTIONS)

    def running(self) -> None:
        option_checks.started()
        self.guard = replay_guard.install(self.state)
        self._guard_configure()

    def configure(self, updated: set[str]) -> None:
        self._stateful = ctx.options.etagwatch_replay_stateful
        if "etagwatch_replay" in updated:
            paths = tuple(ctx.options.etagwatch_replay)
            if paths and paths != self._loaded:
                flows = []
                for path in paths:
                    try:
                        loaded = load_source(path)
                    except exceptions.OptionsError as exc:
                        option_checks.refuse(f"etagwatch: etagwatch_replay: {exc}")
                        return  # starting: the proxy exits on the error line
                    logger.info(f"etagwatch replay: {loaded.summary()}")
                    flows.extend(loaded.flows)
                self._loaded = paths
                self.state.seed(flows)
                try:
                    ctx.master.commands.call("replay.server.add", flows)
                except exceptions.CommandError as exc:
                    raise exceptions.OptionsError(f"etagwatch_replay: server replay is unavailable ({exc})") from exc
        if "server_replay" in updated:
            paths = tuple(getattr(ctx.options, "server_replay", ()) or ())
            if paths and paths != self._seeded_from_server_replay:
                self._seeded_from_server_replay = paths
                for path in paths:
                    # server replay itself reports unreadable files
                    with contextlib.suppress(exceptions.OptionsError):
                        self.state.seed(load_source(path).flows)
        replaying = bool(ctx.options.etagwatch_replay or getattr(ctx.options, "server_replay", None))
        self._guard_configure()
        self._warn_unused(updated, replaying)
        if replaying and getattr(ctx.options, "server_replay_refresh", False):
            logger.warning(
                "etagwatch replay: turning server_replay_refresh off: it shifts Last-Modified on "
                "every replay, so If-Modified-Since and If-Unmodified-Since could never match."
            )
            ctx.options.update(server_replay_refresh=False)

    def _warn_unused(self, updated: set[str], replaying: bool) -> None:
        """Options that do nothing in this combination: said once, not refused (they are set one
        at a time in mitmproxy's console, so an order of settings must not be an error)."""
        opts = ctx.options
        if "etagwatch_require_preconditions" in updated and opts.etagwatch_require_preconditions and not opts.etagwatch_replay_stateful:
            logger.warning("etagwatch: etagwatch_require_preconditions does nothing without etagwatch_replay_stateful")
        needs_replay = ("etagwatch_replay_stateful", "etagwatch_replay_passthrough")
        for name in needs_replay:
            if name in updated and getattr(opts, name) and not replaying:
                logger.warning(f"etagwatch: {name} does nothing without etagwatch_replay or server_replay")

    def _guard_configure(self) -> None:
        replaying = bool(ctx.options.etagwatch_replay or getattr(ctx.options, "server_replay", None))
        hermetic = replaying and not ctx.options.etagwatch_replay_passthrough
        if hermetic and not self.guard.active:
            logger.info("etagwatch replay: hermetic: requests the recording cannot answer get 404 "
                        "(etagwatch_replay_passthrough=true sends them to the network)")
        self.guard.active = hermetic
        if hermetic and getattr(ctx.options, "connection_strategy", "lazy") == "eager":
            logger.info("etagwatch replay: connection_strategy=lazy, so no upstream connection "
                        "opens before a request the recording cannot answer")
            ctx.options.update(connection_strategy="lazy")

    # --- stateful answers, decided before server replay runs
    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or not self._stateful:
            return
        try:
            answer = self.stateful_answer(flow.request)
        except Exception as exc:  # never break traffic; the request goes on unchanged
            report("replay.request", exc)
            return
        if answer is not None:
            self._answers[flow.id] = answer
            flow.response = answer
            flow.is_replay = "response"

    def stateful_answer(self, request: http.Request) -> http.Response | None:
        key = resource_key(request)
        method = request.method.upper()
        rep = self.state.get(key)
        if method in READ_METHODS:
            if rep is not None:
                answer = conditional_answer(request, rep.response.copy())
                return _head(answer) if method == "HEAD" else answer
            if key in self.state.deleted:
                return responses.explain(404, "404 Not Found: deleted during this replay.")
            return None
        if method not in WRITE_METHODS:
            return None
        if rep is None and key not in self.state.deleted and not (
            method == "PUT" and self.state.knows_host(request)
        ):
            return None  # not ours: server replay (or the origin) answers
        if rep is None and method != "PUT":
            return responses.explain(404, f"404 Not Found: nothing to {method} here.")
        exists = rep is not None
        if ctx.options.etagwatch_require_preconditions:
            required = _precondition_required(method, request.headers, exists)
            if required is not None:
                return responses.precondition_required(
                    method,
                    request.pretty_url,
                    rep.etag if rep else None,
                    rep.last_modified if rep else None,
                    exists,
                )
        decision = _evaluate(
            method, request.headers, rep.etag if rep else None, rep.last_modified if rep else None, exists
        )
        if decision.status == 412:
            return responses.precondition_failed(decision.reason, decision.rfc)
        if method == "DELETE":
            self.state.delete(key)
            return http.Response.make(204)
        new = self.state.put(key, request) if method == "PUT" else self.state.patch(key, request)
        validators = [
            (b"etag", (new.etag or "").encode()),
            (b"last-modified", (new.last_modified or "").encode()),
        ]
        if not exists:
            return http.Response.make(201, b"", [*validators, (b"location", request.path.encode())])
        return http.Response.make(204, b"", validators)

    # --- preconditions on what server replay chose
    def response(self, flow: http.HTTPFlow) -> None:
        ours = self._answers.pop(flow.id, None)
        if ours is not None:
            flow.response = ours  # server replay may have overwritten it in its request hook
            return
        if flow.is_replay != "response" or flow.response is None:
            return
        if not ctx.options.etagwatch_replay_conditional:
            return
        try:
            flow.response = self.replayed_answer(flow.request, flow.response)
        except Exception as exc:  # never break traffic: the recorded response goes out as is
            report("replay.response", exc)

    def replayed_answer(self, request: http.Request, replayed: http.Response) -> http.Response:
        method = request.method.upper()
        if method in READ_METHODS:
            if replayed.status_code != 200:
                return replayed  # preconditions apply to 2xx only (RFC 9110 13.2.1)
            answer = conditional_answer(request, replayed)
            return _head(answer) if method == "HEAD" and answer is replayed else answer
        rep = self.state.get(resource_key(request))
        if method in WRITE_METHODS and 200 <= replayed.status_code < 300 and rep is not None:
            decision = _evaluate(method, request.headers, rep.etag, rep.last_modified, True)
            if decision.status == 412:
                return responses.precondition_failed(decision.reason, decision.rfc)
        return replayed

    def error(self, flow: http.HTTPFlow) -> None:
        self._answers.pop(flow.id, None)


def _head(response: http.Response) -> http.Response:
    return head_of(response) if response.raw_content else response
