"""Headless Chromium browses the lab over HTTPS and HTTP/2, directly (trusting the lab CA) and
through mitmdump (trusting mitmproxy's CA, mitmdump trusting the lab CA): revalidation is seen
over HTTPS, from the HTTP disk cache itself, and the verdicts equal those over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import PROFILES, VISITS, check_lab_verdicts, lab_verdicts, need_program

import analysis.ingest as ingest_module
import analysis.store as store_module
from analysis.lab.browse import CHROMIUM_FLAGS, browse, chromium_path
from analysis.lab.capture import browse_through_mitmdump
from analysis.lab.trust import chromium_trust_args

pytestmark = pytest.mark.e2e

#: Sites whose validators are stable per client: every revisit is a 304.
REVALIDATED = ("nginx", "tracker", "digest")


def _lab_rows(df, lab):  # type: ignore[no-untyped-def]
    return df[df["host"].isin(lab.hostnames)]


def test_https_through_mitmdump_is_http2_and_revalidated_by_every_profile(lab, live_capture_https):
    df = _lab_rows(store_module.load_exchanges(live_capture_https["db"]), lab)
    assert set(df["client"]) == set(live_capture_https["clients"])
    assert set(df["scheme"]) == {"https"} and set(df["http_version"]) == {"HTTP/2"}
    for key in REVALIDATED:
        url = lab.sites[key].https_url
        for client, rows in df[df["url"] == url].groupby("client"):
            assert list(rows["status"]) == [200] + [304] * (VISITS - 1), (key, client)
            etags = rows["etag"].tolist()
            assert rows["req_if_none_match"].tolist()[1:] == etags[:-1], (key, client)


def test_verdicts_over_https_equal_the_verdicts_over_http(lab, live_capture, live_capture_https):
    https = lab_verdicts(
        _lab_rows(store_module.load_exchanges(live_capture_https["db"]), lab), lab, "https"
    )
    http = lab_verdicts(_lab_rows(store_module.load_exchanges(live_capture["db"]), lab), lab)
    check_lab_verdicts(https, lab)
    assert {k: r["verdict"] for k, r in https.items()} == {k: r["verdict"] for k, r in http.items()}
    assert https["tracker"]["verdict"] == "identifier"


def test_verdicts_from_chromiums_own_hars_over_https(lab, browser_hars_https, tmp_path):
    assert len(browser_hars_https) == PROFILES
    with store_module.Store(tmp_path / "hars.sqlite") as store:
        report = ingest_module.ingest_paths(browser_hars_https, store)
        assert not report.errors and not report.skipped
        df = store_module.load_exchanges(store)
    assert set(df.loc[df["url"] == lab.sites["nginx"].https_url, "http_version"]) == {"HTTP/2"}
    check_lab_verdicts(lab_verdicts(df, lab, "https"), lab)


def test_revalidation_over_https_comes_from_the_disk_cache_across_a_relaunch(lab, tmp_path):
    """Chromium trusting mitmproxy's CA by SPKI hash keeps HTTPS responses in its HTTP cache: a
    browser started afresh on the profile (so no memory cache) still sends If-None-Match and
    gets 304s, recorded by mitmdump."""
    need_program("chromium")
    capture = browse_through_mitmdump(
        lab, tmp_path, profiles=1, visits=2, flows=False, scheme="https", relaunch=True
    )
    df = _lab_rows(store_module.load_exchanges(capture["db"]), lab)
    for key in REVALIDATED:
        rows = df[df["url"] == lab.sites[key].https_url]
        assert list(rows["status"]) == [200, 304], key
        assert rows["req_if_none_match"].iloc[1] == rows["etag"].iloc[0], key


@pytest.mark.parametrize("trust", ["spki-list", "ignore-certificate-errors"])
def test_only_a_trusted_ca_lets_chromium_cache_https_responses(lab, tmp_path, trust):
    """The reason for the SPKI list: with --ignore-certificate-errors Chromium loads the same
    pages, but keeps nothing in its HTTP cache after the certificate error, so a relaunched
    browser has nothing to revalidate (within one running browser, Blink's memory cache would
    revalidate and hide the difference)."""
    need_program("chromium")
    args = (
        chromium_trust_args(lab.ca.cert_path)
        if trust == "spki-list"
        else ["--ignore-certificate-errors"]
    )
    launches = [_visit_once(lab, tmp_path / "profile", args) for _ in range(2)]
    urls = [lab.sites[k].https_url for k in REVALIDATED]
    for launch in launches:
        assert set(urls) <= set(launch), "the page did not load every site"
    assert not any(launches[0][u] for u in urls)  # a fresh profile has nothing to revalidate
    revalidated = [u for u in urls if launches[1][u]]
    assert revalidated == (urls if trust == "spki-list" else [])


def _visit_once(lab, user_data: Path, args: list[str]) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    """Launch Chromium on ``user_data``, load the HTTPS page once; url -> If-None-Match sent."""
    from playwright.sync_api import sync_playwright

    sent: dict[str, str | None] = {}

    def record(response) -> None:  # type: ignore[no-untyped-def]
        # all_headers(): the HTTP cache adds If-None-Match below what request.headers shows
        sent[response.url] = response.request.all_headers().get("if-none-match")

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(user_data),
            executable_path=chromium_path(),
            headless=True,
            args=[*CHROMIUM_FLAGS, f"--host-resolver-rules={lab.resolver_rules()}", *args],
            ignore_default_args=["--headless"],
        )
        try:
            page = context.new_page()
            page.on("response", record)
            page.goto(lab.https_page_url, wait_until="load")
            page.wait_for_function("window.labDone === true")
        finally:
            context.close()
    return sent


def test_browse_refuses_relaunch_with_hars(tmp_path):
    with pytest.raises(ValueError, match="relaunch"):
        browse("https://news.lab.test/", har_dir=tmp_path, relaunch=True)
    assert not any(tmp_path.iterdir())
