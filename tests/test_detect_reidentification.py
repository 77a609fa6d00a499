"""Per-client stability tolerates re-identification, without losing precision.

A browser sometimes refetches without conditions (hard reload, cache eviction); a tracker then
hands it a new id, which the browser keeps with 304s. That is re-identification, not instability;
load balancers and random-per-response origins must still not look like trackers.
"""

from __future__ import annotations

import hashlib

import exchange_factory as xf
import pandas as pd

from analysis.detectors import resource_features, resource_verdicts

TRACKER = "https://t.example.net/pixel.gif"


def _id(seed: str) -> str:
    return '"' + hashlib.sha1(seed.encode()).hexdigest() + '"'


def _verdict(records: list) -> pd.Series:
    res = resource_verdicts(xf.frame(records))
    assert len(res) == 1, res[["url", "verdict"]]
    return res.iloc[0]


def _hard_reload_tracker(*, revalidate_new_id: bool = True) -> list:
    """Three clients keep their ids with 304s; client1 hard-reloads mid-way (no If-None-Match),
    gets a fresh id and (optionally) keeps that one with 304s too."""
    out: list = []
    for c in range(3):
        first = _id(f"user-{c}")
        start = xf.T0 + c * 1000
        out += xf.visits(f"client{c}", TRACKER, first, revisits=2, start=start, third_party=True)
        if c == 1:
            second = _id(f"user-{c}-again")
            out.append(xf.exchange(client="client1", url=TRACKER, etag=second,
                                   started=start + 500, third_party=True))
            if revalidate_new_id:
                out += [xf.exchange(client="client1", url=TRACKER, status=304, etag=second,
                                    inm=second, started=start + 600 + i, third_party=True)
                        for i in range(2)]
    return out


def test_tracker_with_a_hard_reload_is_still_identifier() -> None:
    row = _verdict(_hard_reload_tracker())
    assert row["verdict"] == "identifier"
    ev = row["evidence"]
    assert ev["clients"] == 3 and ev["values"] == 4
    assert ev["stable_clients"] == 3 and ev["reidentified_clients"] == 1
    assert ev["max_clients_per_value"] == 1
    assert "re-identified" in ev["rules_out_churn"]


def test_new_id_never_revalidated_proves_nothing() -> None:
    """The reloading client's new value was never kept with a 304: that client is not counted
    as stable, so the three-client accusation does not stand on it."""
    f = resource_features(xf.frame(_hard_reload_tracker(revalidate_new_id=False)))
    row = f.loc[(TRACKER, "etag")]
    assert row["stable_clients"] == 2 and row["reidentified_clients"] == 0
    assert _verdict(_hard_reload_tracker(revalidate_new_id=False))["verdict"] != "identifier"


def test_server_refusing_its_own_value_is_not_reidentification() -> None:
    """client1 presents its id and gets a new one with a 200: the server refused its own
    validator, which is instability, whatever happens next."""
    out: list = []
    for c in range(3):
        first = _id(f"user-{c}")
        out += xf.visits(f"client{c}", TRACKER, first, start=xf.T0 + c * 1000)
    second = _id("user-1-again")
    out.append(xf.exchange(client="client1", url=TRACKER, etag=second, inm=_id("user-1"),
                           started=xf.T0 + 1500))
    out.append(xf.exchange(client="client1", url=TRACKER, status=304, etag=second, inm=second,
                           started=xf.T0 + 1600))
    row = _verdict(out)
    assert row["evidence"]["stable_clients"] == 2
    assert row["verdict"] != "identifier"


def _alternating_backends(*, with_backend_headers: bool) -> list:
    """Two backends with their own ETag for the same bytes; every client lands on web0, keeps
    that value with a 304, hard-reloads onto web1 and keeps that value with a 304 too: each client
    looks exactly like a re-identified tracker victim, but the values are shared."""
    tags = ['"1a2b-5d2-5e1c2f3a4b5c6"', '"1a2c-5d2-5e1c2f3a4b5c6"']
    url = "https://www.example.org/app.js"
    out: list = []
    for c in range(4):
        for b in (0, 1):
            kw = {"backend": {"x-backend": f"web{b}"}} if with_backend_headers else {}
            start = xf.T0 + c * 1000 + b * 300
            out.append(xf.exchange(client=f"client{c}", url=url, etag=tags[b], started=start,
                                   **kw))  # type: ignore[arg-type]
            out.append(xf.exchange(client=f"client{c}", url=url, status=304, etag=tags[b],
                                   inm=tags[b], started=start + 60, **kw))  # type: ignore[arg-type]
    return out


def test_load_balancer_with_alternating_backends_is_still_churn() -> None:
    for headers in (True, False):
        row = _verdict(_alternating_backends(with_backend_headers=headers))
        ev = row["evidence"]
        assert ev["reidentified_clients"] == 4  # the tolerance applies ...
        assert row["verdict"] == "churn", headers  # ... and shared values still rule it out
        assert ev["max_clients_per_value"] == 4


def test_random_per_response_origin_is_still_unstable() -> None:
    assert _verdict(xf.random_per_response(n_clients=3, fetches=6))["verdict"] == "unstable"
    # the same origin seen by clients that never revalidate (every fetch unconditional)
    out = []
    for c in range(3):
        for f in range(5):
            out.append(xf.exchange(client=f"client{c}", url="https://api.example.com/feed",
                                   etag=_id(f"{c}-{f}"), started=xf.T0 + c * 100 + f))
    row = _verdict(out)
    assert row["verdict"] == "unstable"
    assert row["evidence"]["stable_clients"] == 0


def test_echo_tracker_values_are_not_reidentification() -> None:
    """Forged values arrive on conditional requests, never on an unconditional 200."""
    row = _verdict(xf.echo_tracker())
    assert row["verdict"] == "identifier" and row["evidence"]["reflected_304s"] == 2
    assert row["evidence"]["reidentified_clients"] == 0


def test_most_clients_changing_value_is_not_identifier() -> None:
    """Every client got a second value on a refetch and kept it: that is what backends the
    capture cannot see do too, so the values may follow them, not the clients."""
    out: list = []
    for c in range(2):
        for v in range(2):
            tag = _id(f"user-{c}-{v}")
            out.append(xf.exchange(client=f"client{c}", url=TRACKER, etag=tag,
                                   started=xf.T0 + c * 1000 + v * 300))
            out.append(xf.exchange(client=f"client{c}", url=TRACKER, status=304, etag=tag,
                                   inm=tag, started=xf.T0 + c * 1000 + v * 300 + 60))
    row = _verdict(out)
    assert row["evidence"]["reidentified_clients"] == 2
    assert row["verdict"] != "identifier"
