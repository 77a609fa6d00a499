"""`etagwatch report` on a result dataset (analyze --parquet DIR): every section's tables and
the headline equal those of the report on the store itself, while only the exchanges of the
identifier and churn resources are read (partition by partition from the exchange dataset)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from support import ingest_into

from analysis.cli import main
from analysis.detectors.prepare import strip_query_params
from analysis.reporting import churn, conformance, headline, hosts, identifiers, overview, story
from analysis.reporting.data import (
    DETAIL_VERDICTS,
    detail_exchanges,
    load_report_data,
    load_results_data,
)
from analysis.reporting.third_parties import identifying_third_parties

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("results")
    store, ds, res = tmp / "s.sqlite", tmp / "ds", tmp / "res"
    ingest_into(store, [ROOT / "sample_captures"])
    assert main(["export", str(store), "--parquet", str(ds), "-q"]) == 0
    assert main(["analyze", str(ds), "--parquet", str(res), "-q"]) == 0
    return store, ds, res


def _equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal values (a missing value is missing whether None, NaN or NA)."""
    def norm(f: pd.DataFrame) -> pd.DataFrame:
        f = f.reset_index(drop=True).astype(object)
        return f.where(f.notna(), None)

    pd.testing.assert_frame_equal(norm(a), norm(b))


def test_sections_equal_the_report_on_the_store(made):
    store, _, res = made
    full = load_report_data([store])
    scaled = load_results_data(str(res))
    # only the exchanges of the resources the detail sections show, and all of those
    keys = set(full.resources[full.resources["verdict"].isin(DETAIL_VERDICTS)]["url"])
    assert keys
    wanted = full.exchanges[strip_query_params(full.exchanges["url"].astype(object), ())
                            .isin(keys)]
    assert 0 < len(scaled.exchanges) == len(wanted) < len(full.exchanges)
    _equal(scaled.exchanges.sort_values("id"), wanted.sort_values("id"))
    assert scaled.detail is None

    table, expected = overview.overview_table(scaled), overview.overview_table(full)
    _equal(table[table["what"] != "inputs"], expected[expected["what"] != "inputs"])
    _equal(overview.outcomes_by_host(scaled), overview.outcomes_by_host(full))
    assert headline.headline_html(scaled) == headline.headline_html(full)
    _equal(identifiers.identifier_table(scaled), identifiers.identifier_table(full))
    _equal(churn.churn_table(scaled), churn.churn_table(full))
    _equal(identifying_third_parties(scaled), identifying_third_parties(full))
    _equal(conformance.by_rule(scaled), conformance.by_rule(full))
    _equal(hosts.hosts_table(scaled), hosts.hosts_table(full))
    for url in keys:
        _equal(story.resource_story(scaled, url), story.resource_story(full, url))


def test_the_detail_rows_are_capped(made):
    _, ds, res = made
    data = load_results_data(str(res))
    keys = list(data.resources[data.resources["verdict"].isin(DETAIL_VERDICTS)]["url"])
    frame, rows, complete = detail_exchanges([str(ds)], keys, (), limit=1)
    assert not complete and rows == len(frame) >= 1
    assert rows < len(data.exchanges)


@pytest.mark.timeout(300)
def test_report_command_on_a_result_dataset(made, tmp_path):
    _, _, res = made
    html = tmp_path / "r.html"
    assert main(["report", str(res), "-o", str(html), "-q"]) == 0
    text = html.read_text()
    data = load_results_data(str(res))
    assert f"{data.summary['exchanges']:,} exchanges from" in text
    assert "Identifiers" in text and "Churn" in text and "Traceback" not in text
