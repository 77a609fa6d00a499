"""`etagwatch probe` end to end through the CLI against loopback origins: exit status, the JSON
and terminal formats of analyze plus the probe section, the store, and one-line errors."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from origins.buggy_origin import serve

from analysis.cli import main
from analysis.store import load_exchanges


def probe(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["probe", "--timeout", "5", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_correct_origin_exits_0_with_analyze_json_and_probe_section(capsys) -> None:
    with serve() as url:
        status, out, err = probe(capsys, url, "--json", "-")
    assert status == 0, err
    report = json.loads(out)
    assert {"summary", "hosts", "resources", "findings", "probe"} <= set(report)
    section = report["probe"]
    assert section["url"] == url and section["verdict"] == "stable"
    assert section["failed"] == 0 and section["exit_status"] == 0 and not section["tracking"]
    names = [t["name"] for t in section["tests"]]
    assert names[0] == "fresh-clients" and "forged-etag" in names
    for t in section["tests"]:
        assert {"name", "sent", "expected", "got", "passed", "explanation"} <= set(t)
    (resource,) = [r for r in report["resources"] if r["url"] == url]
    assert resource["verdict"] == "stable"
    assert "Probe result:" in err and "PASS  fresh-clients" in err  # text went to stderr


@pytest.mark.parametrize("bug", ["ignore-inm", "no-etag-304", "weak-if-match", "same-etag-gzip"])
def test_conformance_bug_exits_1_and_names_the_failed_test(capsys, bug: str) -> None:
    with serve(bug) as url:
        status, out, _ = probe(capsys, url)
    assert status == 1
    assert "FAIL" in out and "Probe result:" in out and "TRACKING" not in out


def test_reflecting_tracker_exits_1_as_identifier(capsys, tmp_path: Path) -> None:
    report_file = tmp_path / "r.json"
    with serve("reflect-inm", "random-etag") as url:
        status, out, _ = probe(capsys, url, "--json", str(report_file))
    assert status == 1
    report = json.loads(report_file.read_text())
    assert report["probe"]["tracking"] and report["probe"]["verdict"] == "identifier"
    forged = next(t for t in report["probe"]["tests"] if t["name"] == "forged-etag")
    assert forged["outcome"] == "fail" and forged["tracking"]
    assert "ETAG TRACKING MECHANISM FOUND" in out


def test_db_keeps_every_request_and_each_run_is_judged_alone(capsys, tmp_path: Path) -> None:
    db = tmp_path / "probe.sqlite"
    with serve() as url:
        first = probe(capsys, url, "--db", str(db), "--clients", "2", "--json", "-")
        second = probe(capsys, url, "--db", str(db), "--clients", "2", "--json", "-")
        served = len(url.server.requests)
    rows = load_exchanges(db)
    assert len(rows) == served  # every request sent is stored, nothing else
    assert set(rows["client"]) == {"probe-1", "probe-2", "probe-forged"}
    assert set(rows["source"]) == {f"probe:{url}"} and set(rows["source_kind"]) == {"probe"}
    one, two = json.loads(first[1]), json.loads(second[1])
    assert one["probe"]["requests"] == two["probe"]["requests"] == served // 2
    # the detectors judge each run's own browser-like exchanges: 3 per fresh client
    assert one["summary"]["exchanges"] == two["summary"]["exchanges"] == 2 * 3


def test_secret_header_is_sent_but_stored_hashed(capsys, tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    with serve() as url:
        status, _, err = probe(
            capsys, url, "--db", str(db), "--header", "Authorization: Bearer s3cr3t"
        )
        sent = url.server.requests
    assert status == 0, err
    assert all(("authorization", "Bearer s3cr3t") in h for h in sent)
    assert "s3cr3t" not in Path(db).read_bytes().decode("latin-1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--header", "no colon here"], "expected 'Name: value'"),
        (["--header", 'If-None-Match: "x"'], "sets this field itself"),
        (["--clients", "1"], "--clients must be at least 2"),
        (["--timeout", "0"], "--timeout must be a positive"),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys, args: list[str], message: str) -> None:
    status, _, err = probe(capsys, "http://127.0.0.1:9/x", *args)
    assert status == 2 and message in err and err.count("\n") == 1


def test_connection_errors_redirects_and_non_2xx_exit_2(capsys) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    status, _, err = probe(capsys, f"http://127.0.0.1:{port}/x")
    assert status == 2 and "connection refused" in err and err.count("\n") == 1
    with serve() as url:
        status, _, err = probe(capsys, url.base + "/redirect")
        assert status == 2 and "redirects (301) to /resource.txt" in err
        status, _, err = probe(capsys, url.base + "/missing")
        assert status == 2 and "answered 404" in err
    status, _, err = probe(capsys, "not a url")
    assert status == 2 and "not an http:// or https:// URL" in err


def test_insecure_probes_an_untrusted_tls_origin(capsys) -> None:
    with serve(tls=True) as url:
        status, _, err = probe(capsys, url)
        assert status == 2 and "--insecure" in err
        status, out, err = probe(capsys, url, "--insecure")
    assert status == 0, err + out
