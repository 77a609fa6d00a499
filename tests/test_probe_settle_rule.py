"""The settling rule of `probe --candidates` (analysis.probe.candidates.outcome.decide) on
trials told as servers would answer them: each scenario is a server function, played in the
order the probe sends (every client fetches, then every client revalidates twice, then the
forged tag)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable

import pytest

from analysis.probe.candidates.experiment import FORGED_CLIENT, ROUNDS, Request, Trial
from analysis.probe.candidates.outcome import decide

#: server(client, inm) -> (status, etag, body); client is "fresh-N" or "forged"
Server = Callable[[str, str | None], tuple[int, str | None, bytes]]
FORGED = '"etagwatch-forged-00112233aabbccdd"'
PIXEL = b"GIF89a-pixel"


def play(server: Server, clients: int = 3) -> Trial:
    """The requests the probe would send to ``server`` and what it answers."""
    trial = Trial("https://t.example/p.gif", clients)
    clock = itertools.count()
    held: dict[str, str | None] = {}

    def send(client: str, rnd: int, inm: str | None) -> Request:
        status, etag, body = server(client, inm)
        ok = 200 <= status < 300
        r = Request(client, rnd, inm, status, etag, None,
                    hashlib.sha256(body).hexdigest() if ok else None,
                    len(body) if ok else None, 1_700_000_000.0 + next(clock))
        trial.requests.append(r)
        return r

    for rnd in range(ROUNDS):
        for name in trial.fresh:
            got = send(name, rnd, held.get(name))
            if rnd == 0 and not ok_status(got.status):
                trial.stopped = f"answered {got.status} to a plain GET"
                return trial
            if ok_status(got.status) and got.etag:
                held[name] = got.etag
    trial.forged = FORGED
    send(FORGED_CLIENT, 0, FORGED)
    return trial


def ok_status(status: int) -> bool:
    return 200 <= status < 300


def tracker(client: str, inm: str | None) -> tuple[int, str | None, bytes]:
    """A new id for an unknown value, 304 for an issued one (the lab's tracker)."""
    if inm and inm in tracker.issued:  # type: ignore[attr-defined]
        return 304, inm, b""
    tag = f'"{hashlib.sha1(f"{client}-{len(tracker.issued)}".encode()).hexdigest()}"'  # type: ignore[attr-defined]
    tracker.issued.add(tag)  # type: ignore[attr-defined]
    return 200, tag, PIXEL


def fresh_tracker() -> Server:
    tracker.issued = set()  # type: ignore[attr-defined]
    return tracker


def echo(client: str, inm: str | None) -> tuple[int, str | None, bytes]:
    if inm:
        return 304, inm, b""
    return 200, f'"{hashlib.sha1(client.encode()).hexdigest()[:24]}"', PIXEL


def shared(value: str = '"Zq81hR2mK0pL7sX4vW9y"', *, any_304: bool = False) -> Server:
    def server(client: str, inm: str | None) -> tuple[int, str | None, bytes]:
        if inm and (inm == value or any_304):
            return 304, value, b""
        return 200, value, b"the same bytes for everyone"
    return server


def test_per_client_values_kept_with_304s_confirm_an_identifier() -> None:
    out = decide(play(fresh_tracker()))
    assert (out.outcome, out.settles, out.rule) == ("confirms", "identifier", "probe-per-client")
    assert "3 fresh clients" in out.reason and "all 6 revalidations answered 304" in out.reason
    assert out.confidence == 0.85


def test_a_forged_tag_echoed_is_decisive() -> None:
    out = decide(play(echo))
    assert (out.outcome, out.rule) == ("confirms", "probe-echo")
    assert FORGED in out.reason


def test_a_forged_tag_answered_304_without_echo_confirms_when_clients_differ() -> None:
    def reflecting(client: str, inm: str | None) -> tuple[int, str | None, bytes]:
        return (304, None, b"") if inm else (200, f'"{client}-0c8f2e9d1a7b"', PIXEL)
    out = decide(play(reflecting))
    assert (out.outcome, out.rule) == ("confirms", "probe-reflection")


def test_one_value_for_every_fresh_client_clears_to_stable() -> None:
    out = decide(play(shared()))
    assert (out.outcome, out.settles, out.rule) == ("clears", "stable", "probe-shared")
    assert '"Zq81hR2mK0pL7sX4vW9y"' in out.reason


def test_a_shared_value_is_worded_through_show() -> None:
    out = decide(play(shared()), show=lambda v: "hmac:x")
    assert "Zq81" not in out.reason and "hmac:x" in out.reason


def test_a_shared_value_with_any_tag_answered_304_stays_open() -> None:
    """Everyone gets one value, but the server accepts any If-None-Match: not an id handed
    out, yet a value planted some other way would be kept: neither cleared nor confirmed."""
    out = decide(play(shared(any_304=True)))
    assert out.outcome == "inconclusive"
    assert "never issued was answered 304" in out.reason


def test_a_new_value_on_every_response_clears_to_unstable() -> None:
    counter = itertools.count()

    def random_etag(client: str, inm: str | None) -> tuple[int, str | None, bytes]:
        return 200, f'"r{next(counter):08x}ffee"', b"ticker"
    out = decide(play(random_etag))
    assert (out.outcome, out.settles, out.rule) == ("clears", "unstable", "probe-unstable")


def test_backends_pinned_per_connection_are_not_an_identifier() -> None:
    """Apache inode ETags from three backends, each client's requests landing on its own
    backend (as a layer-4 balancer pins a connection): distinct values kept with 304s, but a
    server format explains them."""
    tags = {f"fresh-{i}": f'"{0x1a2b + i:x}-5d2-5e1c2f3a4b5c6"' for i in (1, 2, 3)}

    def pinned(client: str, inm: str | None) -> tuple[int, str | None, bytes]:
        tag = tags.get(client, tags["fresh-1"])
        return (304, tag, b"") if inm == tag else (200, tag, b"same lib.js")
    out = decide(play(pinned))
    assert out.outcome == "inconclusive"
    assert "apache-inode-size-mtime" in out.reason


def test_round_robin_backends_answering_200_are_not_kept_values() -> None:
    tags = ['"a81f0c"', '"77be21"']
    turn = itertools.count()

    def round_robin(client: str, inm: str | None) -> tuple[int, str | None, bytes]:
        tag = tags[next(turn) % 2]
        return (304, tag, b"") if inm == tag else (200, tag, b"same bytes")
    out = decide(play(round_robin))
    assert out.outcome == "inconclusive"


def test_content_coding_variants_of_one_value_are_not_per_client() -> None:
    tags = {"fresh-1": '"5f3a9b1c-gzip"', "fresh-2": '"5f3a9b1c-br"', "fresh-3": '"5f3a9b1c"'}

    def codings(client: str, inm: str | None) -> tuple[int, str | None, bytes]:
        tag = tags.get(client, '"5f3a9b1c"')
        return (304, tag, b"") if inm == tag else (200, tag, b"x")
    assert decide(play(codings)).outcome == "inconclusive"


def test_two_clients_sharing_a_value_settle_nothing() -> None:
    tags = {"fresh-1": '"c1a2b3c4d5e6f7"', "fresh-2": '"c1a2b3c4d5e6f7"', "fresh-3": '"99ab"'}

    def mixed(client: str, inm: str | None) -> tuple[int, str | None, bytes]:
        tag = tags.get(client, '"99ab"')
        return (304, tag, b"") if inm == tag else (200, tag, b"x")
    out = decide(play(mixed))
    assert out.outcome == "inconclusive"
    assert "3 fresh clients got 2 distinct ETags" in out.reason


def test_each_client_its_own_body_and_value_confirms_by_content() -> None:
    issued: dict[str, str] = {}

    def script(client: str, inm: str | None) -> tuple[int, str | None, bytes]:
        if inm in issued.values():
            return 304, inm, b""
        tag = f'"km-{hashlib.sha1(client.encode()).hexdigest()[:20]}"'
        issued[client] = tag
        return 200, tag, f"var _km_cid = {tag};".encode()
    out = decide(play(script))
    assert (out.outcome, out.rule) == ("confirms", "probe-per-client-content")


def test_a_resource_that_does_not_answer_2xx_is_left_open() -> None:
    out = decide(play(lambda c, inm: (404, None, b"gone")))
    assert (out.outcome, out.rule) == ("inconclusive", "probe-no-2xx")
    assert "answered 404" in out.reason


def test_no_etag_is_left_open() -> None:
    out = decide(play(lambda c, inm: (200, None, b"plain")))
    assert (out.outcome, out.rule) == ("inconclusive", "probe-no-etag")


@pytest.mark.parametrize("clients", [2, 5])
def test_the_rule_holds_for_other_client_counts(clients: int) -> None:
    assert decide(play(fresh_tracker(), clients)).rule == "probe-per-client"
    assert decide(play(shared(), clients)).rule == "probe-shared"
