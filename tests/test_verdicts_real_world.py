"""Verdicts on captures shaped like the real world: one test group per class of behaviour that
fooled the lab-trained rules (issue 13). Every fixture is a HAR written to disk the way a browser
or tool exports it and analysed with `etagwatch analyze`, so the readers' ingest-side evidence
(digests compared with bodies, per-request ids, cache hits) is part of what is tested.

Classes 9 (clients never merge) and 11 (evaluate with exists=False) live with their code:
tests/test_ingest.py and tests/test_conditional.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from har_builder import Har

from analysis.cli import main

T0 = 1_700_000_000.0  # 2023-11-14
DAY = 86400.0
GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
ACCUSING = ("identifier", "likely-identifier")


def analyze(tmp_path: Path, hars: dict[str, Har]) -> tuple[dict[str, dict[str, Any]], dict]:
    """Write each capture under tmp_path/caps, run `etagwatch analyze` on the folder; return
    (resources by URL, the whole JSON report)."""
    folder = tmp_path / "caps"
    for name, har in hars.items():
        har.write(folder / name)
    out = tmp_path / "report.json"
    assert main(["analyze", str(folder), "--db", str(tmp_path / "s.sqlite"),
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    return {r["url"]: r for r in doc["resources"]}, doc


def revisited(har: Har, url: str, tag: str | None, *, at: float, revisits: int = 3,
              every: float = 600.0, **kw: Any) -> None:
    """A first fetch issuing ``tag`` and revisits answered 304 for it (what a browser's
    revalidation of a cached pixel or script looks like)."""
    har.get(url, at=at, etag=tag, **kw)
    kw.pop("body", None)
    kw.pop("size", None)
    lm = kw.get("last_modified")
    for i in range(1, revisits + 1):
        har.get(url, at=at + every * i, status=304, etag=tag, inm=tag,
                ims=lm, **kw)


def single(tmp_path: Path, url: str, tag: str, **kw: Any) -> dict[str, Any]:
    har = Har("chrome")
    revisited(har, url, tag, at=T0, **kw)
    res, _ = analyze(tmp_path, {"profile.har": har})
    return res[url]


def apache_mtime(ts: float, digits: int | None = None) -> str:
    """Apache's mtime field: microseconds in hex (a build printing only the low 32 bits when
    ``digits`` is 8 or fewer)."""
    us = int(ts) * 1_000_000
    return f"{us & 0xFFFFFFFF:x}" if digits and digits <= 8 else f"{us:x}"


# --- class 1: server formats, verified where the response allows -----------------------------
LM = T0 - 40 * DAY
BODY = "/* app */ " + "x" * 456  # 466 bytes = 0x1d2


@pytest.mark.parametrize("tag, shape", [
    # Apache 2.4 with short fields (inode and low 32 bits of the mtime), the real-world width
    (f'"2c4a91-1d2-{apache_mtime(LM, 8)}"', "apache-inode-size-mtime"),
    # Apache with mod_deflate's suffix: size and mtime are the file's, the body is decoded
    (f'"1d2-{apache_mtime(LM)}-gzip"', "apache-size-mtime"),
    (f'"{int(LM):x}-1d2"', "nginx-mtime-size"),
    (f'"{int((LM + 11644473600) * 10_000_000):x}:0"', "iis"),
])
def test_server_formats_are_verified_against_the_response(tmp_path: Path, tag: str,
                                                          shape: str) -> None:
    """A third-party, revalidated value is no random id when its fields are the body's length
    and the Last-Modified date: verified, the evidence says which fields."""
    row = single(tmp_path, "https://static.example.org/app.js", tag, body=BODY,
                 last_modified=LM, mime="text/javascript",
                 req_headers=[("Referer", "https://news.example.com/")])
    assert row["verdict"] == "stable", row["explanation"]
    ev = row["evidence"]
    assert ev["shape"] == shape and ev["format_verified"] is True
    assert ev["benign_because"] == (f"{shape}, size field = body length, mtime field = "
                                    "Last-Modified, verified") or shape == "iis"
    assert "verified" in ev["benign_because"]


def test_a_format_whose_fields_disagree_is_not_verified(tmp_path: Path) -> None:
    """The Apache shape with a size field that is not the body's length: the shape alone says
    nothing, so one client's value stays undetermined (not stable, not accused)."""
    tag = f'"2c4a91-1d2-{apache_mtime(LM, 8)}"'
    row = single(tmp_path, "https://static.example.org/app.js", tag, body=BODY + "extra",
                 last_modified=LM, mime="text/javascript")
    assert row["verdict"] == "undetermined"
    assert row["evidence"]["format_verified"] is False and row["formats_contradicted"] >= 1


