"""Section "Hosts": how each host uses validators (ETag strong or weak, Last-Modified) and how
its revalidations end (the 304 rate), from the detectors' per-host summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.reporting import style
from analysis.reporting.data import ReportData

TOP_HOSTS = 15
ADOPTION_COLOURS = {
    "ETag (strong)": "#4c72b0",
    "ETag (weak)": "#8fb0de",
    "Last-Modified": "#dd8452",
}


def adoption(data: ReportData, top: int | None = TOP_HOSTS) -> pd.DataFrame:
    """Per host (the ``top`` with most responses): shares of responses with a strong ETag, a
    weak ETag, Last-Modified (0..1), revalidations and their 304 rate."""
    h = data.hosts
    if h.empty or "responses" not in h.columns:
        return pd.DataFrame()
    h = h[h["responses"] > 0].sort_values("responses", ascending=False, kind="stable")
    if top is not None:
        h = h.head(top)
    etag, weak = h["etag_share"].astype(float), h["weak_etag_share"].astype(float)
    return pd.DataFrame({
        "host": h["host"],
        "responses": h["responses"].astype(int),
        "ETag (strong)": etag * (1 - weak),
        "ETag (weak)": etag * weak,
        "Last-Modified": h["last_modified_share"].astype(float),
        "revalidations": h["revalidations"].astype(int),
        "304 rate": pd.to_numeric(h["revalidation_304_rate"], errors="coerce"),
    }).reset_index(drop=True)


def hosts_table(data: ReportData) -> pd.DataFrame:
    """The per-host summary as a reader wants it: percentages, and only non-zero verdicts."""
    a = adoption(data, top=None)
    if a.empty:
        return a
    h = data.hosts.set_index("host").loc[a["host"]]
    out = pd.DataFrame({
        "host": a["host"],
        "responses": a["responses"],
        "ETag": _pct(h["etag_share"].to_numpy()),
        "of which weak": _pct(h["weak_etag_share"].to_numpy()),
        "Last-Modified": _pct(a["Last-Modified"]),
        "revalidations": a["revalidations"],
        "304 rate": _pct(a["304 rate"]),
    })
    verdicts = [v for v in style.VERDICTS if v in h.columns and h[v].sum() > 0]
    for v in verdicts:
        out[v] = h[v].to_numpy()
    severities = [s for s in style.SEVERITY_ORDER if s in h.columns]
    if severities:
        out["findings"] = h[severities].sum(axis=1).to_numpy()
    if "wasted_bytes" in h.columns:
        out["wasted bytes"] = h["wasted_bytes"].to_numpy()
    return out


def _pct(values: object) -> list[str]:
    return ["" if pd.isna(v) else f"{100 * float(v):.0f}%" for v in np.asarray(values, dtype=float)]


@style.styled
def adoption_figure(data: ReportData, top: int = TOP_HOSTS) -> Figure | None:
    """Two panels per host: validator adoption (grouped bars, % of responses) and the 304 rate
    of its revalidations (bars, with the number of revalidations written beside)."""
    a = adoption(data, top)
    if a.empty:
        return None
    n = len(a)
    fig, (left, right) = style.new_figure(
        (10.5, 1.9 + 0.42 * n), ncols=2, sharey=True, gridspec_kw={"width_ratios": [3, 2]}
    )
    y = np.arange(n)
    height = 0.26
    for i, (name, colour) in enumerate(ADOPTION_COLOURS.items()):
        left.barh(y + (i - 1) * height, 100 * a[name], height=height, color=colour, label=name)
    left.set_yticks(y, [style.shorten(h, 34) for h in a["host"]])
    left.invert_yaxis()
    left.set_xlim(0, 100)
    left.set_xlabel("% of the host's responses")
    left.set_ylabel("host")
    left.set_title("Validator adoption")
    left.grid(axis="y", visible=False)
    left.legend(loc="lower center", bbox_to_anchor=(0.5, 1.06), ncols=3, fontsize=9)

    rate = 100 * a["304 rate"].fillna(0)
    bars = right.barh(y, rate, height=0.6, color="#55a868")
    labels = [
        "no revalidations" if r == 0 else f"{100 * q:.0f}% of {r}" if pd.notna(q) else ""
        for r, q in zip(a["revalidations"], a["304 rate"], strict=True)
    ]
    right.bar_label(bars, labels=labels, padding=3, fontsize=8)
    right.set_xlim(0, 135)
    right.set_xticks([0, 25, 50, 75, 100])
    right.set_xlabel("% of revalidations answered 304")
    right.set_title("Revalidations answered 304")
    right.grid(axis="y", visible=False)
    right.tick_params(axis="y", left=False)
    more = data.hosts["host"].nunique()
    suffix = f" (the {n} of {more} hosts with most responses)" if more > n else ""
    fig.suptitle(f"Validators per host{suffix}", fontweight="bold")
    return fig


def figures(data: ReportData) -> dict[str, Figure | None]:
    return {"hosts_adoption": adoption_figure(data)}


def show(data: ReportData, *, max_rows: int = 30) -> None:
    """The section as the notebook shows it."""
    if data.empty or data.hosts.empty:
        style.nothing_to_report("the inputs hold no exchanges.")
        return
    fig = adoption_figure(data)
    if fig is None:
        style.nothing_to_report("no host sent a response (every exchange failed or was a "
                                "browser cache hit).")
        return
    style.show_figure(fig)
    style.show_table(hosts_table(data), max_rows=max_rows, caption="Per host")
