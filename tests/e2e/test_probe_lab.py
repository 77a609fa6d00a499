"""`etagwatch probe` against the lab (real nginx, Apache httpd and haproxy, and the Python
tracker origins): each lab resource gets the verdict the lab says it demonstrates."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from support import need_program

from analysis.cli import main
from analysis.lab.lab import Lab

pytestmark = pytest.mark.e2e

#: lab site -> (verdict, tracking, exit status)
EXPECTED = {
    "nginx": ("stable", False),
    "digest": ("stable", False),
    "tracker": ("identifier", True),
    "echo": ("identifier", True),
    "inode": ("churn", False),
    "mtime": ("churn", False),
    "random": ("unstable", False),
}


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    need_program("nginx", "apache2", "haproxy")
    with Lab() as running:
        yield running


@pytest.mark.parametrize("site", sorted(EXPECTED))
def test_probe_reaches_the_lab_verdict(lab: Lab, site: str, capsys) -> None:
    resource = lab.sites[site]
    verdict, tracking = EXPECTED[site]
    assert resource.expected == verdict  # the lab and this table agree
    status = main(["probe", resource.loopback_url, "--clients", "3", "--json", "-"])
    out, err = capsys.readouterr()
    report = json.loads(out)
    section = report["probe"]
    assert section["verdict"] == verdict, err
    assert section["tracking"] is tracking
    fresh = section["tests"][0]
    assert fresh["name"] == "fresh-clients" and fresh["got"] == verdict
    assert status == (0 if verdict == "stable" and section["failed"] == 0 else 1)
    if verdict != "stable":
        assert status == 1
    names = {t["name"]: t for t in section["tests"]}
    if site == "echo":
        assert names["forged-etag"]["outcome"] == "fail" and names["forged-etag"]["tracking"]
    if site in ("nginx", "digest"):
        assert names["forged-etag"]["outcome"] == "pass"
        assert names["revalidate-etag"]["outcome"] == "pass"
    if site == "nginx":  # nginx evaluates If-Match itself; the lab's Python origins do not
        assert names["if-match-wrong"]["outcome"] == "pass"