@pytest.mark.parametrize("make_tag, kind", [
    (lambda b: f'W/"{hashlib.sha1(b).hexdigest()}-gzip"', "sha1:hex"),
    (lambda b: '"' + base64.b64encode(hashlib.md5(b).digest()).decode() + '"', "md5:base64"),
    (lambda b: f'"{hashlib.sha256(b).hexdigest()[:16]}"', "sha256:hex-prefix"),
    (lambda b: f'"{hashlib.md5(b).hexdigest()};br"', "md5:hex"),
])
def test_digests_with_coding_suffixes_are_verified_against_the_body(tmp_path: Path, make_tag,
                                                                   kind: str) -> None:
    body = "console.log('lib v3');\n" * 20
    row = single(tmp_path, "https://cdn.example.net/lib.js", make_tag(body.encode()), body=body,
                 mime="text/javascript", req_headers=[("Referer", "https://shop.example.com/")])
    assert row["verdict"] == "stable" and row["evidence"]["content_derived"] is True
    assert row["evidence"]["digest_kind"] == kind
    assert f"body's {kind} digest (verified)" in row["explanation"]


# --- class 2: entropy from variation, not from length ----------------------------------------
def test_build_tokens_sharing_a_long_prefix_carry_little_information(tmp_path: Path) -> None:
    """A host's assets tagged with one build id plus a short counter: 40 characters each, but
    they differ from each other in two, which is no room for a per-client id."""
    har = Har("chrome")
    prefix = "b1d7e4c2a9f03658e7d1c4b2a9f0e3d6"
    urls = [f"https://assets.example.io/px{i}.gif" for i in range(6)]
    for i, url in enumerate(urls):
        revisited(har, url, f'"{prefix}-{i:02x}"', at=T0 + i, size=43,
                  req_headers=[("Referer", "https://news.example.com/")])
    res, _ = analyze(tmp_path, {"profile.har": har})
    for url in urls:
        row = res[url]
        assert row["verdict"] not in ACCUSING, row["explanation"]
        info = row["evidence"]["information"]
        assert info["bits"] < 20 <= info["length_bits"]
        assert info["basis"] == "variation among 6 values of the host"


def test_random_tokens_on_one_host_keep_their_information(tmp_path: Path) -> None:
    """The same test does not excuse a tracker: its values share a prefix but differ in 32
    random hex digits, so the estimate stays high."""
    har = Har("chrome")
    urls = [f"https://t.example.net/p{i}.gif" for i in range(3)]
    for i, url in enumerate(urls):
        token = hashlib.sha256(f"visitor-{i}".encode()).hexdigest()[:32]
        revisited(har, url, f'"uid-{token}"', at=T0 + i, body=GIF,
                  req_headers=[("Referer", "https://news.example.com/")])
    res, _ = analyze(tmp_path, {"profile.har": har})
    for url in urls:
        assert res[url]["verdict"] == "likely-identifier"
        assert res[url]["evidence"]["information"]["bits"] >= 64


# --- class 3: content-derived only when verified ---------------------------------------------
TRACKER = "https://px.tracker.example/t.gif"


