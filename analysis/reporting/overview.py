"""Section "Capture overview": what was captured (sources, clients, time span, hosts) before any
judgement, so a reader knows how much evidence stands behind the later sections."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from matplotlib.figure import Figure

from analysis.reporting import style
from analysis.reporting.data import ReportData

TOP_HOSTS = 15
OUTCOMES: dict[str, str] = {  # outcome -> colour
    "full response (2xx)": "#4c72b0",
    "not modified (304)": "#55a868",
    "from browser cache": "#ccb974",
    "other status / failed": "#c44e52",
}


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


def overview_table(data: ReportData) -> pd.DataFrame:
    """Two columns, ``what`` and ``value``: the capture in numbers."""
    ex = data.exchanges
    started = pd.to_numeric(ex["started"], errors="coerce").dropna()
    span = (
        f"{_when(started.min())} to {_when(started.max())} "
        f"({_duration(float(started.max() - started.min()))})"
        if not started.empty
        else "unknown (no timestamps)"
    )
    kinds = ex["source_kind"].value_counts()
    rows = [
        ("inputs", ", ".join(data.inputs) or "(none)"),
        ("sources (files, proxies, probes)", f"{ex['source'].nunique():,}"),
        ("source kinds", ", ".join(f"{k}: {n:,}" for k, n in kinds.items()) or "none"),
        ("clients", f"{ex['client'].nunique():,}"),
        ("time span", span),
        ("hosts", f"{ex['host'].nunique():,}"),
        ("exchanges", f"{len(ex):,}"),
        ("responses with an ETag", f"{int(ex['etag'].notna().sum()):,}"),
        ("responses with Last-Modified", f"{int(ex['last_modified'].notna().sum()):,}"),
        (
            "conditional requests (If-None-Match or If-Modified-Since)",
            f"{int((ex['req_if_none_match'].notna() | ex['req_if_modified_since'].notna()).sum()):,}",
        ),
        ("entries skipped by the readers", f"{len(data.skipped):,}"),
        ("files that could not be read", f"{len(data.errors):,}"),
    ]
    return pd.DataFrame(rows, columns=["what", "value"])


def outcomes_by_host(data: ReportData, top: int = TOP_HOSTS) -> pd.DataFrame:
    """Exchanges per host (the ``top`` busiest) split by outcome, for the overview bars."""
    ex = data.exchanges
    status = pd.to_numeric(ex["status"], errors="coerce")
    from_cache = ex["from_cache"].fillna(False).astype(bool)
    outcome = pd.Series("other status / failed", index=ex.index)
    outcome[status.between(200, 299)] = "full response (2xx)"
    outcome[status == 304] = "not modified (304)"
    outcome[from_cache] = "from browser cache"
    table = pd.crosstab(ex["host"].fillna("(no host)"), outcome)
    table = table.reindex(columns=[o for o in OUTCOMES if o in table.columns])
    return table.loc[table.sum(axis=1).sort_values(ascending=False).index[:top]]


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
    n_hosts = data.exchanges["host"].nunique()
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
