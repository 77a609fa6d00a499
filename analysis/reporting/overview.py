"""Section "Capture overview": what was captured (sources, clients, time span, hosts) before any
judgement, so a reader knows how much evidence stands behind the later sections."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from matplotlib.figure import Figure

from analysis.engine.overview import OUTCOMES as OUTCOME_NAMES
from analysis.engine.overview import host_outcomes, overview_counts
from analysis.reporting import style
from analysis.reporting.data import ReportData

TOP_HOSTS = 15
OUTCOMES: dict[str, str] = dict(zip(OUTCOME_NAMES, (  # outcome -> colour
    "#4c72b0", "#55a868", "#ccb974", "#c44e52"), strict=True))


def _when(ts: float | None) -> str:
    if ts is None or pd.isna(ts):
        return "unknown"
    return datetime.fromtimestamp(float(ts), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _counts(data: ReportData) -> dict:
    """The capture's counts: from the result dataset when the report reads one, else
    computed from the exchanges (the same function the Dask engine runs per partition)."""
    if data.overview is not None:
        return {**data.overview, "clients": data.summary.get("clients", 0),
                "hosts": data.summary.get("hosts", 0)}
    ex = data.exchanges
    return {**overview_counts(ex), "sources": ex["source"].nunique(),
            "clients": ex["client"].nunique(), "hosts": ex["host"].nunique()}


def overview_table(data: ReportData) -> pd.DataFrame:
    """Two columns, ``what`` and ``value``: the capture in numbers."""
    c = _counts(data)
    lo, hi = c.get("started_min"), c.get("started_max")
    span = (
        f"{_when(lo)} to {_when(hi)} ({_duration(float(hi - lo))})"
        if lo is not None and hi is not None
        else "unknown (no timestamps)"
    )
    kinds = sorted(c.get("source_kinds", {}).items(), key=lambda kv: -kv[1])
    rows = [
        ("inputs", ", ".join(data.inputs) or "(none)"),
        ("sources (files, proxies, probes)", f"{c.get('sources', 0):,}"),
        ("source kinds", ", ".join(f"{k}: {n:,}" for k, n in kinds) or "none"),
        ("clients", f"{c['clients']:,}"),
        ("time span", span),
        ("hosts", f"{c['hosts']:,}"),
        ("exchanges", f"{c['exchanges']:,}"),
        ("responses with an ETag", f"{c['etag']:,}"),
        ("responses with Last-Modified", f"{c['last_modified']:,}"),
        ("conditional requests (If-None-Match or If-Modified-Since)", f"{c['conditional']:,}"),
        ("entries skipped by the readers", f"{len(data.skipped):,}"),
        ("files that could not be read", f"{len(data.errors):,}"),
    ]
    if data.detail:
        rows.append(("exchanges read for the detail sections", data.detail))
    return pd.DataFrame(rows, columns=["what", "value"])


def outcomes_by_host(data: ReportData, top: int = TOP_HOSTS) -> pd.DataFrame:
    """Exchanges per host (the ``top`` busiest) split by outcome, for the overview bars."""
    table = data.outcomes if data.outcomes is not None else host_outcomes(data.exchanges)
    table = table.set_index("host")
    table = table.loc[:, (table != 0).any()]
    return table.loc[table.sum(axis=1).sort_values(ascending=False, kind="stable").index[:top]]


@style.styled
def hosts_figure(data: ReportData, top: int = TOP_HOSTS) -> Figure | None:
    """Horizontal bars: the busiest hosts and how their exchanges ended."""
    if data.empty:
        return None
    table = outcomes_by_host(data, top)
    fig, ax = style.new_figure((10.0, 1.6 + 0.32 * len(table)))
    left = pd.Series(0.0, index=table.index)
    labels = [style.shorten(h, 40) for h in table.index]
    for outcome in table.columns:
        ax.barh(labels, table[outcome], left=left, color=OUTCOMES[outcome], label=outcome)
        left += table[outcome]
    ax.invert_yaxis()
    ax.set_xlabel("exchanges")
    ax.set_ylabel("host")
    ax.grid(axis="y", visible=False)
    n_hosts = _counts(data)["hosts"] if data.overview is not None else data.exchanges["host"].nunique()
    more = f" (busiest {len(table)} of {n_hosts})" if n_hosts > len(table) else ""
    ax.set_title(f"Exchanges per host{more}")
    fig.legend(loc="outside lower center", ncols=len(table.columns), fontsize=9)
    return fig


def figures(data: ReportData) -> dict[str, Figure | None]:
    return {"overview_hosts": hosts_figure(data)}


def show(data: ReportData) -> None:
    """The section as the notebook shows it."""
    if data.empty:
        style.nothing_to_report(
            "the inputs hold no exchanges"
            + (f" ({len(data.skipped)} entries were skipped by the readers)" if len(data.skipped) else "")
            + "."
        )
        if len(data.errors):
            style.show_table(data.errors, caption="Files that could not be read")
        return
    style.show_table(overview_table(data), caption="The capture in numbers")
    style.show_figure(hosts_figure(data))
    if len(data.skipped):
        reasons = data.skipped.groupby("reason").size().rename("entries").reset_index()
        style.show_table(reasons.sort_values("entries", ascending=False),
                         caption="Entries the readers skipped, by reason")
    if len(data.errors):
        style.show_table(data.errors, caption="Files that could not be read")