def token(client: int) -> str:
    return '"' + hashlib.md5(f"per-client-{client}".encode()).hexdigest() + '"'  # 32 hex


def test_single_profile_tracker_pixel_is_not_content_derived(tmp_path: Path) -> None:
    """A random 128-bit token per client, 304 on every revisit, one Chromium profile: 32 hex
    digits look like an MD5, but the body was there and it is not its digest."""
    row = single(tmp_path, TRACKER, token(0), body=GIF,
                 req_headers=[("Referer", "https://news.example.com/")])
    assert row["verdict"] == "likely-identifier", row["explanation"]
    assert row["evidence"]["content_derived"] is False and row["digest_refuted"] >= 1
    assert "second" in row["evidence"]["confirm_with"]


def test_digest_shaped_value_without_a_body_is_unverified(tmp_path: Path) -> None:
    """An export without bodies: the same token cannot be compared with anything."""
    row = single(tmp_path, TRACKER, token(0), size=43,
                 req_headers=[("Referer", "https://news.example.com/")])
    assert row["verdict"] == "undetermined"
    assert row["evidence"]["digest"] == "digest-shaped, unverified: no body was compared with it"
    assert row["evidence"]["content_derived"] is False


# --- class 4: one client is not evidence of benignity ----------------------------------------
def test_one_client_opaque_value_is_undetermined_and_says_what_settles_it(tmp_path: Path) -> None:
    row = single(tmp_path, "https://www.example.org/data.json", '"Zq81hR2mK0pL7sX4vW9y"',
                 body='{"a": 1}' * 900, mime="application/json")
    assert row["verdict"] == "undetermined"
    assert "second, fresh profile" in row["evidence"]["settle_with"]
    assert "etagwatch probe URL" in row["evidence"]["settle_with"]


def test_two_profiles_sharing_the_value_make_it_stable(tmp_path: Path) -> None:
    hars = {}
    for c in range(2):
        hars[f"profile-{c + 1}.har"] = har = Har("chrome")
        revisited(har, "https://www.example.org/data.json", '"Zq81hR2mK0pL7sX4vW9y"',
                  at=T0 + 3600 * c, body='{"a": 1}' * 900, mime="application/json")
    res, _ = analyze(tmp_path, hars)
    row = res["https://www.example.org/data.json"]
    assert row["verdict"] == "stable"
    assert row["evidence"]["benign_because"] == "2 clients presented the same ETag value"


# --- class 5: per-client content --------------------------------------------------------------
KM = "https://i.kiss.example/km.js"


def per_client_scripts(cookies: bool) -> dict[str, Har]:
    """KISSmetrics' respawn: each client's cached script embeds its id, with an ETag of its own,
    kept with 304s."""
    hars = {}
    for c in range(3):
        hars[f"profile-{c + 1}.har"] = har = Har("chrome")
        uid = hashlib.sha256(f"km-{c}".encode()).hexdigest()[:24]
        headers = [("Referer", "https://shop.example.com/")]
        if cookies:
            headers.append(("Cookie", f"session={uid}"))
        revisited(har, KM, f'"{hashlib.sha1(uid.encode()).hexdigest()[:20]}"', at=T0 + 900 * c,
                  body=f"var KM_ID='{uid}';", mime="text/javascript", req_headers=headers)
    return hars


def test_per_client_body_without_credentials_is_identifier(tmp_path: Path) -> None:
    res, _ = analyze(tmp_path, per_client_scripts(cookies=False))
    row = res[KM]
    assert row["verdict"] == "identifier" and row["evidence"]["kind"] == "per-client-content"
    assert "the body carries the id" in row["explanation"]


def test_per_client_body_with_cookies_is_personalised_not_accused(tmp_path: Path) -> None:
    res, _ = analyze(tmp_path, per_client_scripts(cookies=True))
    row = res[KM]
    assert row["verdict"] == "undetermined" and row["evidence"]["kind"] == "personalised"
    assert "personalised for a signed-in client" in row["explanation"]


