"""Headless Chromium browses the lab as several fresh profiles; etagwatch must reach the right
verdict for every lab resource, from the browser's own HAR files and from the live addon's
store alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import PROFILES, VISITS, check_lab_verdicts, lab_verdicts

import analysis.ingest as ingest_module
import analysis.store as store_module

pytestmark = pytest.mark.e2e




def _entries(har: Path) -> list[dict]:
    return json.loads(har.read_text())["log"]["entries"]


def _headers(items: list[dict]) -> dict[str, str]:
    return {h["name"].lower(): h["value"] for h in items}


def _for(entries: list[dict], url: str) -> list[dict]:
    return [e for e in entries if e["request"]["url"] == url]


def test_each_profile_revalidates_with_if_none_match_and_if_modified_since(lab, browser_hars):
    assert len(browser_hars) == PROFILES
    static = lab.sites["nginx"].url
    for har in browser_hars:
        fetches = _for(_entries(har), static)
        assert len(fetches) == VISITS, har.name
        later = [_headers(e["request"]["headers"]) for e in fetches[1:]]
        assert all("if-none-match" in h and "if-modified-since" in h for h in later), har.name
        assert [e["response"]["status"] for e in fetches] == [200] + [304] * (VISITS - 1)


def test_tracker_values_are_unique_per_profile_and_stable_within_it(lab, browser_hars):
    tracker = lab.sites["tracker"].url
    per_profile = []
    for har in browser_hars:
        etags = {
            _headers(e["response"]["headers"]).get("etag") for e in _for(_entries(har), tracker)
        }
        assert len(etags) == 1, f"{har.name}: tracker value changed within one profile"
        per_profile.append(etags.pop())
    assert len(set(per_profile)) == PROFILES


def test_churn_pairs_alternate_backends_for_every_profile(lab, browser_hars):
    for key in ("inode", "mtime"):
        site = lab.sites[key]
        for har in browser_hars:
            fetches = _for(_entries(har), site.url)
            backends = [_headers(e["response"]["headers"]).get("x-backend") for e in fetches]
            assert set(backends) <= set(site.backends) and len(backends) == VISITS
            # a revalidation that lands on the other backend is answered 200, never 304
            assert all(e["response"]["status"] == 200 for e in fetches)


def test_verdicts_from_the_browsers_har_files(lab, browser_hars, tmp_path):
    store = store_module.Store(tmp_path / "hars.sqlite")
    try:
        report = ingest_module.ingest_paths(browser_hars, store)
        assert not report.errors and not report.skipped
        assert len(report.clients) == PROFILES
        df = store_module.load_exchanges(store)
    finally:
        store.close()
    check_lab_verdicts(lab_verdicts(df, lab), lab)


def test_verdicts_from_the_live_addons_store(lab, live_capture):
    df = store_module.load_exchanges(live_capture["db"])
    lab_rows = df[df["host"].isin(lab.hostnames)]
    assert set(lab_rows["client"]) == set(live_capture["clients"])
    check_lab_verdicts(lab_verdicts(lab_rows, lab), lab)


def test_flow_files_of_the_live_capture_read_back(lab, live_capture, tmp_path):
    store = store_module.Store(tmp_path / "flows.sqlite")
    try:
        report = ingest_module.ingest_paths(live_capture["flows"], store)
        assert not report.errors
        df = store_module.load_exchanges(store)
    finally:
        store.close()
    assert set(lab.sites["tracker"].url for _ in [0]) <= set(df["url"])
    assert df["req_if_none_match"].notna().sum() > 0
