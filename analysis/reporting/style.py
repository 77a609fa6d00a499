"""How report figures and tables look and reach the notebook: one place for sizes, colours and
the PNG embedding, so every section reads alike and the HTML stays self-contained."""

from __future__ import annotations

import base64
import functools
import html
import io
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import matplotlib as mpl
import pandas as pd
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from analysis.reporting.data import ReportData

P = ParamSpec("P")
R = TypeVar("R")

#: Verdict names of analysis.detectors, in the order a reader should look at them.
VERDICTS: tuple[str, ...] = ("identifier", "likely-identifier", "churn", "changed", "unstable",
                              "undetermined", "stable")
VERDICT_COLOURS: dict[str, str] = {
    "identifier": "#d62728",
    "likely-identifier": "#ff7f0e",
    "churn": "#1f77b4",
    "changed": "#17becf",
    "unstable": "#9467bd",
    "undetermined": "#bcbd22",
    "stable": "#2ca02c",
}
OTHER_COLOUR = "#7f7f7f"
SEVERITY_ORDER: tuple[str, ...] = ("error", "warning", "info")

#: A figure a laptop screen shows whole at 100% zoom (about 1000 px wide).
WIDE = (10.0, 4.8)
DPI = 100

#: Applied to every report figure (not globally: a notebook user's own plots stay theirs).
RC = (
    {
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "font.size": 10,
        "axes.titlesize": 12,
        "axes.titleweight": "bold",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "legend.frameon": False,
    }
)


def styled(build: Callable[P, R]) -> Callable[P, R]:
    """Decorate a figure-building function: it (and the figure's drawing) runs with ``RC``."""

    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with mpl.rc_context(RC):
            return build(*args, **kwargs)

    return wrapper


def new_figure(size: tuple[float, float] = WIDE, **subplots: object) -> tuple[Figure, Axes]:
    """A figure with its axes, laid out so labels never overlap (constrained layout).

    Built without pyplot: no global figure list, no backend, nothing shown behind our back;
    the figure is drawn only when ``png_bytes`` saves it."""
    fig = Figure(figsize=size, layout="constrained", dpi=DPI)
    axes = fig.subplots(**subplots)  # type: ignore[arg-type]
    return fig, axes


def shorten(text: object, width: int = 48) -> str:
    """Long URLs and host names cut in the middle, keeping both ends readable."""
    s = str(text)
    if len(s) <= width:
        return s
    keep = (width - 1) // 2
    return f"{s[:keep]}…{s[-(width - keep - 1):]}"


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    with mpl.rc_context(RC):
        fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def describe(fig: Figure) -> str:
    """A figure's title (suptitle, else its first axes' title): its alternative text."""
    sup = fig.get_suptitle()
    if sup:
        return sup
    return next((t for ax in fig.axes if (t := ax.get_title() or ax.get_title("left"))), "figure")


def show_figure(fig: Figure | None, *, caption: str | None = None) -> None:
    """Display a figure as an embedded PNG with its title as alternative text (the HTML export
    keeps it as base64: no file beside the report); Jupyter front-ends get the PNG too.
    ``caption`` (plain text, escaped) goes under it: how to read what the figure draws."""
    from IPython.display import display

    if fig is None:
        return
    b64 = base64.b64encode(png_bytes(fig)).decode("ascii")
    alt = html.escape(describe(fig), quote=True)
    img = f'<img src="data:image/png;base64,{b64}" alt="{alt}"/>'
    if caption:
        img = (f'<figure class="etagwatch-figure">{img}'
               f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    display({"text/html": CSS + img, "image/png": b64}, raw=True)


#: Tables read left to right; long evidence wraps instead of widening the page; detail rows
#: (a resource's evidence and per-client story) hang under their resource's row.
CSS = (
    "<style>table.etagwatch-table td, table.etagwatch-table th {text-align: left !important;"
    " vertical-align: top; max-width: 30em; white-space: normal; overflow-wrap: break-word;}"
    " table.etagwatch-table td code {overflow-wrap: anywhere;}"
    " table.etagwatch-table td {font-size: 90%;}"
    " table.etagwatch-table tr.etagwatch-detail > td {max-width: none; background: #fafafa;"
    " padding: 0.2em 0.6em 0.8em 1.6em; border-bottom: 1px solid #ccc;}"
    " table.etagwatch-table tr.etagwatch-detail ul {margin: 0.2em 0 0.4em 0;}"
    " table.etagwatch-table tr.etagwatch-resource > td {border-top: 2px solid #999;}"
    " table.etagwatch-table tr.etagwatch-resource > td:first-child {min-width: 16em;}"
    " table.etagwatch-table table.etagwatch-table {margin: 0.3em 0;}"
    " .etagwatch-detail details pre {white-space: pre-wrap; overflow-wrap: anywhere;"
    " font-size: 85%; margin: 0.3em 0;}"
    " .etagwatch-headline {border-left: 4px solid #d62728; padding: 0.3em 1em;"
    " background: #fdf6f6; margin: 0.5em 0 1em 0;}"
    " .etagwatch-headline ul {margin: 0.2em 0 0.6em 0;}"
    " figure.etagwatch-figure {margin: 0.5em 0 1em 0;}"
    " figure.etagwatch-figure figcaption {font-size: 90%; color: #444; max-width: 60em;}"
    "</style>"
)

class Html(str):
    """Markup built here (every piece of capture data inside already escaped): a table cell
    holding one is inserted as it is; every other cell is escaped."""


def markup(index: pd.Index, items: list[str]) -> pd.Series:
    """A column of ``Html`` cells. Object dtype on purpose: pandas 3 stores text columns as its
    ``str`` dtype (Arrow-backed when pyarrow is installed), which turns ``Html`` back into plain
    text, and the cell would then be escaped."""
    return pd.Series([Html(i) for i in items], index=index, dtype=object)


def cell(value: object) -> str:
    """A table cell's HTML: ``Html`` as it is, anything else escaped (empty for missing)."""
    if isinstance(value, Html):
        return str(value)
    if value is None or value is pd.NA or value is pd.NaT or (
            isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value))


