"""Section "Churn": resources whose identical content came under several validators, each value
followed over time and per backend, and the bytes that churn cost each host.

The timeline is drawn from the exchanges of the resources the detectors judged ``churn``: one
row per ETag value, one colour per backend, filled markers for full responses and hollow ones
for 304s. Values that alternate with the backend and never settle are the mark of churn.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from matplotlib.figure import Figure

from analysis.detectors.backends import backend_key, describe
from analysis.detectors.evidence import human_bytes
from analysis.reporting import style
from analysis.reporting.data import ReportData

MAX_PANELS = 4
MAX_BACKENDS = 8
LEGEND_LABEL = 40  # characters of a backend label in the legend
BACKEND_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                   "#17becf")


def churn_resources(data: ReportData) -> pd.DataFrame:
    """The detectors' churn rows, costliest first (wasted bytes, then exchanges)."""
    res = data.resources
    if res.empty or "verdict" not in res.columns:
        return res.iloc[0:0]
    hits = res[res["verdict"] == "churn"].copy()
    sort = [c for c in ("wasted_bytes", "exchanges") if c in hits.columns]
    return hits.sort_values(sort, ascending=False) if sort else hits


def churn_table(data: ReportData) -> pd.DataFrame:
    """One line per churn resource: how many values, clients, backends, the cause and cost."""
    from analysis.reporting.identifiers import evidence_text

    hits = churn_resources(data)
    if hits.empty:
        return pd.DataFrame()
    cols = [c for c in ("url", "host", "confidence", "values", "clients", "backends",
                        "wasted_revalidations", "wasted_bytes", "explanation")
            if c in hits.columns]
    out = hits[cols].copy()
    out["evidence"] = hits["evidence"].map(evidence_text)
    return out


CHURN_COLUMNS = ("url", "host", "confidence", "validator", "values", "clients", "backends",
                 "wasted_revalidations", "wasted")


def backend_labels(backends: Iterable[object], server_ips: Iterable[object]) -> list[str]:
    """Labels for the responses of one resource, named as the terminal report and the JSON
    evidence name them (analysis.detectors.backends.describe: the most specific hint, kept
    distinct when two backends share it)."""
    keys = [backend_key(b, ip) for b, ip in zip(backends, server_ips, strict=True)]
    described = describe(keys)
    return [str(described[k]["label"]) for k in keys]


def backend_label(backend: object, server_ip: object) -> str:
    """A name for whoever answered one response (see backend_labels)."""
    return backend_labels([backend], [server_ip])[0]


def resource_exchanges(data: ReportData, resource: str) -> pd.DataFrame:
    """Exchanges of one resource (URL after the report's ignored query parameters) that carry
    or revalidate an ETag, with the value shown and the backend label."""
    from analysis.detectors.prepare import strip_query_params

    ex = data.exchanges
    keys = strip_query_params(ex["url"].astype(object), data.ignore_params)
    sub = ex[keys == resource]
    status = pd.to_numeric(sub["status"], errors="coerce")
    value = sub["etag"].where(sub["etag"].notna(), sub["req_if_none_match"].where(status == 304))
    sub = sub.assign(value=value, status=status).dropna(subset=["value"])
    sub = sub[sub["status"].between(200, 299) | (sub["status"] == 304)]
    labels = backend_labels(sub["backend"], sub["server_ip"])
    return sub.assign(backend_label=labels).sort_values("started")


