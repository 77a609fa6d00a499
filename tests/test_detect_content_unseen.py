"""Several clients, one value each, 304s only and no body ever seen (evercookie's respawn from
localStorage): ``likely-identifier``, never ``stable`` (benign) nor ``identifier`` (unproven);
and the look-alikes load balancing, deploys and plain caching produce are left alone."""

from __future__ import annotations

import hashlib
import json

import exchange_factory as xf
import pandas as pd
import pytest
from support import SAMPLE_CAPTURES

from analysis.detectors import run_all
from analysis.report_evidence import evidence_lines

URL = "https://e.example.com/e.gif?respawn=1"


def echo_304s(tags: list[str], *, url: str = URL, visits: int = 3,
              backends: list[dict[str, str] | None] | None = None, **kw: object) -> list:
    """Client i presents tags[i] on every visit and the server answers 304 echoing it."""
    out = []
    for c, tag in enumerate(tags):
        backend = backends[c] if backends else None
        for v in range(visits):
            out.append(xf.exchange(client=f"client{c}", url=url, status=304, etag=tag, inm=tag,
                                   started=xf.T0 + 100 * c + v, backend=backend, **kw))
    return out


def random_tag(i: int) -> str:
    """24 hex characters: 96 bits, hash-like, neither a digest length nor a server format."""
    return '"' + hashlib.sha256(f"visitor-{i}".encode()).hexdigest()[:24] + '"'


def row_of(records: list, url: str = URL) -> pd.Series:
    res = run_all(xf.frame(records)).resources
    found = res[res["url"] == url]
    assert len(found) == 1, res[["url", "verdict"]]
    return found.iloc[0]


@pytest.mark.parametrize("clients", [2, 6])
def test_per_client_values_answered_304_without_content_are_likely_identifier(clients: int) -> None:
    row = row_of(echo_304s([random_tag(i) for i in range(clients)], third_party=True))
    assert row["verdict"] == "likely-identifier"
    ev = row["evidence"]
    assert ev["content_unseen"] is True
    assert ev["clients"] == ev["values"] == ev["clients_304"] == clients
    assert ev["max_clients_per_value"] == 1 and ev["fetches_2xx"] == 0
    assert "probe" in ev["confirm_with"] and "same body under two values" in ev["confirm_with"]
    assert "no 2xx response" in ev["not_identifier_because"]
    assert row["explanation"].startswith(f"likely identifier: {clients} clients")
    json.dumps(ev, allow_nan=False)  # no body seen: body_size is null, not pandas' NA
    # below any identifier's confidence (>= 0.6 + ...): it is a suspicion, not a proof
    assert 0.5 <= row["confidence"] < 0.7


def test_more_clients_raise_the_confidence() -> None:
    two = row_of(echo_304s([random_tag(i) for i in range(2)], third_party=True))
    six = row_of(echo_304s([random_tag(i) for i in range(6)], third_party=True))
    assert six["confidence"] > two["confidence"]


def test_terminal_lines_say_why_not_identifier_and_how_to_confirm() -> None:
    row = row_of(echo_304s([random_tag(i) for i in range(3)], third_party=True))
    text = "\n".join(evidence_lines(row["verdict"], row["evidence"]))
    assert "3 clients each kept their own high-entropy ETag" in text
    assert "no 2xx body seen" in text
    assert "confirm: a 200 response with the same body under two values" in text
    assert "no second client seen" not in text


def test_a_body_seen_under_the_values_makes_it_an_identifier() -> None:
    """With a 200 per client carrying identical bytes, content is known: the full rule applies."""
    records = []
    for c in range(3):
        records += xf.visits(f"client{c}", URL, random_tag(c), start=xf.T0 + 100 * c,
                             third_party=True)
    assert row_of(records)["verdict"] == "identifier"


def test_one_value_shared_by_every_client_stays_stable() -> None:
    """nginx, values cached before the capture: every client revalidates the same value."""
    tag = '"6553f100-72"'
    row = row_of(echo_304s([tag] * 4, url="https://static.example.org/app.css", third_party=True),
                 url="https://static.example.org/app.css")
    assert row["verdict"] == "stable"


def test_known_format_values_differing_per_client_are_not_accused() -> None:
    """nginx mtime-size values that differ per client (a deploy between their visits): not an
    accusation, and not ``stable`` either, since every client holds its own value."""
    tags = [f'"{0x6553F100 + 3600 * i:x}-72"' for i in range(4)]
    url = "https://static.example.org/app.css"
    row = row_of(echo_304s(tags, url=url, third_party=True), url=url)
    assert row["verdict"] == "undetermined" and row["evidence"]["shape"] == "nginx-mtime-size"


