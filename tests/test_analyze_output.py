"""What `etagwatch analyze` tells its users: integer counts, readable backends, evidence lines
in the terminal report, conformance grouped by rule, and a --help that teaches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import exchange_factory as xf
import pytest

from analysis.cli import main
from analysis.detectors import run_all
from analysis.detectors.backends import describe
from analysis.report_json import analysis_to_json
from analysis.report_text import WIDTH, render

#: Keys that count things (exchanges, clients, values, bytes, ...): integers wherever they occur.
COUNT_KEYS = {
    "exchanges", "responses", "clients", "hosts", "resources", "values", "fetches_2xx", "n304",
    "clients_304", "stable_clients", "reidentified_clients", "max_clients_per_value",
    "shared_values", "content_values", "backends", "overlapping_values", "wasted_revalidations",
    "wasted_bytes", "reflected_304s", "reflected_values", "issued_values", "body_size",
    "max_values_per_client", "value_content_pairs", "values_with_content",
    "value_backend_pairs", "values_with_backend", "max_values_per_backend", "value_length",
    "revalidations", "not_modified", "identifier", "churn", "unstable", "error", "warning",
    "status", "exchange_id", "occurrences", "expected_status", "context_signals",
}
FLOAT_KEYS = {"confidence", "etag_share", "last_modified_share", "weak_etag_share",
              "revalidation_304_rate"}
LB_URL = "https://www.example.org/app.js"
TRACKER_URL = "https://t.example.net/pixel.gif"


def mixed_capture() -> list:
    """A tracker, a load-balanced churn origin, an unstable feed, a resource without validators
    and two conformance errors."""
    bare = "https://api.example.com/status"
    return (xf.tracker(3) + xf.load_balanced(2, 3) + xf.random_per_response()
            + [xf.exchange(client="c", url="https://www.example.org/", body="page")]
            + [xf.exchange(client="c", url=bare, status=304) for _ in range(2)])


def typed_leaves(doc: Any, key: str = "") -> list[tuple[str, Any]]:
    """(key, value) of every scalar in a JSON document, keyed by the innermost dict key."""
    if isinstance(doc, dict):
        return [leaf for k, v in doc.items() for leaf in typed_leaves(v, str(k))]
    if isinstance(doc, list):
        return [leaf for v in doc for leaf in typed_leaves(v, key)]
    return [(key, doc)]


@pytest.fixture(scope="module")
def analysis():  # type: ignore[no-untyped-def]
    return run_all(xf.frame(mixed_capture()))


def resource(doc: dict, url: str) -> dict:
    return next(r for r in doc["resources"] if r["url"] == url)


def test_counts_are_integers_and_rates_floats_everywhere(analysis) -> None:
    doc = json.loads(json.dumps(analysis_to_json(analysis)))
    leaves = typed_leaves(doc)
    counts = [(k, v) for k, v in leaves if k in COUNT_KEYS and v is not None]
    assert len(counts) > 200  # the walk reached resources, evidence, hosts, findings, summary
    assert [(k, v) for k, v in counts if not isinstance(v, int) or isinstance(v, bool)] == []
    rates = [v for k, v in leaves if k in FLOAT_KEYS and v is not None]
    assert rates and all(isinstance(v, float) for v in rates)
    assert {f["status"] for f in doc["findings"] if f["rule"] == "unconditional-304"} == {304}


def test_churn_evidence_names_backends_and_the_value_each_sent(analysis) -> None:
    ev = resource(analysis_to_json(analysis), LB_URL)["evidence"]
    assert ev["backends"] == 2 and ev["backend_labels"] == ["x-backend: web0", "x-backend: web1"]
    for b in range(2):
        value = f"{0x1a2b + b:x}-5d2-5e1c2f3a4b5c6"
        assert ev["value_backends"][value] == [{
            "label": f"x-backend: web{b}", "headers": {"x-backend": f"web{b}"},
            "server_ip": "192.0.2.10",
        }]
    assert "inode differs" in ev["cause"]


def test_backend_labels_take_the_most_specific_hint() -> None:
    keys = ['{"server":"nginx","via":"1.1 edge-3"}|10.0.0.1', '{"server":"nginx"}|10.0.0.2',
            '{"cf-ray":"FRA","server":"cloudflare"}|',
            '{"x-served-by":"cache-ams21"}|10.0.0.9', "|10.0.0.3", None]
    labels = [describe(keys)[k]["label"] for k in keys]
    assert labels == ["via: 1.1 edge-3", "ip 10.0.0.2", "cf-ray: FRA", "x-served-by: cache-ams21",
                      "ip 10.0.0.3", "unknown backend"]


def test_backend_labels_stay_distinct_when_the_best_hint_is_shared() -> None:
    keys = ['{"x-backend":"pool-a"}|10.0.0.1', '{"x-backend":"pool-a"}|10.0.0.2']
    found = describe(keys)
    assert [found[k]["label"] for k in keys] == ["x-backend: pool-a, ip 10.0.0.1",
                                                 "x-backend: pool-a, ip 10.0.0.2"]
    assert found[keys[1]]["headers"] == {"x-backend": "pool-a"}


def section(text: str, title: str) -> list[str]:
    """The lines of one '== title' section of the terminal report."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"== {title}"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("==")), len(lines))
    return [line for line in lines[start:end] if line]