@style.styled
def timeline_figure(data: ReportData, max_panels: int = MAX_PANELS) -> Figure | None:
    """Per churn resource (the costliest few): ETag values over time, coloured by backend."""
    hits = churn_resources(data)
    if "validator" in hits.columns:
        hits = hits[hits["validator"] == "etag"]
    key = "resource" if "resource" in hits.columns else "url"
    panels = []
    for resource in hits[key].drop_duplicates().head(max_panels):
        sub = resource_exchanges(data, resource)
        if not sub.empty:
            panels.append((resource, sub))
    if not panels:
        return None
    heights = [max(1.4, 0.45 * sub["value"].nunique() + 0.9) for _, sub in panels]
    fig, axes = style.new_figure((10.0, sum(heights) + 0.8), nrows=len(panels), squeeze=False,
                                 gridspec_kw={"height_ratios": heights})
    all_labels = sorted({lbl for _, sub in panels for lbl in sub["backend_label"]})
    spans = [float(sub["started"].max() - sub["started"].min()) for _, sub in panels]
    unit, per = ("seconds", 1.0) if max(spans, default=0.0) < 120 else ("minutes", 60.0)
    colours = {lbl: BACKEND_COLOURS[i % len(BACKEND_COLOURS)] for i, lbl in enumerate(all_labels)}
    for ax, (resource, sub) in zip(axes[:, 0], panels, strict=True):
        t0 = float(sub["started"].min()) if sub["started"].notna().any() else 0.0
        elapsed = (pd.to_numeric(sub["started"], errors="coerce") - t0) / per
        values = list(dict.fromkeys(sub["value"]))
        rows = sub["value"].map({v: i for i, v in enumerate(values)})
        for label in dict.fromkeys(sub["backend_label"]):
            for is304 in (False, True):
                mask = ((sub["backend_label"] == label) & ((sub["status"] == 304) == is304)).to_numpy()
                if not mask.any():
                    continue
                colour = colours[label]
                ax.scatter(elapsed[mask], rows[mask], s=54, linewidth=1.5, zorder=3,
                           color="none" if is304 else colour, edgecolor=colour)
        ax.set_yticks(range(len(values)), [style.shorten(v, 30) for v in values], fontsize=8)
        ax.set_ylim(-0.6, len(values) - 0.4)
        ax.set_title(style.shorten(resource, 90), fontsize=10, loc="left")
        ax.set_ylabel("ETag value", fontsize=9)
        ax.grid(axis="y", visible=False)
    axes[-1, 0].set_xlabel(f"{unit} since the resource's first exchange")
    handles = [_marker(colours[lbl], filled=True, label=style.shorten(lbl, LEGEND_LABEL))
               for lbl in all_labels[:MAX_BACKENDS]]
    handles += [_marker("#444444", filled=True, label="full response (2xx)"),
                _marker("#444444", filled=False, label="304 Not Modified")]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, title="backend / outcome")
    fig.suptitle("Churn: ETag values per backend over time", fontweight="bold")
    return fig


def _marker(colour: str, *, filled: bool, label: str) -> object:
    from matplotlib.lines import Line2D

    return Line2D([], [], ls="", marker="o", markersize=7, markeredgewidth=1.5, label=label,
                  color=colour, markerfacecolor=colour if filled else "none")


def wasted_by_host(data: ReportData) -> pd.Series:
    """Wasted bytes per host (hosts with none left out), largest first."""
    hosts = data.hosts
    if not hosts.empty and {"host", "wasted_bytes"} <= set(hosts.columns):
        series = hosts.set_index("host")["wasted_bytes"]
    elif not data.resources.empty and "wasted_bytes" in data.resources.columns:
        series = data.resources.groupby("host")["wasted_bytes"].sum()
    else:
        return pd.Series(dtype=float)
    series = pd.to_numeric(series, errors="coerce").fillna(0)
    return series[series > 0].sort_values(ascending=False)


@style.styled
def wasted_bytes_figure(data: ReportData, top: int = 15) -> Figure | None:
    """Horizontal bars: bytes resent because validators churned, per host."""
    wasted = wasted_by_host(data).head(top)
    if wasted.empty:
        return None
    fig, ax = style.new_figure((10.0, 1.3 + 0.34 * len(wasted)))
    labels = [style.shorten(h, 40) for h in wasted.index]
    bars = ax.barh(labels, wasted.to_numpy(), color="#1f77b4")
    ax.bar_label(bars, labels=[human_bytes(v) for v in wasted], padding=3, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, float(wasted.max()) * 1.18)
    ax.set_xlabel("bytes resent for content the client already had")
    ax.set_ylabel("host")
    ax.grid(axis="y", visible=False)
    ax.xaxis.set_major_formatter(lambda v, _pos: human_bytes(v))
    ax.set_title("Wasted bytes per host (revalidations answered 200 with the same body)")
    return fig


def figures(data: ReportData) -> dict[str, Figure | None]:
    return {"churn_timeline": timeline_figure(data), "churn_wasted_bytes": wasted_bytes_figure(data)}


def show(data: ReportData, *, max_rows: int = 30) -> None:
    """The section as the notebook shows it."""
    from analysis.reporting.evidence_rows import show_resources

    if data.empty:
        style.nothing_to_report("the inputs hold no exchanges.")
        return
    if show_resources(
        churn_resources(data), CHURN_COLUMNS, max_rows=max_rows,
        empty="no resource served identical content under several validators.",
        caption="Resources with churning validators, costliest first, with their evidence",
    ):
        fig = timeline_figure(data)
        if fig is not None:
            style.show_figure(fig)
    fig = wasted_bytes_figure(data)
    if fig is None:
        style.say("No bytes were wasted: no revalidation was answered with a body the client "
                  "already had under another validator.")
    else:
        total = wasted_by_host(data).sum()
        style.say(f"In all, **{human_bytes(float(total))}** were resent for content clients already had.")
        style.show_figure(fig)


