"""Hermetic replay: while replaying, a request nothing recorded answers never reaches the network.

mitmproxy's server replay forwards every request it holds no response for
(``server_replay_extra=forward``, its default), and forwards everything once its responses are
used up (each is used once unless ``server_replay_reuse``): a revalidation after the first visit
went to the live origin, which for a privacy tool is the live tracker. This addon sits at the
end of mitmproxy's addon chain, so its ``request`` hook runs after server replay's (scripts run
before it, see ``addons.replay``). A flow still without a response there is answered from the
recording (the last recorded response of that GET or HEAD: recorded responses are reused, and
``addons.replay`` then evaluates the request's preconditions on it), or with a 404 that says why
in ``X-Etagwatch-Replay`` and a log line. Whatever else would open a connection (a tunnel
mitmproxy passes through, raw TCP or UDP, a WebSocket) is stopped in ``server_connect``, which
mitmproxy fires before every upstream connection. ``etagwatch_replay_passthrough`` turns all of
this off.
"""

from __future__ import annotations

import logging

from mitmproxy import ctx, http
from mitmproxy.proxy import server_hooks

from addons import replay_responses as responses
from addons.chain_end import append_once
from addons.guard import never_raise
from addons.replay_state import ReplayState

logger = logging.getLogger(__name__)

#: Response header that says why the proxy, not the recording, answered.
REASON_HEADER = "X-Etagwatch-Replay"
NAME = "etagwatch_replay_hermetic"


class HermeticReplay:
    """Answers, after server replay, what server replay left to the network."""

    name = NAME

    def __init__(self, state: ReplayState) -> None:
        self.state = state
        self.active = False  # set by PreconditionReplay.configure: replaying and not passthrough

    @never_raise("replay.hermetic")
    def request(self, flow: http.HTTPFlow) -> None:
        if not self.active or flow.response is not None or flow.error is not None or not flow.live:
            return  # answered, killed (server_replay_extra=kill) or not a live flow
        recorded = self.state.recorded_answer(flow.request)
        if recorded is not None:
            flow.response = recorded
            flow.is_replay = "response"
            return
        flow.response = refusal(flow.request)
        flow.is_replay = "response"
        logger.warning(
            f"etagwatch replay: no recorded response for {flow.request.method} {flow.request.pretty_url}: "
            "answered 404, nothing sent to the network (etagwatch_replay_passthrough=true forwards such requests)"
        )


    @never_raise("replay.hermetic.server_connect")
    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        if not self.active or data.server.error is not None:
            return
        host, port = (data.server.address or ("?", 0))[:2]
        data.server.error = "etagwatch replay is hermetic (etagwatch_replay_passthrough is off)"
        logger.warning(f"etagwatch replay: refused a connection to {host}:{port}: nothing is sent to the network")


def refusal(request: http.Request) -> http.Response:
    """The 404 for a request the recording cannot answer, or the status server_replay_extra
    names when it names one."""
    why = f"no recorded response for {request.method} {request.pretty_url}"
    extra = str(getattr(ctx.options, "server_replay_extra", "forward"))
    status = int(extra) if extra.isdigit() else 404
    header = why.encode("latin-1", "replace")
    return responses.explain(status, f"{status}: etagwatch replay: {why}.", [(REASON_HEADER.lower().encode(), header)])


def install(state: ReplayState) -> HermeticReplay:
    """The guard at the end of mitmproxy's addon chain (after server replay), once; a reloaded
    script gets the existing guard, pointed at its own state."""
    guard = append_once(HermeticReplay(state))
    guard.state = state
    return guard