def test_terminal_churn_lines_show_cause_backends_and_cost(analysis) -> None:
    text = render(analysis)
    assert all(len(line) <= WIDTH for line in text.splitlines()), text
    churn = "\n".join(section(text, "Churn"))
    assert "…" not in churn
    ev = resource(analysis_to_json(analysis), LB_URL)["evidence"]
    assert f"churn {0.99:.2f}  {LB_URL}" in churn
    assert "cause: inode differs" in churn
    for b in range(2):
        assert f'x-backend: web{b} sent "{0x1a2b + b:x}-5d2-5e1c2f3a4b5c6"' in churn
    assert (f"cost: {ev['wasted_revalidations']} revalidations answered 200 with an identical "
            f"body, {ev['wasted_bytes']} B resent") in churn


def test_terminal_identifier_lines_say_what_rules_out_churn(analysis) -> None:
    ident = "\n".join(section(render(analysis), "Identifiers"))
    assert TRACKER_URL in ident
    assert "3 clients each kept their own ETag (3 values) and got 6 304s" in ident
    assert "rules out churn: no value shared by two clients" in ident
    assert "context: third-party" in ident


def test_terminal_reflection_counts_reflected_values() -> None:
    text = render(run_all(xf.frame(xf.echo_tracker())))
    assert "reflection: 2 304s to 2 If-None-Match values the server never issued" in text
    assert '"forged-1b2c3d"' in text


def test_many_backends_are_shortened_with_a_count() -> None:
    text = render(run_all(xf.frame(xf.load_balanced(5, 6))))
    churn = section(text, "Churn")
    assert sum(" sent " in line for line in churn) == 3
    assert any("(+2 more backends)" in line for line in churn)


def test_conformance_grouped_by_rule_with_one_example(analysis) -> None:
    lines = section(render(analysis), "Conformance findings by rule")
    assert "2 errors" in lines[0]
    rule_lines = [line for line in lines if "unconditional-304" in line]
    assert len(rule_lines) == 1 and "2 findings on 1 host" in rule_lines[0]
    example = [line for line in lines if line.strip().startswith("e.g. ")]
    assert len(example) == 1 and "synthetic/" in example[0] and "#" in example[0]


def test_host_table_shows_dash_where_nothing_was_measured() -> None:
    down = xf.exchange(client="c", url="https://down.example.com/x", status=None, body=None,
                       error="connection refused")
    records = [*xf.tracker(2), down]
    lines = section(render(run_all(xf.frame(records))), "Hosts")
    down = next(line for line in lines if "down.example.com" in line)
    assert down.split()[2:5] == ["-", "-", "0"]  # ETag share, L-M share, revalidations
    tracker = next(line for line in lines if "t.example.net" in line)
    assert tracker.split()[2] == "100%"


def test_limit_cuts_sections_and_says_how_many_more(tmp_path: Path, capsys) -> None:
    records = []
    for i in range(4):
        records += xf.tracker(2, url=f"https://t{i}.example.net/p.gif")
    db = xf.store(tmp_path / "cap.sqlite", records)
    assert main(["analyze", str(db), "--limit", "1"]) == 0
    ident = section(capsys.readouterr().out, "Identifiers")
    assert sum(line.startswith("  identifier ") for line in ident) == 1
    assert "(+3 more resources" in ident[-1]
    with pytest.raises(SystemExit) as stop:  # argparse rejects it: usage error
        main(["analyze", str(db), "--limit", "-1"])
    assert stop.value.code == 2 and "--limit: must be 0 or more" in capsys.readouterr().err


def test_help_teaches_defaults_exit_statuses_and_examples(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["analyze", "--help"])
    assert stop.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in ("identifier", "churn", "conformance", "exit status:", "examples:",
                 "(default: 15", "(default: ./etagwatch.sqlite)", "2 usage or input error"):
        assert text in out, text
    assert out.count("etagwatch analyze ") >= 3
