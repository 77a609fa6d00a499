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
