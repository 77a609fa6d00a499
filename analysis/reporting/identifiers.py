"""Section "Identifiers": resources whose validators behave like per-client identifiers, with
the detectors' evidence, and the picture that separates them from churn and stable resources:
distinct ETag values against clients, one point per resource, coloured by verdict.

Reading the plot: a resource on the diagonal gave every client its own value (identifier-like);
one along the bottom line gave everyone the same value (stable); churn sits low and to the right
(a few values shared by many clients); unstable resources sit above the diagonal (more values
than clients: a new value on every response).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.reporting import style
from analysis.reporting.data import ReportData

IDENTIFYING = ("identifier", "likely-identifier")


def etag_resources(data: ReportData) -> pd.DataFrame:
    """The detectors' resource rows about ETags (not Last-Modified), with their verdicts."""
    res = data.resources
    if res.empty:
        return res
    if "validator" in res.columns:
        res = res[res["validator"] == "etag"]
    return res


def evidence_text(evidence: object, width: int = 160) -> str:
    """An evidence dict as one short line of ``key=value`` pairs for a table cell."""
    if evidence is None or (isinstance(evidence, float) and np.isnan(evidence)):
        return ""
    if isinstance(evidence, str):
        try:
            evidence = json.loads(evidence)
        except ValueError:
            return style.shorten(evidence, width)
    if isinstance(evidence, dict):
        parts = []
        for key, value in evidence.items():
            shown = json.dumps(value, default=str) if isinstance(value, (list, dict)) else value
            parts.append(f"{key}={shown}")
        return style.shorten("; ".join(parts), width)
    return style.shorten(evidence, width)


def verdict_counts(data: ReportData) -> pd.DataFrame:
    """Resources per verdict (ETag and Last-Modified rows separately when both exist)."""
    res = data.resources
    if res.empty:
        return pd.DataFrame(columns=["verdict", "resources"])
    keys = ["validator", "verdict"] if "validator" in res.columns else ["verdict"]
    out = res.groupby(keys, dropna=False).size().rename("resources").reset_index()
    order = {v: i for i, v in enumerate(style.VERDICTS)}
    return out.sort_values(
        by=keys, key=lambda s: s.map(order).fillna(len(order)) if s.name == "verdict" else s
    )


def identifier_table(data: ReportData) -> pd.DataFrame:
    """Identifier and likely-identifier resources, most confident first, with evidence."""
    res = data.resources
    if res.empty:
        return pd.DataFrame()
    hits = res[res["verdict"].isin(IDENTIFYING)].copy()
    if hits.empty:
        return pd.DataFrame()
    hits = hits.sort_values(["verdict", "confidence"], ascending=[True, False])
    cols = [c for c in ("url", "resource", "validator", "host", "verdict", "confidence",
                        "clients", "values", "scope", "sites", "explanation")
            if c in hits.columns]
    out = hits[cols].copy()
    if "url" in out.columns and "resource" in out.columns:
        out = out.drop(columns="resource")
    out["evidence"] = hits["evidence"].map(evidence_text)
    return out


@style.styled
def values_vs_clients_figure(data: ReportData) -> Figure | None:
    """Scatter, log-log: clients (x) against distinct ETag values (y), colour by verdict."""
    res = etag_resources(data)
    if res.empty or not {"clients", "values", "verdict"} <= set(res.columns):
        return None
    pts = res[["clients", "values", "verdict"]].dropna(subset=["clients", "values"])
    if pts.empty:
        return None
    # Many resources share a point (1 client, 1 value): one bubble per (clients, values,
    # verdict), its area growing with the number of resources, labelled with that number.
    # Verdicts sharing a point are nudged apart in log space so none hides another.
    pts = pts.assign(clients=pts["clients"].astype(int), values=pts["values"].astype(int))
    bubbles = pts.groupby(["clients", "values", "verdict"]).size().rename("n").reset_index()
    fig, ax = style.new_figure((10.0, 6.0))
    top = max(float(bubbles["clients"].max()), float(bubbles["values"].max()), 2.0) * 1.6
    ax.plot([0.8, top], [0.8, top], ls="--", lw=1, color="#555555",
            label="one value per client (diagonal)")
    ax.axhline(1, ls=":", lw=1, color="#555555", label="one value for everyone")
    present = set(bubbles["verdict"].astype(str))
    order = [v for v in style.VERDICTS if v in present] + sorted(present - set(style.VERDICTS))
    for i, verdict in enumerate(order):
        b = bubbles[bubbles["verdict"] == verdict]
        nudge = np.exp(0.05 * (i - (len(order) - 1) / 2))
        x, y = b["clients"] * nudge, b["values"] * nudge
        sizes = 40 + 30 * np.sqrt(b["n"])
        ax.scatter(x, y, s=sizes, alpha=0.75, edgecolor="white",
                   linewidth=0.6, color=style.VERDICT_COLOURS.get(verdict, style.OTHER_COLOUR),
                   label=f"{verdict} ({int(b['n'].sum())})", zorder=3)
        for xi, yi, n, size in zip(x, y, b["n"], sizes, strict=True):
            if n > 1:  # beside the bubble's edge (its diameter in points is sqrt(size))
                ax.annotate(f"{n}", (xi, yi), xytext=(np.sqrt(size) / 2 + 2, 0),
                            textcoords="offset points", va="center", fontsize=8,
                            color="#333333")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(0.8, top)
    ax.set_ylim(0.8, top)
    _integer_ticks(ax)
    ax.set_xlabel("clients that fetched the resource")
    ax.set_ylabel("distinct ETag values seen")
    ax.set_title("Distinct ETag values against clients, one point per resource")
    # outside the axes: the upper left is where unstable resources sit
    legend = fig.legend(title="verdict (resources)", loc="outside right upper", fontsize=9)
    for handle in legend.legend_handles:
        if hasattr(handle, "set_sizes"):
            handle.set_sizes([50])
    ax.text(1.0, -0.11, "bubble area and label: number of resources at that point",
            transform=ax.transAxes, ha="right", fontsize=8, color="#555555")
    return fig


def _integer_ticks(ax: object) -> None:
    """Plain 1, 2, 5, 10, ... tick labels on log axes (no 10^0 notation)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    for axis in (ax.xaxis, ax.yaxis):  # type: ignore[attr-defined]
        lo, hi = axis.get_view_interval()
        ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000,
                             100000, 1000000) if lo <= t <= hi]
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())


def figures(data: ReportData) -> dict[str, Figure | None]:
    return {"identifiers_values_vs_clients": values_vs_clients_figure(data)}


def show(data: ReportData, *, max_rows: int = 30) -> None:
    """The section as the notebook shows it."""
    if data.empty:
        style.nothing_to_report("the inputs hold no exchanges.")
        return
    if data.resources.empty:
        style.nothing_to_report("no resource carried a validator, so there is nothing to judge.")
        return
    table = identifier_table(data)
    if table.empty:
        style.say(
            "No resource was judged an identifier or a likely identifier: no server handed "
            "clients their own stable validator."
        )
    else:
        style.show_table(table, max_rows=max_rows,
                         caption="Resources whose validators act as identifiers")
    fig = values_vs_clients_figure(data)
    if fig is None:
        style.nothing_to_report("no resource carried an ETag.")
    else:
        style.show_figure(fig)
    style.show_table(verdict_counts(data), caption="Resources per verdict")