# --- class 6: churn needs concurrency ---------------------------------------------------------
APP = "https://www.example.org/app.js"


def test_one_change_between_captures_months_apart_is_changed(tmp_path: Path) -> None:
    """Two captures taken 200 days apart; Apache values whose mtime follows Last-Modified:
    a redeploy between captures, not unsynchronised backends, and no bytes wasted."""
    hars = {}
    for c, when in enumerate((T0, T0 + 200 * DAY)):
        lm = when - 3 * DAY
        hars[f"2023/capture-{c}.har"] = har = Har("chrome")
        revisited(har, APP, f'"2c4a91-1d2-{apache_mtime(lm)}"', at=when, size=466,
                  last_modified=lm, mime="text/javascript")
        har.get(APP, at=when + 5000, etag=f'"2c4a91-1d2-{apache_mtime(lm)}"', size=466,
                last_modified=lm, mime="text/javascript")  # a reload: 200 with the same bytes
    res, _ = analyze(tmp_path, hars)
    row = res[APP]
    assert row["verdict"] == "changed", row["explanation"]
    assert row["wasted_revalidations"] == 0 and row["wasted_bytes"] == 0
    assert row["evidence"]["dates"]["first_seen"].startswith("2023-11-14")
    assert row["evidence"]["dates"]["last_seen"].startswith("2024-06-01")


def test_a_value_that_changes_once_and_stays_is_changed(tmp_path: Path) -> None:
    """A...A then B...B for one client, the same bytes (a redeploy touched the file): not churn,
    whose values live side by side."""
    har = Har("chrome")
    revisited(har, APP, '"Aq81hR2mK0pL7sX4vW9y"', at=T0, body=BODY, mime="text/javascript")
    revisited(har, APP, '"Bw72jD4nB9xQ1cV8tL5k"', at=T0 + 7200, body=BODY,
              mime="text/javascript")
    res, _ = analyze(tmp_path, {"profile.har": har})
    assert res[APP]["verdict"] == "changed", res[APP]["explanation"]
    assert res[APP]["value_runs"] == 2 and not res[APP]["concurrent"]


def test_values_that_follow_the_body_are_content_derived(tmp_path: Path) -> None:
    """The same sequence with a new body under the new value: the values follow the content."""
    har = Har("chrome")
    revisited(har, APP, '"Aq81hR2mK0pL7sX4vW9y"', at=T0, body="v1;" * 200, mime="text/javascript")
    revisited(har, APP, '"Bw72jD4nB9xQ1cV8tL5k"', at=T0 + 7200, body="v2;" * 200,
              mime="text/javascript")
    res, _ = analyze(tmp_path, {"profile.har": har})
    assert res[APP]["verdict"] == "stable" and res[APP]["evidence"]["kind"] == "content-derived"


def alternating(bodies: bool) -> dict[str, Har]:
    """Two backends behind a balancer, each with its own tag for the same bytes, answering two
    profiles in turn within one hour."""
    tags = ['"1a2b-1d2-5e1c2f3a4b5c6"', '"1a2c-1d2-5e1c2f3a4b5c6"']
    hars = {}
    for c in range(2):
        hars[f"profile-{c + 1}.har"] = har = Har("chrome")
        held = None
        for f in range(6):
            b = (f + c) % 2
            kw: dict[str, Any] = {"body": BODY} if bodies else {"size": 466}
            har.get(APP, at=T0 + 60 * f + c, etag=tags[b], inm=held, mime="text/javascript",
                    headers=[("X-Backend", f"web{b}")], **kw)
            held = tags[b]
    return hars


def test_values_alternating_within_one_capture_are_churn(tmp_path: Path) -> None:
    res, _ = analyze(tmp_path, alternating(bodies=True))
    row = res[APP]
    assert row["verdict"] == "churn" and row["wasted_revalidations"] >= 4
    assert "identical content" in row["explanation"]


