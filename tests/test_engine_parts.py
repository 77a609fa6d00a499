"""Parts of whole hosts, analysed apart and merged, give run_all's answer on the whole, byte for
byte: the merge both the worker processes (`analyze --jobs N`) and the Dask engine rely on
(analysis.engine.processes.merge, analysis.engine.combine). Random stores of several hosts mix
the scenarios that make every verdict and finding, so ties in counts and orders come up."""

from __future__ import annotations

import exchange_factory as xf
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.detectors import run_all
from analysis.detectors.settled import settle
from analysis.engine.combine import distinct_values
from analysis.engine.processes import Part, host_groups, merge
from analysis.report_json import encode_analysis


def _scenario(kind: str, host: str, n: int) -> list:
    url = f"https://{host}/r{n}"
    if kind == "tracker":
        return xf.tracker(2 + n % 2, url=url)
    if kind == "churn":
        return xf.load_balanced(2, 2, url=url)
    if kind == "random":
        return xf.random_per_response(url=url)
    if kind == "digest":
        return xf.digest_origin(2, url=url)
    if kind == "visits":
        return xf.visits(f"c{n % 3}", url, f'"v{n}"')
    if kind == "bare-304":  # unconditional-304
        return [xf.exchange(client="c0", url=url, status=304, etag=f'"b{n}"')]
    if kind == "bad-etag":  # etag-syntax
        return [xf.exchange(client="c1", url=url, etag=f"bad{n}",
                            etag_violations='["entity-tag not in double quotes"]')]
    # a 200 to a matching If-None-Match: missed-304
    return [xf.exchange(client="c2", url=url, etag=f'"m{n}"', inm=f'"m{n}"')]


KINDS = ["tracker", "churn", "random", "digest", "visits", "bare-304", "bad-etag", "missed-304"]
hosts = st.lists(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4), min_size=2, max_size=6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hosts, st.integers(min_value=2, max_value=4))
def test_parts_of_whole_hosts_merge_to_the_whole(layout: list[list[str]], nparts: int) -> None:
    records = [r for h, kinds in enumerate(layout) for n, kind in enumerate(kinds)
               for r in _scenario(kind, f"h{h}.example", n)]
    frame = xf.frame(records).assign(id=range(len(records)))
    whole = settle(run_all(frame), None)
    groups = host_groups(frame["host"].value_counts().to_dict(), nparts)
    parts = []
    for group in groups:
        sub = frame[frame["host"].isin(group)].reset_index(drop=True)
        parts.append(Part(settle(run_all(sub), None), len(sub), distinct_values(sub)))
    merged, _, _ = merge(parts, ())
    assert encode_analysis(merged) == encode_analysis(whole)
    assert len(groups) >= 2 or frame["host"].nunique() < 2


def test_the_scenarios_make_findings_and_verdicts() -> None:
    """The strategy reaches what the test is for: findings of several rules, several verdicts."""
    records = [r for n, kind in enumerate(KINDS) for r in _scenario(kind, "h.example", n)]
    found = run_all(xf.frame(records))
    assert {"unconditional-304", "etag-syntax", "missed-304"} <= set(found.findings["rule"])
    assert {"identifier", "churn", "unstable", "stable"} <= set(found.resources["verdict"])
    assert isinstance(found.resources, pd.DataFrame)
