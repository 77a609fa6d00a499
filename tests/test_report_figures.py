"""The report's tables and figures, built from synthetic multi-client exchanges analysed by the
real detectors: right content, readable layout (no overlapping labels), nothing drawn when
there is nothing to show."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from exchange_factory import (
    digest_origin,
    exchange,
    frame,
    load_balanced,
    random_per_response,
    tracker,
)
from matplotlib.figure import Figure

from analysis.reporting import churn, conformance, hosts, identifiers, overview, style
from analysis.reporting.data import analyse
from analysis.reporting.render import all_figures, render_figures

CHURN_URL = "https://www.example.org/app.js"


def conformance_bugs() -> list:
    """A missed 304 and an unquoted ETag, on two hosts."""
    doc = "https://api.example.com/doc"
    return [exchange(client="c", url=doc, etag='"v1"'),
            exchange(client="c", url=doc, etag='"v1"', inm='"v1"'),
            exchange(client="c", url="https://legacy.example.com/x", etag="v2")]


@pytest.fixture(scope="module")
def data():
    records = (tracker(3) + load_balanced(2, 4, url=CHURN_URL) + random_per_response()
               + digest_origin() + conformance_bugs())
    d = analyse(frame(records))
    d.inputs = ("synthetic",)
    return d


@pytest.fixture(scope="module")
def empty():
    return analyse(frame([]))


def _boxes_overlap(texts: list) -> list[tuple[str, str]]:
    boxes = [(t.get_text(), t.get_window_extent()) for t in texts if t.get_text()]
    return [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2) if ba.overlaps(bb)]


def _draw(fig: Figure) -> None:
    fig.draw_without_rendering()  # runs the constrained layout, as saving does


def test_every_figure_has_title_and_axis_labels(data) -> None:
    figs = all_figures(data)
    assert all(isinstance(f, Figure) for f in figs.values()), figs
    for name, fig in figs.items():
        assert style.describe(fig) != "figure", name
        plots = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
        assert plots[0].get_ylabel(), (name, "y label")
        assert plots[-1].get_xlabel(), (name, "x label")
        for ax in plots:
            assert ax.get_title() or ax.get_title("left") or fig.get_suptitle(), name


def test_tick_labels_never_overlap(data) -> None:
    for name, fig in all_figures(data).items():
        _draw(fig)
        for ax in fig.axes:
            assert _boxes_overlap(ax.get_yticklabels()) == [], (name, "y")
            assert _boxes_overlap(ax.get_xticklabels()) == [], (name, "x")


def test_nothing_is_drawn_for_an_empty_capture(empty) -> None:
    assert empty.empty
    assert all(fig is None for fig in all_figures(empty).values())
    assert identifiers.identifier_table(empty).empty
    assert churn.churn_table(empty).empty
    assert conformance.by_rule(empty).empty


def test_scatter_puts_each_verdict_where_its_resources_are(data) -> None:
    fig = identifiers.values_vs_clients_figure(data)
    ax = fig.axes[0]
    res = identifiers.etag_resources(data)
    labels = {c.get_label().split(" (")[0]: c for c in ax.collections}
    assert set(labels) == set(res["verdict"])
    for verdict, coll in labels.items():
        expected = res[res["verdict"] == verdict][["clients", "values"]].drop_duplicates()
        got = np.asarray(coll.get_offsets())
        assert len(got) == len(expected)
        # nudged at most 10% in log space off the true (clients, values) point
        for (cx, cy), (ex, ey) in zip(sorted(map(tuple, got)), sorted(map(tuple, expected.to_numpy())),
                                      strict=True):
            assert abs(np.log(cx / ex)) < 0.1 and abs(np.log(cy / ey)) < 0.1
    # the legend sits outside the plotting area: it hides no point
    _draw(fig)
    legend = fig.legends[0].get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1
    # the tracker lies on the diagonal: as many values as clients
    ident = res[res["verdict"] == "identifier"]
    assert (ident["values"] == ident["clients"]).all() and (ident["clients"] >= 2).all()


def test_identifier_table_carries_evidence(data) -> None:
    table = identifiers.identifier_table(data)
    assert set(table["verdict"]) <= {"identifier", "likely-identifier"}
    assert "https://t.example.net/pixel.gif" in set(table["url"])
    assert table["evidence"].str.contains("clients=").all()


def test_churn_timeline_rows_are_values_colours_are_backends(data) -> None:
    fig = churn.timeline_figure(data)
    ex = churn.resource_exchanges(data, CHURN_URL)
    ax = fig.axes[0]
    assert CHURN_URL in ax.get_title(loc="left")
    assert len(ax.get_yticks()) == ex["value"].nunique() == 2
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "x-backend: web0" in legend and "x-backend: web1" in legend
    # every plotted point is one exchange of the resource
    assert sum(len(c.get_offsets()) for c in ax.collections) == len(ex)


def test_wasted_bytes_match_the_detectors_per_host(data) -> None:
    per_host = churn.wasted_by_host(data)
    expected = data.resources.groupby("host")["wasted_bytes"].sum()
    expected = expected[expected > 0]
    pd.testing.assert_series_equal(per_host.sort_index(), expected.sort_index(),
                                   check_names=False, check_dtype=False)
    assert per_host[CHURN_URL.split("/")[2]] > 0


def test_adoption_splits_etag_share_into_strong_and_weak(data) -> None:
    a = hosts.adoption(data, top=None)
    merged = a.merge(data.hosts[["host", "etag_share"]], on="host")
    assert np.allclose(merged["ETag (strong)"] + merged["ETag (weak)"], merged["etag_share"])
    table = hosts.hosts_table(data)
    assert list(table["host"]) == list(a["host"])


def test_overview_counts_the_capture(data) -> None:
    table = overview.overview_table(data).set_index("what")["value"]
    assert table["exchanges"] == f"{len(data.exchanges):,}"
    assert table["clients"] == f"{data.exchanges['client'].nunique():,}"
    bars = overview.outcomes_by_host(data)
    assert bars.to_numpy().sum() == len(data.exchanges)


def test_findings_heatmap_counts_rule_by_host() -> None:
    d = analyse(frame(conformance_bugs()))
    counts = conformance.counts(d)
    assert counts.to_numpy().sum() == len(d.findings) > 0
    fig = conformance.heatmap_figure(d)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert sorted(texts) == sorted(str(int(v)) for v in counts.to_numpy().ravel() if v)


def test_evidence_and_backend_labels_read_plainly() -> None:
    assert identifiers.evidence_text({"clients": 3, "values": ["a", "b"]}) == 'clients=3; values=["a", "b"]'
    assert len(identifiers.evidence_text({"k": "x" * 500}, width=80)) == 80
    assert churn.backend_label(json.dumps({"server": "nginx", "x-backend": "web2"}), None) == "x-backend: web2"
    assert churn.backend_label(None, "10.0.0.7") == "ip 10.0.0.7"


def test_render_writes_png_files(data, tmp_path: Path) -> None:
    written = render_figures(data, tmp_path)
    assert {p.stem for p in written} == {n for n, f in all_figures(data).items() if f is not None}
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
