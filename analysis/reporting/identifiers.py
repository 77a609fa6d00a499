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


def evidence_text(evidence: object, width: int | None = None) -> str:
    """An evidence dict as one line of ``key=value`` pairs, in full unless ``width`` is given
    (then cut in the middle): a table cell wraps it, a cut would hide the argument."""
    def cut(text: str) -> str:
        return text if width is None else style.shorten(text, width)

    if evidence is None or (isinstance(evidence, float) and np.isnan(evidence)):
        return ""
    if isinstance(evidence, str):
        try:
            evidence = json.loads(evidence)
        except ValueError:
            return cut(evidence)
    if isinstance(evidence, dict):
        parts = []
        for key, value in evidence.items():
            shown = json.dumps(value, default=str) if isinstance(value, (list, dict)) else value
            parts.append(f"{key}={shown}")
        return cut("; ".join(parts))
    return cut(str(evidence))


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


def identifying(data: ReportData) -> pd.DataFrame:
    """Identifier and likely-identifier resource rows, identifiers first, most confident first."""
    res = data.resources
    if res.empty or "verdict" not in res.columns:
        return res.iloc[0:0]
    hits = res[res["verdict"].isin(IDENTIFYING)]
    rank = hits["verdict"].map({v: i for i, v in enumerate(IDENTIFYING)})
    return (hits.assign(_rank=rank).sort_values(["_rank", "confidence"], ascending=[True, False])
            .drop(columns="_rank"))


def identifier_table(data: ReportData) -> pd.DataFrame:
    """Identifier and likely-identifier resources, most confident first, with evidence."""
    hits = identifying(data)
    if hits.empty:
        return pd.DataFrame()
    cols = [c for c in ("url", "resource", "validator", "host", "verdict", "confidence",
                        "clients", "values", "scope", "sites", "explanation")
            if c in hits.columns]
    out = hits[cols].copy()
    if "url" in out.columns and "resource" in out.columns:
        out = out.drop(columns="resource")
    out["evidence"] = hits["evidence"].map(evidence_text)
    return out


#: How the scatter draws resources that share a point (its caption in the report).
SCATTER_CAPTION = (
    "Each bubble sits exactly at its resources' numbers of clients (x) and distinct ETag "
    "values (y): nothing is jittered. Resources with the same numbers share one bubble, whose "
    "area grows with how many they are; the number beside it counts them. A bubble shared by "
    "resources of different verdicts is split into wedges, one per verdict, each wedge's angle "
    "in proportion to its resources."
)


def scatter_points(data: ReportData) -> pd.DataFrame:
    """One row per (clients, values, verdict) of the ETag resources, with ``n`` resources."""
    res = etag_resources(data)
    if res.empty or not {"clients", "values", "verdict"} <= set(res.columns):
        return pd.DataFrame(columns=["clients", "values", "verdict", "n"])
    pts = res[["clients", "values", "verdict"]].dropna(subset=["clients", "values"])
    pts = pts.assign(clients=pts["clients"].astype(int), values=pts["values"].astype(int),
                     verdict=pts["verdict"].astype(str))
    return pts.groupby(["clients", "values", "verdict"]).size().rename("n").reset_index()


def _wedge(start: float, stop: float) -> object:
    """A marker path: the wedge from ``start`` to ``stop`` (fractions of a turn) of a circle of
    diameter 1, the size of scatter's own circle marker; the whole circle for 0..1."""
    from matplotlib.path import Path as MplPath
    from matplotlib.transforms import Affine2D

    if stop - start >= 1.0:
        path = MplPath.unit_circle()
    else:
        path = MplPath.wedge(90 + 360 * start, 90 + 360 * stop)
    return path.transformed(Affine2D().scale(0.5))