# --- class 7: "identical content" names its basis ---------------------------------------------
def test_size_and_type_alone_is_a_weak_basis(tmp_path: Path) -> None:
    strong, _ = analyze(tmp_path / "a", alternating(bodies=True))
    weak, _ = analyze(tmp_path / "b", alternating(bodies=False))
    assert weak[APP]["verdict"] == "churn"
    assert weak[APP]["evidence"]["content_basis"] == "size and type"
    assert strong[APP]["evidence"]["content_basis"] == "body hash"
    assert weak[APP]["confidence"] < strong[APP]["confidence"]
    assert "identical" not in weak[APP]["explanation"]
    assert "same size and type" in weak[APP]["explanation"]


def test_a_body_hash_is_never_compared_with_a_size(tmp_path: Path) -> None:
    """One export kept the body, a later one only its size: no "one strong ETag for different
    content", and the resource's content basis falls back to size for both."""
    har = Har("chrome")
    har.get(APP, at=T0, etag='"Aq81hR2mK0pL7sX4vW9y"', body=BODY, mime="text/javascript")
    har.get(APP, at=T0 + 60, etag='"Aq81hR2mK0pL7sX4vW9y"', size=466, mime="text/javascript")
    res, doc = analyze(tmp_path, {"profile.har": har})
    assert not [f for f in doc["findings"] if f["rule"] == "strong-etag-reused"]
    assert res[APP]["evidence"]["content_basis"] == "size and type"
    assert res[APP]["evidence"]["content_values"] == 1


# --- class 8: capture artefacts are not server behaviour ---------------------------------------
@pytest.mark.parametrize("id_headers", [
    [("X-Request-Id", "7d3c0a4e-5b9f-4c1d-8e2a-3f6b7c8d9e0f")],
    [("CF-Ray", "7f2a9c3b4d5e6f70-FRA")],
    [("X-Amz-Cf-Id", "Qm9ndXMtY2xvdWRmcm9udC1pZA==")],
    [("X-Served-By", "cache-fra-etou8220044-FRA"), ("X-Timer", "S1700000000.123,VS0,VE1")],
])
def test_cache_hits_listed_as_304s_are_not_unconditional_304s(tmp_path: Path,
                                                              id_headers: list) -> None:
    """IE11 / old Edge list memory-cache hits as 304 entries that repeat the original response's
    per-request id and Date, without any conditional header."""
    har = Har("ie")
    url = "https://www.example.org/logo.png"
    har.get(url, at=T0, etag='"Aq81hR2mK0pL7sX4vW9y"', body=GIF, headers=id_headers)
    for i in (1, 2):
        har.get(url, at=T0 + 30 * i, status=304, date=T0, etag='"Aq81hR2mK0pL7sX4vW9y"',
                headers=id_headers)
    res, doc = analyze(tmp_path, {"ie11.har": har})
    assert not [f for f in doc["findings"] if f["rule"] == "unconditional-304"]
    assert res[url]["n304"] == 0


def test_a_real_unconditional_304_is_still_reported(tmp_path: Path) -> None:
    """The same listing with a fresh request id and Date each time is the server's answer."""
    har = Har("ie")
    url = "https://www.example.org/logo.png"
    har.get(url, at=T0, etag='"Aq81hR2mK0pL7sX4vW9y"', body=GIF,
            headers=[("X-Request-Id", "id-0")])
    har.get(url, at=T0 + 30, status=304, etag='"Aq81hR2mK0pL7sX4vW9y"',
            headers=[("X-Request-Id", "id-1")])
    _, doc = analyze(tmp_path, {"ie11.har": har})
    assert [f for f in doc["findings"] if f["rule"] == "unconditional-304"]


