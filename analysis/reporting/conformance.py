"""Section "Conformance": the detectors' RFC 9110 findings, counted by rule and host, with one
example exchange per rule and host so a reader can go straight to the evidence."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from analysis.reporting import style
from analysis.reporting.data import ReportData

TOP_RULES = 20
TOP_HOSTS = 12


def by_rule(data: ReportData) -> pd.DataFrame:
    """Findings per rule (severity, RFC section, hosts, count, one example), worst first."""
    from analysis.reporting.identifiers import evidence_text

    f = data.findings
    if f.empty:
        return pd.DataFrame()
    g = f.groupby("rule", sort=False)
    out = g.agg(
        severity=("severity", "first"),
        rfc=("rfc", "first"),
        findings=("rule", "size"),
        hosts=("host", "nunique"),
        example=("source", "first"),
    )
    out["example evidence"] = g["evidence"].first().map(evidence_text)  # in full: it wraps
    rank = out["severity"].map({s: i for i, s in enumerate(style.SEVERITY_ORDER)})
    out = out.assign(_rank=rank.fillna(len(style.SEVERITY_ORDER)))
    out = out.sort_values(["_rank", "findings"], ascending=[True, False]).drop(columns="_rank")
    return out.reset_index()


def counts(data: ReportData, top_rules: int = TOP_RULES, top_hosts: int = TOP_HOSTS) -> pd.DataFrame:
    """Rules (rows, labelled with severity) by hosts (columns): finding counts; the busiest
    rules and hosts only, the rest summed into "other hosts"."""
    f = data.findings
    if f.empty:
        return pd.DataFrame()
    f = f.assign(host=f["host"].fillna("(no host)"),
                 label=f["rule"].astype(str) + " (" + f["severity"].astype(str) + ")")
    table = pd.crosstab(f["label"], f["host"])
    hosts = table.sum().sort_values(ascending=False).index
    if len(hosts) > top_hosts:
        keep = list(hosts[: top_hosts - 1])
        table = table[keep].assign(**{"other hosts": table[hosts[top_hosts - 1:]].sum(axis=1)})
    else:
        table = table[list(hosts)]
    rules = table.sum(axis=1).sort_values(ascending=False).index[:top_rules]
    return table.loc[rules]


@style.styled
def heatmap_figure(data: ReportData) -> Figure | None:
    """Heatmap of finding counts, rule by host, annotated with the counts."""
    table = counts(data)
    if table.empty:
        return None
    n_rules, n_hosts = table.shape
    fig, ax = style.new_figure((min(4.5 + 0.75 * n_hosts, 11.0), 1.8 + 0.38 * n_rules))
    values = table.to_numpy(dtype=float)
    shown = np.where(values > 0, values, np.nan)
    top = float(np.nanmax(shown))
    # counts spanning orders of magnitude read better on a log scale; a cell with 1 finding
    # must still be clearly coloured (empty cells stay white)
    norm = LogNorm(vmin=0.5, vmax=top) if top > 30 else Normalize(vmin=0, vmax=max(top, 2.0))
    image = ax.imshow(shown, cmap="OrRd", aspect="auto", norm=norm)
    ax.set_xticks(range(n_hosts), [style.shorten(h, 24) for h in table.columns],
                  rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(n_rules), [style.shorten(r, 48) for r in table.index], fontsize=8)
    ax.grid(False)
    for (i, j), v in np.ndenumerate(values):
        if v > 0:
            ax.text(j, i, f"{int(v)}", ha="center", va="center", fontsize=8,
                    color="white" if norm(v) > 0.6 else "black")
    ax.set_xlabel("host")
    ax.set_ylabel("rule (severity)")
    ax.set_title("Conformance findings by rule and host")
    bar = fig.colorbar(image, ax=ax, label="findings", shrink=0.8)
    if isinstance(norm, LogNorm):
        bar.ax.yaxis.set_major_formatter(ScalarFormatter())
    else:
        bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def figures(data: ReportData) -> dict[str, Figure | None]:
    return {"conformance_heatmap": heatmap_figure(data)}


def show(data: ReportData, *, max_rows: int = 30) -> None:
    """The section as the notebook shows it."""
    if data.empty:
        style.nothing_to_report("the inputs hold no exchanges.")
        return
    if data.findings.empty:
        style.nothing_to_report("no exchange broke a rule etagwatch checks.")
        return
    severities = data.findings["severity"].value_counts()
    style.say("Findings: " + ", ".join(
        f"**{int(severities.get(s, 0))}** {s}" for s in style.SEVERITY_ORDER) + ".")
    style.show_figure(heatmap_figure(data))
    style.show_table(by_rule(data), max_rows=max_rows, caption="Findings by rule, worst first")
