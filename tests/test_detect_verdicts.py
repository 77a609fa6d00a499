"""Resource verdicts on synthetic multi-client captures, including the hard pairs."""

from __future__ import annotations

import hashlib
import json

import exchange_factory as xf
import pandas as pd
import pytest

from analysis.detectors import VERDICTS, resource_features, resource_verdicts, run_all


def verdict_of(records, url: str | None = None) -> pd.Series:
    res = resource_verdicts(xf.frame(records))
    row = res if url is None else res[res["url"] == url]
    assert len(row) == 1, res[["url", "verdict"]]
    return row.iloc[0]


@pytest.mark.parametrize("clients", [2, 10])
def test_tracker_seen_by_several_clients_is_identifier(clients: int) -> None:
    row = verdict_of(xf.tracker(clients))
    assert row["verdict"] == "identifier"
    ev = row["evidence"]
    assert ev["clients"] == clients and ev["values"] == clients
    assert ev["max_clients_per_value"] == 1 and ev["clients_304"] == clients
    assert "load balancing" in ev["rules_out_churn"]
    json.dumps(ev)  # evidence is JSON-serialisable


def test_more_clients_raise_identifier_confidence() -> None:
    assert verdict_of(xf.tracker(10))["confidence"] > verdict_of(xf.tracker(2))["confidence"]


@pytest.mark.parametrize("backends", [2, 5])
def test_load_balanced_origin_is_churn_not_identifier(backends: int) -> None:
    row = verdict_of(xf.load_balanced(backends, n_clients=6))
    assert row["verdict"] == "churn"
    ev = row["evidence"]
    assert ev["values"] == backends and ev["tied_to_backends"] is True
    assert "inode differs" in ev["cause"]
    assert ev["wasted_revalidations"] > 0 and row["wasted_bytes"] == ev["wasted_bytes"] > 0
    assert set(ev["value_backends"]) == {f"{0x1a2b + b:x}-5d2-5e1c2f3a4b5c6" for b in range(backends)}


def test_sticky_backends_with_one_client_each_are_not_identifier() -> None:
    """Two clients pinned to two backends: each value stable within a client and unique across
    clients with 304s, exactly like a tracker, but values follow the backends."""
    records = []
    for c in range(2):
        records += xf.visits(f"c{c}", "https://www.example.org/s.css", f'"{c:x}9f-5d2-5e1c2f3a4b5c6"',
                             backend={"x-backend": f"web{c}"}, start=xf.T0 + c)
    row = verdict_of(records)
    assert row["verdict"] != "identifier"
    assert row["verdict"] == "churn"


def test_opaque_values_tied_to_backends_are_not_identifier() -> None:
    """Unknown format, but each value comes from its own backend and each backend from one value:
    load balancing explains it, so no accusation."""
    records = []
    for c in range(4):
        backend = c % 2
        tag = f'"a8F3k2{backend}Qz9LmN4pX7vB1cD6"'
        records += xf.visits(f"c{c}", "https://www.example.org/o.js", tag,
                             backend={"x-backend": f"web{backend}"}, start=xf.T0 + c)
    assert verdict_of(records)["verdict"] == "churn"


def test_echo_tracker_seen_by_one_client_is_identifier_by_reflection() -> None:
    row = verdict_of(xf.echo_tracker())
    assert row["verdict"] == "identifier"
    assert row["evidence"]["reflected_304s"] == 2
    assert '"' not in "".join(row["evidence"]["reflection"]["examples"])
    assert "never issued" in row["evidence"]["rules_out_churn"]


def test_304_to_value_from_before_the_capture_is_not_reflection() -> None:
    """A browser revalidating a value cached before the capture started is normal."""
    url = "https://www.example.org/old.png"
    records = [xf.exchange(client="c", url=url, status=304, etag='"old1"', inm='"old1"'),
               xf.exchange(client="c", url=url, status=304, etag='"old1"', inm='"old1"')]
    row = verdict_of(records)
    assert row["verdict"] == "undetermined"  # one client, no body: nothing says benign either
    assert row["evidence"]["reflected_304s"] == 0


def test_digest_etag_origin_is_benign() -> None:
    row = verdict_of(xf.digest_origin())
    assert row["verdict"] == "stable"
    assert row["evidence"]["content_derived"] is True
    assert row["explanation"].startswith("content-derived")


def test_random_per_response_etag_is_unstable() -> None:
    row = verdict_of(xf.random_per_response())
    assert row["verdict"] == "unstable"
    assert row["evidence"]["n304"] == 0


def test_single_client_tracker_is_at_most_likely_identifier() -> None:
    records = xf.visits("solo", "https://t.example.net/px.gif", '"uid-Zq81hR2mK0pL7sX4vW9y"',
                        third_party=True)
    row = verdict_of(records)
    assert row["verdict"] == "likely-identifier"
    assert "second" in row["evidence"]["confirm_with"]


def test_single_client_digest_shaped_value_checked_against_its_body() -> None:
    """A 32-hex tracker token is digest-shaped, but the body was there to compare: it is not
    the body's digest, so the shape says nothing benign (class: content-derived only when
    verified)."""
    row = verdict_of(xf.tracker(1))
    assert row["evidence"]["shape"] == "digest"
    assert row["verdict"] == "likely-identifier" and not row["evidence"]["content_derived"]


def test_single_client_digest_shaped_value_without_body_is_undetermined() -> None:
    url = "https://t.example.net/p.gif"
    tag = '"' + "9f86d081884c7d659a2feaa0c55ad015" + '"'
    records = [xf.exchange(client="c", url=url, status=304, etag=tag, inm=tag, third_party=True,
                           started=xf.T0 + i) for i in range(3)]
    row = verdict_of(records)
    assert row["verdict"] == "undetermined"
    assert row["evidence"]["digest"].startswith("digest-shaped, unverified")