@style.styled
def values_vs_clients_figure(data: ReportData) -> Figure | None:
    """Scatter, log-log: clients (x) against distinct ETag values (y), colour by verdict; each
    bubble exactly at its values (see SCATTER_CAPTION for how shared points are drawn)."""
    bubbles = scatter_points(data)
    if bubbles.empty:
        return None
    present = set(bubbles["verdict"])
    order = [v for v in style.VERDICTS if v in present] + sorted(present - set(style.VERDICTS))
    rank = {v: i for i, v in enumerate(order)}
    bubbles = bubbles.assign(_rank=bubbles["verdict"].map(rank)).sort_values(
        ["clients", "values", "_rank"])
    total = bubbles.groupby(["clients", "values"])["n"].transform("sum")
    before = bubbles.groupby(["clients", "values"])["n"].cumsum() - bubbles["n"]
    bubbles = bubbles.assign(total=total, start=before / total, stop=(before + bubbles["n"]) / total)

    fig, ax = style.new_figure((10.0, 6.0))
    top = max(float(bubbles["clients"].max()), float(bubbles["values"].max()), 2.0) * 1.6
    ax.plot([0.8, top], [0.8, top], ls="--", lw=1, color="#555555",
            label="one value per client (diagonal)")
    ax.axhline(1, ls=":", lw=1, color="#555555", label="one value for everyone")
    handles = list(ax.get_lines())
    for verdict in order:
        b = bubbles[bubbles["verdict"] == verdict]
        colour = style.VERDICT_COLOURS.get(verdict, style.OTHER_COLOUR)
        # one collection per verdict, a marker path per point (a whole circle or its wedge)
        coll = ax.scatter(b["clients"], b["values"], s=_bubble_size(b["total"]), alpha=0.85,
                          edgecolor="white", linewidth=0.6, color=colour,
                          label=f"{verdict} ({int(b['n'].sum())})", zorder=3)
        coll.set_paths([_wedge(a, z) for a, z in zip(b["start"], b["stop"], strict=True)])
        handles.append(_legend_marker(colour, coll.get_label()))
    points = bubbles.drop_duplicates(["clients", "values"])
    for x, y, n in zip(points["clients"], points["values"], points["total"], strict=True):
        if n > 1:  # beside the bubble's edge (its diameter in points is sqrt(size))
            radius = float(np.sqrt(_bubble_size(pd.Series([n])).iloc[0])) / 2
            ax.annotate(f"{int(n)}", (x, y), xytext=(radius + 2, 0), textcoords="offset points",
                        va="center", fontsize=8, color="#333333")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(0.8, top)
    ax.set_ylim(0.8, top)
    _integer_ticks(ax)
    ax.set_xlabel("clients that fetched the resource")
    ax.set_ylabel("distinct ETag values seen")
    ax.set_title("Distinct ETag values against clients, one point per resource")
    # outside the axes: the upper left is where unstable resources sit
    fig.legend(handles=handles, title="verdict (resources)", loc="outside right upper",
               fontsize=9)
    return fig


def _bubble_size(n: pd.Series) -> pd.Series:
    """Marker area (points squared) for a bubble of ``n`` resources."""
    return 90 + 70 * np.sqrt(n.astype(float))


def _legend_marker(colour: str, label: str) -> object:
    from matplotlib.lines import Line2D

    return Line2D([], [], ls="", marker="o", markersize=8, color=colour, label=label)


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


def per_client_html(data: ReportData, keys: pd.Series, row: pd.Series, max_rows: int) -> str:
    """The per-client story of one identifier resource, as an HTML table (escaped)."""
    from analysis.reporting.evidence_rows import abbreviate
    from analysis.reporting.story import client_timeline, resource_story

    tale = resource_story(data, str(row["url"]), keys=keys)
    timeline = client_timeline(tale, str(row.get("validator") or "etag"))
    if timeline.empty:
        return ""
    shown = timeline.head(max_rows).copy()
    shown["values_held"] = style.markup(
        shown.index, [" → ".join(abbreviate(v) for v in vs) or "none" for vs in shown["values_held"]])
    shown = shown.rename(columns={"values_held": "value held", "n304": "304s",
                                  "responses_2xx": "full responses", "times_304": "304 at (UTC)",
                                  "sequence": "statuses in order"})
    note = (f"<p><em>{len(timeline) - max_rows} more clients not shown.</em></p>"
            if len(timeline) > max_rows else "")
    return ("<p>Per client: the value it held, when it was first and last seen, and when the "
            "server answered 304 for it.</p>" + style.html_table(shown) + note)


IDENTIFIER_COLUMNS = ("url", "host", "verdict", "confidence", "validator", "clients", "values",
                      "304s", "scope", "sites")


def show(data: ReportData, *, max_rows: int = 30) -> None:
    """The section as the notebook shows it."""
    from analysis.reporting.evidence_rows import resource_table_html
    from analysis.reporting.third_parties import resource_keys

    if data.empty:
        style.nothing_to_report("the inputs hold no exchanges.")
        return
    if data.resources.empty:
        style.nothing_to_report("no resource carried a validator, so there is nothing to judge.")
        return
    hits = identifying(data)
    if hits.empty:
        style.say(
            "No resource was judged an identifier or a likely identifier: no server handed "
            "clients their own stable validator."
        )
    else:
        keys = resource_keys(data)
        style.show_html(resource_table_html(
            hits.rename(columns={"n304": "304s"}), IDENTIFIER_COLUMNS, max_rows=max_rows,
            caption="Resources whose validators act as identifiers, with their evidence",
            extra=lambda row: per_client_html(data, keys, row, max_rows)))
    fig = values_vs_clients_figure(data)
    if fig is None:
        style.nothing_to_report("no resource carried an ETag.")
    else:
        style.show_figure(fig, caption=SCATTER_CAPTION)
    style.show_table(verdict_counts(data), caption="Resources per verdict")
