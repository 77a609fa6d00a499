"""End to end: `etagwatch report` executes notebooks/report.ipynb on real files (HAR captures
written here from multi-client scenarios, the shipped sample captures, an empty capture) through
the real readers, store and detectors, and writes one self-contained HTML file."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest
from exchange_factory import echo_tracker, exchange, load_balanced, random_per_response, tracker
from support import SAMPLE_CAPTURES

from analysis.cli import main

SECTIONS = ("What was found", "Capture overview", "Hosts", "Identifiers", "Churn",
            "Other verdicts", "Conformance")
FIGURED = ("Capture overview", "Hosts", "Identifiers", "Churn", "Conformance")
PNG = re.compile(r'<img[^>]+src="data:image/png;base64,([A-Za-z0-9+/=]+)"')

TRACKER_URL = "https://t.example.net/pixel.gif"
CHURN_URL = "https://www.example.org/app.js"


def conformance_bugs() -> list:
    """A missed 304, a 304 that drops the ETag, and an unquoted ETag, on two hosts."""
    doc, other = "https://api.example.com/doc", "https://legacy.example.com/x"
    return [
        exchange(client="client0", url=doc, etag='"v1"'),
        exchange(client="client0", url=doc, etag='"v1"', inm='"v1"'),
        exchange(client="client0", url=doc, status=304, inm='"v1"', etag=None),
        exchange(client="client1", url=other, etag="v2"),
    ]


def _har_entry(x: object) -> dict:
    """A HAR 1.2 entry (as a browser writes it) for one factory exchange."""
    req_headers = [{"name": n, "value": v} for n, v in json.loads(x.req_headers or "[]")]
    resp_headers = [{"name": n, "value": v} for n, v in json.loads(x.resp_headers or "[]")]
    for name, value in json.loads(x.backend or "{}").items():
        resp_headers.append({"name": name, "value": value})
    body = "same body" if x.body_size else ""
    started = datetime.fromtimestamp(x.started, tz=UTC).isoformat().replace("+00:00", "Z")
    return {
        "startedDateTime": started,
        "time": 5,
        "request": {"method": x.method, "url": x.url, "httpVersion": "HTTP/1.1",
                    "headers": req_headers, "queryString": [], "cookies": [],
                    "headersSize": -1, "bodySize": 0},
        "response": {"status": x.status, "statusText": "", "httpVersion": "HTTP/1.1",
                     "headers": resp_headers, "cookies": [],
                     "content": {"size": len(body), "mimeType": "image/gif", "text": body},
                     "redirectURL": "", "headersSize": -1, "bodySize": x.body_size or 0},
        "cache": {}, "timings": {"send": 0, "wait": 5, "receive": 0},
        "serverIPAddress": x.server_ip or "",
    }


def write_hars(records: list, folder: Path) -> Path:
    """One HAR file per client, as one browser profile per file would export."""
    folder.mkdir(parents=True, exist_ok=True)
    by_client: dict[str, list] = {}
    for x in records:
        by_client.setdefault(x.client, []).append(x)
    for client, xs in by_client.items():
        har = {"log": {"version": "1.2", "creator": {"name": "test", "version": "1"},
                       "entries": [_har_entry(x) for x in sorted(xs, key=lambda e: e.started)]}}
        (folder / f"{client}.har").write_text(json.dumps(har))
    return folder


def run_report(tmp: Path, *inputs: Path, extra: tuple[str, ...] = ()) -> tuple[str, nbformat.NotebookNode]:
    html, ipynb = tmp / "report.html", tmp / "report.ipynb"
    status = main(["report", *map(str, inputs), "-o", str(html), "--notebook", str(ipynb),
                   "--quiet", *extra])
    assert status == 0
    return html.read_text(encoding="utf-8"), nbformat.read(ipynb, as_version=4)


def sections(html: str) -> dict[str, str]:
    """HTML of each report section, from its <h2> heading to the next (the closing "About this
    report" section left out)."""
    parts = re.split(r"<h2[^>]*>", html)[1:]
    out = {}
    for part in parts:
        title = re.sub(r"<[^>]+>|¶", "", part.split("</h2>", 1)[0]).strip()
        out[title.split(":")[0].strip()] = part
    out.pop("About this report", None)
    return out


def errors(nb: nbformat.NotebookNode) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


@pytest.fixture(scope="module")
def scenario_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, nbformat.NotebookNode]:
    tmp = tmp_path_factory.mktemp("scenario")
    records = (tracker(4, url=TRACKER_URL) + load_balanced(2, 4, url=CHURN_URL)
               + echo_tracker() + random_per_response() + conformance_bugs())
    hars = write_hars(records, tmp / "captures")
    return run_report(tmp, hars)


@pytest.fixture(scope="module")
def empty_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, nbformat.NotebookNode]:
    tmp = tmp_path_factory.mktemp("empty")
    har = tmp / "empty.har"
    har.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"},
                                       "entries": []}}))
    return run_report(tmp, har)


@pytest.mark.slow
def test_every_section_has_its_heading_and_figures(scenario_report) -> None:
    html, nb = scenario_report
    assert errors(nb) == []
    found = sections(html)
    assert list(found) == list(SECTIONS)
    for name in FIGURED:
        images = PNG.findall(found[name])
        assert images, f"section {name} has no embedded figure"
        for data in images:
            assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    # churn shows both the timeline and the wasted-bytes bars
    assert len(PNG.findall(found["Churn"])) == 2


@pytest.mark.slow
def test_report_names_the_tracker_and_the_churn(scenario_report) -> None:
    html, _ = scenario_report
    found = sections(html)
    assert TRACKER_URL in found["Identifiers"]
    assert "identifier" in found["Identifiers"]
    assert CHURN_URL in found["Churn"]
    assert "x-backend: web1" not in found["Identifiers"]
    for rule in ("missed-304", "304-missing-headers", "etag-syntax"):
        assert rule in found["Conformance"]


@pytest.mark.slow
def test_html_is_self_contained_and_hides_code(scenario_report) -> None:
    html, nb = scenario_report
    assert not re.search(r'<script[^>]+src="', html)
    assert not re.search(r'<link[^>]+href="https?://', html)
    assert "load_report_data" not in html  # code cells hidden by default
    assert "template of `etagwatch report`" not in html  # notebook-user note removed
    assert "<title>etagwatch report</title>" in html
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "inputs = [" in injected[0].source


@pytest.mark.slow
def test_empty_capture_says_nothing_to_report(empty_report) -> None:
    html, nb = empty_report
    assert errors(nb) == []
    found = sections(html)
    assert list(found) == list(SECTIONS)
    for name in SECTIONS:
        assert "Nothing to report" in found[name], name
        assert not PNG.search(found[name])


@pytest.mark.slow
def test_sample_captures_report(tmp_path: Path) -> None:
    captures = [p for p in SAMPLE_CAPTURES.rglob("*")
                if p.is_file() and p.suffix in (".har", ".gz", ".flow", ".flows", ".mitm")]
    assert captures, "sample_captures/ holds no captures (regenerate.py makes them)"
    html, nb = run_report(tmp_path, *sorted(captures), extra=("--show-code",))
    assert errors(nb) == []
    found = sections(html)
    assert list(found) == list(SECTIONS)
    for name in ("Capture overview", "Hosts", "Identifiers"):
        assert PNG.search(found[name]), name
    assert "load_report_data" in html  # --show-code keeps the code (highlighted: split in spans)