def test_single_client_known_server_format_is_verified_or_undetermined() -> None:
    """nginx mtime-size: stable when the size field is the body's length, else undetermined
    (a shape alone is no evidence), never an accusation."""
    url = "https://www.example.org/a.css"
    unchecked = xf.visits("c", url, '"5e1c2f3a-5d2"', third_party=True)
    assert verdict_of(unchecked)["verdict"] == "undetermined"
    checked = xf.visits("c", url, '"5e1c2f3a-5d2"', third_party=True, body="x" * 0x5D2)
    row = verdict_of(checked)
    assert row["verdict"] == "stable" and row["evidence"]["format_verified"]
    assert "size field = body length, verified" in row["evidence"]["benign_because"]


def test_last_modified_used_as_identifier() -> None:
    url = "https://t.example.net/lm.gif"
    records = []
    for c in range(3):
        lm = xf.T0 - 10_000 - 977 * c  # a per-client date
        records.append(xf.exchange(client=f"c{c}", url=url, last_modified=lm, started=xf.T0 + c))
        records.append(xf.exchange(client=f"c{c}", url=url, status=304, last_modified=lm, ims=lm,
                                   started=xf.T0 + 100 + c))
    row = verdict_of(records)
    assert row["verdict"] == "identifier" and row["validator"] == "last-modified"


def test_resource_without_validator_is_none() -> None:
    row = verdict_of([xf.exchange(client="c", url="https://www.example.org/n")])
    assert row["verdict"] == "none"


def test_ignore_params_groups_cache_busters() -> None:
    records = []
    for c in range(3):
        tag = '"' + "%040x" % (0xABCDEF123 * (c + 7)) + '"'
        records += xf.visits(f"c{c}", f"https://t.example.net/p.gif?cb={c}&u=1", tag, start=xf.T0 + c)
    split = resource_verdicts(xf.frame(records))
    assert len(split) == 3 and "identifier" not in set(split["verdict"])
    merged = resource_verdicts(xf.frame(records), ignore_params=["cb"])
    assert list(merged["url"]) == ["https://t.example.net/p.gif?u=1"]
    assert merged.iloc[0]["verdict"] == "identifier"


def test_mixed_capture_every_resource_one_verdict() -> None:
    records = (xf.tracker(3) + xf.load_balanced(2, 4) + xf.echo_tracker() + xf.digest_origin()
               + xf.random_per_response())
    a = run_all(xf.frame(records))
    got = dict(zip(a.resources["url"], a.resources["verdict"], strict=True))
    assert got == {
        "https://t.example.net/pixel.gif": "identifier",
        "https://www.example.org/app.js": "churn",
        "https://e.example.com/ec.png": "identifier",
        "https://cdn.example.com/lib.css": "stable",
        "https://api.example.com/feed": "unstable",
    }
    assert set(a.resources["verdict"]) <= set(VERDICTS)
    assert a.resources["url"].is_unique
    # worst first
    ranks = a.resources["verdict"].map({v: i for i, v in enumerate(VERDICTS)})
    assert ranks.is_monotonic_increasing
    hosts = a.hosts.set_index("host")
    assert hosts.loc["www.example.org", "churn"] == 1
    assert hosts.loc["www.example.org", "wasted_bytes"] > 0
    assert hosts.loc["t.example.net", "revalidation_304_rate"] == 1.0
    assert a.summary["verdicts"]["identifier"] == 2


def test_features_are_per_resource_and_validator() -> None:
    f = resource_features(xf.frame(xf.tracker(2)))
    assert list(f.index.names) == ["resource", "validator"]
    assert f.loc[("https://t.example.net/pixel.gif", "etag"), "clients"] == 2


def test_cookie_equal_to_etag_is_a_context_signal() -> None:
    recs = xf.visits("c", "https://t.example.net/k.gif", '"Zq81hR2mK0pL7sX4vW9yB3nC"')
    tag_hash = recs[0].etag_hash
    recs = [xf.exchange(**{**_fields(r), "cookie_hashes": json.dumps([tag_hash])}) for r in recs]
    row = verdict_of(recs)
    assert row["evidence"]["cookie_match"] is True
    assert row["verdict"] == "likely-identifier"


def _fields(r) -> dict:
    import msgspec

    d = msgspec.structs.asdict(r)
    return {"client": d["client"], "url": d["url"], "status": d["status"], "etag": d["etag"],
            "inm": d["req_if_none_match"], "started": d["started"]}


def test_one_value_in_two_content_codings_is_not_two_clients_ids() -> None:
    """Apache's mod_deflate appends -gzip, others -br: a client per coding keeps its own value
    and gets 304s, which is the identifier pattern on its face, but the stems are one value."""
    stem = hashlib.sha1(b"one representation").hexdigest()
    records = xf.visits("client0", "https://cdn.example.org/a.js", f'"{stem}-gzip"', third_party=True)
    records += xf.visits("client1", "https://cdn.example.org/a.js", f'"{stem}-br"', start=xf.T0 + 5,
                         third_party=True)
    res = run_all(xf.frame(records)).resources
    assert res.set_index("url").loc["https://cdn.example.org/a.js", "verdict"] != "identifier"
    # control: two different stems with the same coding suffix are still two ids
    other = hashlib.sha1(b"another visitor").hexdigest()
    control = xf.visits("client0", "https://t.example.org/p.gif", f'"{stem}-gzip"', third_party=True)
    control += xf.visits("client1", "https://t.example.org/p.gif", f'"{other}-gzip"',
                         start=xf.T0 + 5, third_party=True)
    res = run_all(xf.frame(control)).resources
    assert res.set_index("url").loc["https://t.example.org/p.gif", "verdict"] == "identifier"
