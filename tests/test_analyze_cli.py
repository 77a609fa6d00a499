"""`etagwatch analyze` end to end: real store, real HAR ingest, JSON / CSV output, exit codes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import exchange_factory as xf
import pytest

from analysis.cli import main


def test_analyze_store_json_csv_and_fail_on(tmp_path: Path, capsys) -> None:
    db = xf.store(tmp_path / "cap.sqlite", xf.tracker(3) + xf.load_balanced(2, 3))
    out = tmp_path / "r.json"
    rc = main(["analyze", str(db), "--json", str(out), "--csv", str(tmp_path / "csv"),
               "--fail-on", "identifier,churn"])
    assert rc == 1
    text = capsys.readouterr()
    assert "Identifiers" in text.out and text.out.index("Identifiers") < text.out.index("Churn")
    assert "identifier, churn" in text.err
    doc = json.loads(out.read_text())
    assert set(doc) == {"summary", "hosts", "resources", "findings"}
    by_url = {r["url"]: r for r in doc["resources"]}
    tracker = by_url["https://t.example.net/pixel.gif"]
    assert tracker["verdict"] == "identifier"
    assert {"url", "host", "verdict", "confidence", "evidence"} <= set(tracker)
    assert by_url["https://www.example.org/app.js"]["verdict"] == "churn"
    for name in ("resources", "findings", "hosts"):
        with open(tmp_path / "csv" / f"{name}.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == len(doc[name])


def test_fail_on_default_is_none(tmp_path: Path) -> None:
    db = xf.store(tmp_path / "cap.sqlite", xf.tracker(2))
    assert main(["analyze", str(db)]) == 0
    assert main(["analyze", str(db), "--fail-on", "churn"]) == 0


def test_json_to_stdout(tmp_path: Path, capsys) -> None:
    db = xf.store(tmp_path / "cap.sqlite", xf.random_per_response())
    assert main(["analyze", str(db), "--json", "-"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["summary"]["verdicts"]["unstable"] == 1
    assert "Unstable" in captured.err


def test_har_inputs_are_ingested_into_db(real_hars: Path, tmp_path: Path, capsys) -> None:
    db = tmp_path / "h.sqlite"
    out = tmp_path / "r.json"
    har = real_hars / "httpolice_old"
    assert main(["analyze", str(har), "--db", str(db), "--json", str(out),
                 "--fail-on", "conformance"]) == 1
    assert db.exists()
    doc = json.loads(out.read_text())
    bare = [f for f in doc["findings"] if f["rule"] == "unconditional-304"]
    assert len(bare) == 7
    assert all(f["source"].endswith(tuple(f"#{i}" for i in range(100))) for f in bare)
    assert {"rule", "severity", "host", "url", "evidence", "rfc", "source"} <= set(bare[0])


@pytest.mark.parametrize("argv, message", [
    (["analyze", "/nonexistent/x.har"], "no such file"),
    (["analyze", "{tmp}/cap.sqlite", "--fail-on", "bogus"], "--fail-on"),
    (["analyze", "{tmp}/junk.db"], "not an etagwatch store"),
])
def test_usage_errors_exit_2(tmp_path: Path, capsys, argv, message) -> None:
    xf.store(tmp_path / "cap.sqlite", xf.tracker(2))
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite at all" * 40)
    rc = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("etagwatch: error:") and message in err and err.count("\n") == 1
