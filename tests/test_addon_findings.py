"""etagwatch.report and etagwatch.export: the same detectors and JSON as `etagwatch analyze`."""

from __future__ import annotations

import json
import logging

import pytest
from mitmproxy import exceptions, http
from mitmproxy.test import taddons, tflow

from addons.annotator import Annotator
from addons.findings import Findings
from addons.recorder import Recorder
from analysis.detectors import run_all
from analysis.detectors.settled import settle
from analysis.report_json import analysis_to_json
from analysis.store import load_exchanges, load_probe_outcomes


def tracked(peer: str, tag: str, status: int = 200) -> http.HTTPFlow:
    f = tflow.tflow()
    f.client_conn.peername = (peer, 5000)
    headers = {"If-None-Match": tag} if status == 304 else {}
    f.request = http.Request.make("GET", "http://track.test/p.gif", b"", headers)
    f.response = http.Response.make(status, b"" if status == 304 else b"GIF89a", {"ETag": tag})
    return f


@pytest.fixture
def session(tmp_path):
    rec, ann = Recorder(), Annotator()
    rec.subscribe(ann.observe)
    findings = Findings(rec, ann)
    db = tmp_path / "s.sqlite"
    with taddons.context(rec, ann, findings) as tctx:
        tctx.configure(rec, etagwatch_db=str(db))
        for i in range(3):
            tag = f'"id{i}-9a8b7c6d5e4f3a2b1c0d"'
            for status in (200, 304, 304):
                rec.response(tracked(f"10.1.0.{i}", tag, status))
        yield tctx, rec, findings, db
        rec.done()


def test_export_writes_what_analyze_writes(session, tmp_path):
    tctx, _rec, findings, db = session
    out = tmp_path / "findings.json"
    tctx.command(findings.export, str(out))
    written = json.loads(out.read_text())
    analyzed = settle(run_all(load_exchanges(db)), load_probe_outcomes(db))  # as analyze does
    assert written == json.loads(json.dumps(analysis_to_json(analyzed)))
    assert set(written) == {"summary", "hosts", "resources", "findings"}
    assert written["resources"][0]["verdict"] == "identifier"


def test_report_logs_verdicts_and_host_counters(session, caplog):
    tctx, _rec, findings, _db = session
    caplog.set_level(logging.WARNING)
    tctx.command(findings.report)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "identifier: http://track.test/p.gif" in text
    assert "host track.test:" in text and "not_modified 6" in text


def test_export_without_a_store_is_a_command_error(tmp_path):
    rec = Recorder()
    findings = Findings(rec)
    with taddons.context(rec, findings) as tctx:
        tctx.configure(rec, etagwatch_db="")
        with pytest.raises(exceptions.CommandError, match="nothing is recorded"):
            findings.export(str(tmp_path / "x.json"))