def test_low_entropy_values_differing_per_client_are_not_accused() -> None:
    url = "https://static.example.org/v.js"
    row = row_of(echo_304s([f'"v{i}"' for i in range(5)], url=url, third_party=True), url=url)
    assert row["verdict"] == "undetermined"


def test_content_coding_variants_of_one_value_are_not_accused() -> None:
    """One body, one ETag per content coding (Apache's -gzip / -br): two clients with different
    Accept-Encoding each keep their variant. Not two identifiers."""
    stem = "Zq81hR2mK0pL7sX4vW9y"
    url = "https://static.example.org/lib.js"
    row = row_of(echo_304s([f'"{stem}-gzip"', f'"{stem}-br"'], url=url, third_party=True), url=url)
    assert row["verdict"] == "undetermined"
    assert row["shape"] == "other" and row["coding_stems"] == 1  # only the suffix differs
    # the same suffix on two per-client stems is no variant: still suspect
    other = "Mw72jD4nB9xQ1cV8tL5k"
    row = row_of(echo_304s([f'"{stem}-gzip"', f'"{other}-gzip"'], url=url, third_party=True),
                 url=url)
    assert row["verdict"] == "likely-identifier" and row["coding_stems"] == 2


def test_304_values_following_sticky_backends_are_not_accused() -> None:
    """Two clients pinned to two backends, each backend with its own opaque value: load
    balancing explains it even when only 304s were captured."""
    url = "https://www.example.org/o.js"
    tags = ['"a8F3k2Qz9LmN4pX7vB1cD6e0"', '"b7E2j1Py8KlM3oW6uA0bC5d9"']
    backends = [{"x-backend": "web0"}, {"x-backend": "web1"}]
    row = row_of(echo_304s(tags, url=url, backends=backends, third_party=True), url=url)
    assert row["verdict"] == "undetermined"
    assert row["answers_tied_to_backends"]


def test_churning_resource_is_still_churn() -> None:
    records = xf.load_balanced(2, n_clients=4)
    assert row_of(records, url="https://www.example.org/app.js")["verdict"] == "churn"


def test_without_any_context_signal_it_is_not_accused() -> None:
    """First-party, no forced revalidation, size unknown, no cookie: precision first (and no
    benign verdict: every client holds its own value)."""
    row = row_of(echo_304s([random_tag(i) for i in range(3)], third_party=False))
    assert row["verdict"] == "undetermined"
    assert "second, fresh profile" in row["evidence"]["settle_with"]
    assert row["evidence"]["third_party"] is False and row["evidence"]["small_body"] is False


def test_a_client_holding_two_values_is_not_one_value_per_client() -> None:
    tags = [random_tag(i) for i in range(3)]
    records = echo_304s(tags, third_party=True)
    records.append(xf.exchange(client="client0", url=URL, status=304, etag=random_tag(9),
                               inm=random_tag(9), started=xf.T0 + 50, third_party=True))
    assert row_of(records)["verdict"] != "likely-identifier"


def test_sample_captures_respawn_is_likely_identifier(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The lab's capture (sample_captures/README.md): 6 clients, 6 values, 304s only."""
    from analysis.ingest import ingest_paths
    from analysis.store import Store, load_exchanges

    assert any(SAMPLE_CAPTURES.rglob("*.har")), "sample_captures/ holds no HAR files"
    store = Store(tmp_path / "samples.sqlite")
    try:
        ingest_paths([SAMPLE_CAPTURES], store)
    finally:
        store.close()
    res = run_all(load_exchanges(tmp_path / "samples.sqlite")).resources
    # query values are stored as keyed hashes: the resource is named without its value here
    got = {u.split("/", 3)[2].split(":")[0] + "/" + u.split("/", 3)[3].split("=hmac:")[0]: v
           for u, v in zip(res["url"], res["verdict"], strict=True)}
    assert got["echo.evercookie.test/e.gif?respawn"] == "likely-identifier"
    assert got["echo.evercookie.test/e.gif"] == "identifier"
    assert got["pixel.tracker.test/pixel.gif"] == "identifier"
    assert got["static.nginx-cdn.test/app.css"] == "stable"
    assert got["digest.objstore.test/widget.js"] == "stable"
    respawn = res[res["url"].str.contains("e.gif?respawn=hmac:", regex=False)].iloc[0]
    assert respawn["evidence"]["clients"] == respawn["evidence"]["values"] == 6
    assert respawn["evidence"]["content_unseen"] is True
