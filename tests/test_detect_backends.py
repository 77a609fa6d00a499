"""Backend keys name nodes, not requests: per-request hint headers (cf-ray ids, x-cache states)
must not turn every response into its own backend."""

from __future__ import annotations

import itertools
import json

import exchange_factory as xf
import pytest

from analysis.detectors import resource_verdicts
from analysis.detectors.backends import node_hints

URL = "https://t.example.net/p.gif"


@pytest.mark.parametrize("hints, kept", [
    ({"cf-ray": "8a1b2c3d4e5f6a7b-FRA", "server": "cloudflare"}, {"cf-ray": "FRA", "server": "cloudflare"}),
    ({"x-vercel-id": "fra1::iad1::abcde-1700000000000-0123"}, {"x-vercel-id": "fra1::iad1"}),
    ({"fly-request-id": "01HX5Z3Q8K-ams"}, {"fly-request-id": "ams"}),
    ({"x-cache": "MISS from proxy-2.example", "x-backend": "web1"},
     {"x-backend": "web1", "x-cache": "proxy-2.example"}),
    ({"x-cache": "HIT", "x-cache-hits": "3", "x-backend": "web1"}, {"x-backend": "web1"}),
    ({"x-fastly-request-id": "5f0c3a"}, None),
])
def test_node_hints_keep_only_what_names_a_node(hints: dict, kept: dict | None) -> None:
    out = node_hints(json.dumps(hints))
    assert (json.loads(out) if out is not None else None) == kept


def test_hints_without_per_request_parts_are_untouched() -> None:
    raw = '{"server": "nginx/1.22.1", "x-backend": "nginx-1"}'
    assert node_hints(raw) is raw


def test_tracker_behind_a_cdn_with_per_request_ray_ids_is_still_an_identifier() -> None:
    """Every response carries a new cf-ray id: left whole, each response is its own backend and
    each value looks 'tied to a backend', which would excuse a tracker as churn."""
    ray = itertools.count()
    records = []
    for c in range(3):
        tag = f'"{c * 7919 + 12345:032x}"'
        for i in range(3):
            records.append(xf.exchange(
                client=f"c{c}", url=URL, etag=tag, inm=tag if i else None,
                status=304 if i else 200, started=xf.T0 + 100 * c + i, third_party=True,
                backend={"cf-ray": f"{next(ray):016x}-FRA", "server": "cloudflare"}))
    row = resource_verdicts(xf.frame(records)).iloc[0]
    assert row["verdict"] == "identifier"
    assert row["evidence"]["backends"] == 1


BACKEND_CASES = [
    ({"x-backend": "apache-1", "server": "Apache"}, "10.0.0.1"),
    ({"server": "nginx"}, "10.0.0.2"),  # the IP names the node better than the software
    ({"cf-ray": "8a1b2c3d4e5f6a7b-FRA", "server": "cloudflare"}, None),
    ({"x-fastly-request-id": "5f0c3a"}, "10.0.0.3"),  # a per-request id alone names nothing
    ({"x-backend": "pool-a"}, "10.0.0.4"),
    ({"x-backend": "pool-a"}, "10.0.0.5"),  # same best hint: labels must stay distinct
    (None, None),
]


def test_backend_key_is_the_key_prepare_gives() -> None:
    from analysis.detectors import prepare
    from analysis.detectors.backends import backend_key

    records = [xf.exchange(client="c", url=URL, etag='"a"', backend=hints, server_ip=ip,
                           started=xf.T0 + i)
               for i, (hints, ip) in enumerate(BACKEND_CASES)]
    ex = prepare(xf.frame(records))
    expected = [None if k != k else k for k in ex["backend_key"].astype(object)]
    got = [backend_key(json.dumps(h) if h else None, ip) for h, ip in BACKEND_CASES]
    assert got == expected
    assert got[3] == "|10.0.0.3" and got[-1] is None


def test_notebook_names_backends_as_the_terminal_does() -> None:
    """analysis.reporting.churn labels a resource's exchanges with the detectors' describe: the
    notebook's legend and the terminal's evidence name each backend the same way."""
    pytest.importorskip("matplotlib")
    from analysis.detectors.backends import backend_key, describe
    from analysis.reporting.churn import backend_label, backend_labels

    backends = [json.dumps(h) if h else None for h, _ in BACKEND_CASES]
    ips = [ip for _, ip in BACKEND_CASES]
    labels = backend_labels(backends, ips)
    described = describe(backend_key(b, ip) for b, ip in zip(backends, ips, strict=True))
    assert labels == [d["label"] for d in described.values()]
    assert labels == ["x-backend: apache-1", "ip 10.0.0.2", "cf-ray: FRA", "ip 10.0.0.3",
                      "x-backend: pool-a, ip 10.0.0.4", "x-backend: pool-a, ip 10.0.0.5",
                      "unknown backend"]
    assert backend_label(json.dumps({"server": "nginx"}), "10.0.0.2") == "ip 10.0.0.2"
    assert backend_label(float("nan"), float("nan")) == "unknown backend"  # pandas' missing


def test_churn_evidence_labels_match_the_notebook_timeline() -> None:
    pytest.importorskip("matplotlib")
    from analysis.detectors import run_all
    from analysis.reporting.churn import resource_exchanges
    from analysis.reporting.data import ReportData

    records = xf.load_balanced(2, n_clients=3)
    frame = xf.frame(records)
    a = run_all(frame)
    row = a.resources[a.resources["verdict"] == "churn"].iloc[0]
    data = ReportData(exchanges=frame, resources=a.resources, findings=a.findings,
                      hosts=a.hosts, summary=a.summary)
    timeline = resource_exchanges(data, row["url"])
    assert set(timeline["backend_label"]) == set(row["evidence"]["backend_labels"])