def test_entries_whose_timings_show_no_network_are_cache_hits(tmp_path: Path) -> None:
    har = Har("chrome")
    url = "https://www.example.org/logo.png"
    har.get(url, at=T0, etag='"Aq81hR2mK0pL7sX4vW9y"', body=GIF)
    for i in (1, 2):
        har.get(url, at=T0 + 30 * i, status=304, etag='"Aq81hR2mK0pL7sX4vW9y"', time=0,
                timings={"blocked": 0, "dns": -1, "connect": -1, "send": 0, "wait": 0,
                         "receive": 0, "ssl": -1})
    res, doc = analyze(tmp_path, {"chrome.har": har})
    assert not [f for f in doc["findings"] if f["rule"] == "unconditional-304"]
    assert res[url]["n304"] == 0


# --- class 10: tracking scope under partitioned caches -----------------------------------------
def tracker_on_sites(partitioned: bool, pages: bool = True) -> dict[str, Har]:
    """Two profiles, each visiting two top-level sites that embed the same third-party pixel."""
    hars = {}
    for c in range(2):
        hars[f"profile-{c + 1}.har"] = har = Har("chrome")
        for s, site in enumerate(("https://news.example.com/", "https://shop.example.org/")):
            page = har.page(site, T0 + 5000 * c + 2000 * s) if pages else None
            tag = token(10 * c + (s if partitioned else 0))
            revisited(har, TRACKER, tag, at=T0 + 5000 * c + 2000 * s + 1, body=GIF, page=page,
                      revisits=2, every=60)
    return hars


@pytest.mark.parametrize("partitioned, scope", [(False, "cross-site"), (True, "per-site")])
def test_identifier_scope_follows_the_cache_partitioning(tmp_path: Path, partitioned: bool,
                                                         scope: str) -> None:
    res, _ = analyze(tmp_path, tracker_on_sites(partitioned))
    row = res[TRACKER]
    assert row["verdict"] == "identifier", row["explanation"]
    assert row["scope"] == scope and row["evidence"]["scope"] == scope
    assert row["sites"] == 2
    if partitioned:
        assert row["partitioned_clients"] == 2
        assert "partitioned cache" in row["evidence"]["scope_basis"]
    else:
        assert row["cross_site_values"] == 2


def test_scope_is_unknown_without_page_context(tmp_path: Path) -> None:
    res, _ = analyze(tmp_path, tracker_on_sites(False, pages=False))
    row = res[TRACKER]
    assert row["verdict"] == "identifier" and row["scope"] == "unknown" and row["sites"] == 0


# --- the shipped sample captures, one file at a time, and the docs ------------------------------
@pytest.mark.parametrize("name", ["har/profile-1.har", "flows/live-1.flows"])
def test_one_sample_capture_alone_never_calls_the_tracker_stable(tmp_path: Path, name: str) -> None:
    """One profile cannot tell the lab tracker's per-client token from a stable value, but its
    high-entropy third-party pixel, kept with 304s and no digest of its body, stays suspect."""
    from support import SAMPLE_CAPTURES

    out = tmp_path / "r.json"
    assert main(["analyze", str(SAMPLE_CAPTURES / name), "--db", str(tmp_path / "s.sqlite"),
                 "--json", str(out)]) == 0
    by_host = {r["host"]: r for r in json.loads(out.read_text())["resources"] if r["host"]}
    tracker = by_host["pixel.tracker.test"]
    assert tracker["verdict"] == "likely-identifier" and tracker["scope"] == "per-site"
    assert by_host["static.nginx-cdn.test"]["evidence"]["format_verified"] is True
    assert by_host["digest.objstore.test"]["evidence"]["digest_kind"] == "sha256:hex"


def test_docs_state_every_verdict_and_help_links_them(capsys) -> None:
    from support import ROOT

    from analysis.detectors.verdicts import VERDICTS

    text = (ROOT / "docs" / "verdicts.md").read_text()
    for verdict in VERDICTS:
        assert f"\n## {verdict}\n" in text
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    assert "docs/verdicts.md" in capsys.readouterr().out
    assert "docs/verdicts.md" in (ROOT / "README.md").read_text()