def html_table(
    df: pd.DataFrame,
    *,
    details: list[str] | None = None,
    row_ids: list[str] | None = None,
) -> str:
    """An HTML table of ``df`` (column names as words), every cell escaped unless it is
    ``Html``. ``details[i]`` (HTML) becomes a full-width row under row ``i``; ``row_ids[i]``
    its anchor, so a summary can link to that row."""
    heads = "".join(f"<th>{html.escape(str(c).replace('_', ' '))}</th>" for c in df.columns)
    rows = []
    for i, values in enumerate(df.itertuples(index=False, name=None)):
        rid = f' id="{html.escape(row_ids[i], quote=True)}"' if row_ids else ""
        lead = ' class="etagwatch-resource"' if details else ""
        rows.append(f"<tr{rid}{lead}>" + "".join(f"<td>{cell(v)}</td>" for v in values)
                    + "</tr>")
        if details and details[i]:
            rows.append(f'<tr class="etagwatch-detail"><td colspan="{len(df.columns)}">'
                        f"{details[i]}</td></tr>")
    return (f'<table class="etagwatch-table" border="0"><thead><tr>{heads}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def show_html(markup: str) -> None:
    """Display HTML built here (capture data inside it escaped), with the report's CSS."""
    from IPython.display import HTML, display

    display(HTML(CSS + markup))


def show_table(df: pd.DataFrame, *, max_rows: int = 30, caption: str | None = None) -> None:
    """Display a table, cut to ``max_rows`` with a note saying how many rows were left out;
    column names are shown as words (``wasted_bytes`` -> "wasted bytes")."""
    from IPython.display import HTML, display

    shown = df.head(max_rows).rename(columns=lambda c: str(c).replace("_", " "))
    parts = [CSS]
    if caption:
        parts.append(f"<p><strong>{html.escape(caption)}</strong></p>")
    parts.append(shown.to_html(index=False, na_rep="", escape=True, border=0,
                               classes="etagwatch-table"))
    if len(df) > max_rows:
        parts.append(f"<p><em>{len(df) - max_rows} more rows not shown.</em></p>")
    display(HTML("".join(parts)))


def say(text: str) -> None:
    """A plain sentence in the report (Markdown), e.g. why a section has nothing to show."""
    from IPython.display import Markdown, display

    display(Markdown(text))


def nothing_to_report(what: str) -> None:
    """The sentence a section prints instead of a figure when the capture has nothing for it."""
    say(f"*Nothing to report: {what}*")


def title(text: str, data: ReportData) -> None:
    """The report's heading: its title, when it was made, and from what. HTML with every part
    escaped: ``--title`` and input paths are text, never markup (Markdown would pass HTML
    through)."""
    made = datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    inputs = ", ".join(f"<code>{html.escape(p)}</code>" for p in data.inputs) or "no inputs"
    show_html(f'<h1 class="etagwatch-title">{html.escape(text)}</h1>'
              f"<p>Made {made} from {inputs}.</p>")
