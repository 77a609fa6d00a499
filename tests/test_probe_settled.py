"""Verdicts settled by stored probe outcomes (analysis.detectors.settled), on stores built from
exchange_factory scenarios and read by `etagwatch analyze`, as a user sees them: the settled
verdict, what settled it (text and JSON), and what a probe may never change."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import exchange_factory as xf
import pytest

from analysis.cli import main
from analysis.store import SCHEMA_VERSION, Store, load_probe_outcomes

SOLO = "https://t.example.net/pixel.gif"
T0 = 1_800_000_000.0


def outcome(url: str, outcome: str, settles: str | None, rule: str, *, at: float = T0,
            before: str = "likely-identifier", confidence: float | None = 0.85) -> dict:
    """A row as `probe --candidates` records it (two fresh clients and the forged tag)."""
    requests = [
        {"client": "fresh-1", "round": 0, "sent": {"method": "GET", "if_none_match": None},
         "status": 200, "etag": '"a1"', "last_modified": None, "body_sha256": "ab" * 32,
         "body_size": 43, "at": "2027-01-15T08:00:00.000+00:00"},
        {"client": "fresh-1", "round": 1, "sent": {"method": "GET", "if_none_match": '"a1"'},
         "status": 304, "etag": '"a1"', "last_modified": None, "body_sha256": None,
         "body_size": None, "at": "2027-01-15T08:00:01.000+00:00"},
        {"client": "forged", "round": 0,
         "sent": {"method": "GET", "if_none_match": '"etagwatch-forged-1"'},
         "status": 200, "etag": '"b2"', "last_modified": None, "body_sha256": "cd" * 32,
         "body_size": 43, "at": "2027-01-15T08:00:02.000+00:00"},
    ]
    return {"url": url, "probed_at": at, "outcome": outcome, "settles": settles, "rule": rule,
            "verdict_before": before, "reason": f"{rule} seen", "evidence": {
                "before": {"verdict": before}, "clients": 2, "confidence": confidence,
                "requests": requests, "forged_tag": '"etagwatch-forged-1"'}}


def analyze(tmp_path: Path, records: list, outcomes: list[dict], *args: str
            ) -> tuple[dict[str, Any], str]:
    db = xf.store(tmp_path / f"capture-{len(list(tmp_path.iterdir()))}.sqlite", records)
    with Store(db) as store:
        for row in outcomes:
            store.add_probe_outcome(row)
    out = tmp_path / "report.json"
    main(["analyze", str(db), "--json", str(out), "-q", *args])
    return json.loads(out.read_text()), ""


def resource(report: dict, url: str) -> dict:
    return next(r for r in report["resources"] if r["url"] == url)


def test_without_outcomes_every_resource_says_it_was_not_settled(tmp_path: Path) -> None:
    report, _ = analyze(tmp_path, xf.tracker(1, SOLO), [])
    row = resource(report, SOLO)
    assert row["verdict"] == "likely-identifier"
    assert row["settled"] is None and row["verdict_before"] is None
    assert "probe" not in row["evidence"]
    assert report["summary"]["settled"]["confirmed"] == 0


def test_a_confirming_probe_makes_a_single_client_value_an_identifier(tmp_path: Path,
                                                                       capsys) -> None:
    report, _ = analyze(tmp_path, xf.tracker(1, SOLO),
                        [outcome(SOLO, "confirms", "identifier", "probe-per-client")])
    row = resource(report, SOLO)
    assert (row["verdict"], row["settled"], row["verdict_before"]) == (
        "identifier", "confirmed", "likely-identifier")
    assert row["confidence"] == 0.85
    ev = row["evidence"]
    assert ev["settled_by"] == "probe" and ev["kind"] == "probe-per-client"
    assert ev["before"]["verdict"] == "likely-identifier" and ev["before"]["kind"] == "single-client"
    assert "confirm_with" not in ev and "second, fresh client" in ev["before"]["confirm_with"]
    assert [r["status"] for r in ev["probe"]["requests"]] == [200, 304, 200]
    assert ev["probe"]["probed_at"].startswith("2027-01-15 08:00:00")
    assert ev["scope"]  # an identifier always says its scope
    assert report["summary"]["verdicts"]["identifier"] == 1
    assert report["summary"]["verdicts"]["likely-identifier"] == 0
    assert report["summary"]["settled"]["confirmed"] == 1
    host = next(h for h in report["hosts"] if h["host"] == "t.example.net")
    assert (host["identifier"], host["likely-identifier"]) == (1, 0)
    text = capsys.readouterr().out
    assert "== Identifiers" in text and "probe 2027-01-15 08:00:00 UTC: confirms" in text
    assert "before the probe: likely-identifier" in text
    assert 'fresh-1: GET -> 200 "a1"; If-None-Match "a1" -> 304 "a1"' in text
    assert "probe: 1 confirmed" in text


def test_a_clearing_probe_makes_it_stable_and_the_report_lists_it(tmp_path: Path,
                                                                  capsys) -> None:
    report, _ = analyze(tmp_path, xf.tracker(1, SOLO),
                        [outcome(SOLO, "clears", "stable", "probe-shared")])
    row = resource(report, SOLO)
    assert (row["verdict"], row["settled"], row["evidence"]["kind"]) == (
        "stable", "cleared", "probe-shared")
    assert "scope" not in row["evidence"] and row["scope"] is None
    text = capsys.readouterr().out
    assert "== Cleared by probe: stable, not identifiers (1)" in text
    assert "Likely identifiers" not in text


def test_fail_on_sees_the_settled_verdict(tmp_path: Path) -> None:
    db = xf.store(tmp_path / "c.sqlite", xf.tracker(1, SOLO))
    argv = ["analyze", str(db), "-q", "--fail-on", "likely-identifier"]
    assert main(argv) == 1
    with Store(db) as store:
        store.add_probe_outcome(outcome(SOLO, "clears", "stable", "probe-shared"))
    assert main(argv) == 0


def test_an_identifier_from_several_clients_is_not_acquitted_by_one_probe(tmp_path: Path
                                                                          ) -> None:
    """The capture showed three clients with their own values; fresh probe clients sharing one
    disagree (the server changed, or tells probes from browsers): neither holds."""
    report, _ = analyze(tmp_path, xf.tracker(3, SOLO),
                        [outcome(SOLO, "clears", "stable", "probe-shared", before="identifier")])
    row = resource(report, SOLO)
    assert (row["verdict"], row["settled"], row["evidence"]["kind"]) == (
        "undetermined", "contradicted", "probe-contradicts")
    assert row["evidence"]["before"]["kind"] == "per-client"


def test_reflection_stays_an_identifier_whatever_a_probe_sees(tmp_path: Path) -> None:
    url = "https://e.example.com/ec.png"
    report, _ = analyze(tmp_path, xf.echo_tracker(url),
                        [outcome(url, "clears", "stable", "probe-shared", before="identifier")])
    row = resource(report, url)
    assert (row["verdict"], row["settled"]) == ("identifier", "contradicted")
    assert row["evidence"]["kind"] == "reflection"
    assert "a probe disagrees" in row["explanation"]


def test_a_verdict_a_probe_does_not_settle_is_left_alone(tmp_path: Path) -> None:
    """Churn stays churn even if an outdated probe outcome confirmed an identifier."""
    url = "https://www.example.org/app.js"
    report, _ = analyze(tmp_path, xf.load_balanced(2, 3, url),
                        [outcome(url, "confirms", "identifier", "probe-per-client")])
    row = resource(report, url)
    assert (row["verdict"], row["settled"]) == ("churn", "outdated")


def test_the_latest_conclusive_outcome_counts(tmp_path: Path) -> None:
    rows = [outcome(SOLO, "confirms", "identifier", "probe-per-client", at=T0),
            outcome(SOLO, "error", None, "probe-failed", at=T0 + 10, confidence=None),
            outcome(SOLO, "inconclusive", None, "probe-open", at=T0 + 20, confidence=None)]
    report, _ = analyze(tmp_path, xf.tracker(1, SOLO), rows)
    assert resource(report, SOLO)["verdict"] == "identifier"
    rows.append(outcome(SOLO, "clears", "stable", "probe-shared", at=T0 + 30))
    report, _ = analyze(tmp_path, xf.tracker(1, SOLO), rows)
    assert resource(report, SOLO)["verdict"] == "stable"


def test_an_inconclusive_probe_keeps_the_verdict_and_says_so(tmp_path: Path, capsys) -> None:
    report, _ = analyze(tmp_path, xf.tracker(1, SOLO),
                        [outcome(SOLO, "inconclusive", None, "probe-open", confidence=None)])
    row = resource(report, SOLO)
    assert (row["verdict"], row["settled"]) == ("likely-identifier", "inconclusive")
    assert row["evidence"]["kind"] == "single-client"
    text = capsys.readouterr().out
    assert "probe 2027-01-15 08:00:00 UTC: inconclusive (probe-open)" in text
    assert "one client kept a high-entropy ETag" in text  # the capture's evidence follows


def test_a_last_modified_verdict_is_not_moved_by_an_etag_probe(tmp_path: Path) -> None:
    url = "https://www.example.org/report.csv"
    records = [xf.exchange(client="solo", url=url, last_modified=T0 - 86400 * 30,
                           started=T0 + i, status=200 if i == 0 else 304,
                           ims=None if i == 0 else T0 - 86400 * 30) for i in range(3)]
    report, _ = analyze(tmp_path, records, [])
    row = resource(report, url)
    if row["verdict"] not in ("likely-identifier", "undetermined", "identifier"):
        pytest.fail(f"scenario no longer a candidate: {row['verdict']}")
    before = row["verdict"]
    report, _ = analyze(tmp_path, records,
                        [outcome(url, "confirms", "identifier", "probe-per-client")])
    row = resource(report, url)
    assert (row["verdict"], row["settled"]) == (before, "inconclusive")
    assert "Last-Modified" in row["evidence"]["probe"]["reason"]


def test_a_store_of_schema_2_is_read_and_migrated(tmp_path: Path) -> None:
    db = xf.store(tmp_path / "old.sqlite", xf.tracker(1, SOLO))
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE probe_outcomes")
    conn.execute("UPDATE meta SET value = '2' WHERE name = 'schema_version'")
    conn.commit()
    conn.close()
    assert load_probe_outcomes(db).empty  # a reader of an old store: nothing settled
    out = tmp_path / "r.json"
    assert main(["analyze", str(db), "--json", str(out), "-q"]) == 0
    assert resource(json.loads(out.read_text()), SOLO)["settled"] is None
    with Store(db) as store:  # a writer migrates it
        assert store.schema_version == SCHEMA_VERSION == 3
        store.add_probe_outcome(outcome(SOLO, "confirms", "identifier", "probe-echo"))
    assert load_probe_outcomes(db)["rule"].tolist() == ["probe-echo"]


def test_the_notebook_report_reads_the_settled_verdicts(tmp_path: Path) -> None:
    from analysis.reporting.data import load_report_data
    from analysis.reporting.evidence_rows import sentences

    db = xf.store(tmp_path / "c.sqlite", xf.tracker(1, SOLO))
    with Store(db) as store:
        store.add_probe_outcome(outcome(SOLO, "confirms", "identifier", "probe-per-client"))
    data = load_report_data([db])
    row = data.resources.set_index("url").loc[SOLO]
    assert (row["verdict"], row["settled"]) == ("identifier", "confirmed")
    assert data.summary["verdicts"]["identifier"] == 1
    assert any("confirms (probe-per-client)" in s for s in sentences("identifier", row["evidence"]))


def test_outcomes_follow_resources_grouped_without_ignored_params(tmp_path: Path) -> None:
    """--ignore-param groups ?v=1 and ?v=2 into one resource; the probe's outcome (stored
    under the URL it fetched) settles that resource."""
    base = "https://t.example.net/p.gif"
    records = xf.visits("solo", base + "?v=1", '"9f1c2b7d4e6a8c0b1d3f5e7a9c2b4d6f"',
                        third_party=True)
    db = xf.store(tmp_path / "c.sqlite", records)
    with Store(db) as store:
        store.add_probe_outcome(outcome(base + "?v=1", "confirms", "identifier", "probe-echo"))
    out = tmp_path / "r.json"
    main(["analyze", str(db), "--json", str(out), "-q", "--ignore-param", "v"])
    row = resource(json.loads(out.read_text()), base)
    assert (row["verdict"], row["settled"]) == ("identifier", "confirmed")
