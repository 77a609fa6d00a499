"""Resource tables with their evidence in full: one row per resource, and under it a detail row
with the detectors' explanation, the sentences the terminal report prints (wrapped, never cut
mid-word: a reader must see the whole argument), anything a section adds (an identifier's
per-client story), and every evidence field, as in ``analyze --json``, behind a <details>.

Every piece of capture data is escaped here (URLs, values, client names): the HTML these
functions return is safe to insert as it is.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from analysis.detectors.evidence import human_bytes
from analysis.report_evidence import evidence_lines
from analysis.reporting import style

#: A section's extra detail for one resource row (HTML, escaped), or "" for none.
Extra = Callable[[pd.Series], str]


def anchor(url: object) -> str:
    """The id of a resource's row: derived from its URL, so the summary can link to it, but
    not the URL itself (ids stay short and carry no capture text)."""
    return "resource-" + hashlib.sha256(str(url).encode("utf-8", "replace")).hexdigest()[:12]


def evidence_dict(evidence: object) -> dict[str, Any]:
    """The evidence as a dict (a JSON string from a CSV or store is decoded); {} otherwise."""
    if isinstance(evidence, str):
        try:
            evidence = json.loads(evidence)
        except ValueError:
            return {}
    return evidence if isinstance(evidence, dict) else {}


def sentences(verdict: str, evidence: dict[str, Any]) -> list[str]:
    """The terminal report's sentences for this verdict; [] when it has none, or when the
    evidence lacks a field they need (an older store): the fields below still show it."""
    try:
        return [line for line in evidence_lines(verdict, evidence) if line]
    except (KeyError, TypeError, ValueError):
        return []


def fields_html(evidence: dict[str, Any]) -> str:
    """Every evidence field, untouched, in a collapsed block (escaped)."""
    if not evidence:
        return ""
    text = json.dumps(evidence, indent=1, default=str, ensure_ascii=False)
    return ("<details><summary>every evidence field (as in <code>analyze --json</code>)"
            f"</summary><pre>{html.escape(text)}</pre></details>")


def evidence_html(row: pd.Series, extra: Extra | None = None) -> str:
    """A resource's detail row: explanation, evidence sentences, the section's extra, fields."""
    ev = evidence_dict(row.get("evidence"))
    parts = []
    explanation = row.get("explanation")
    if isinstance(explanation, str) and explanation:
        parts.append(f"<p><strong>{html.escape(explanation)}</strong></p>")
    lines = sentences(str(row.get("verdict")), ev)
    if lines:
        parts.append("<ul>" + "".join(f"<li>{html.escape(ln)}</li>" for ln in lines) + "</ul>")
    if extra is not None:
        parts.append(extra(row))
    parts.append(fields_html(ev))
    return "".join(p for p in parts if p)


def resource_table_html(
    rows: pd.DataFrame,
    columns: Sequence[str],
    *,
    extra: Extra | None = None,
    max_rows: int = 30,
    caption: str | None = None,
) -> str:
    """``rows`` (detector resource rows) as a table of ``columns``, each row followed by its
    evidence in full; cut to ``max_rows`` resources with a note. Column ``wasted`` is
    ``wasted_bytes`` in words (1.4 kB), ``full_responses`` the 2xx count."""
    shown = rows.head(max_rows)
    if "wasted_bytes" in shown.columns:
        shown = shown.assign(wasted=shown["wasted_bytes"].map(lambda b: human_bytes(float(b or 0))))
    if "fetches_2xx" in shown.columns:
        shown = shown.assign(full_responses=shown["fetches_2xx"])
    cols = [c for c in columns if c in shown.columns]
    table = shown[cols].copy()
    if "url" in table.columns:  # long URLs wrap anywhere; the cell keeps the full text
        table["url"] = style.markup(table.index,
                                    [f"<code>{html.escape(str(u))}</code>" for u in table["url"]])
    details = [evidence_html(row, extra) for _, row in shown.iterrows()]
    ids = [anchor(u) for u in shown["url"]] if "url" in shown.columns else None
    parts = [f"<p><strong>{html.escape(caption)}</strong></p>"] if caption else []
    parts.append(style.html_table(table, details=details, row_ids=ids))
    if len(rows) > max_rows:
        parts.append(f"<p><em>{len(rows) - max_rows} more resources not shown "
                     "(<code>etagwatch analyze --json</code> lists every one).</em></p>")
    return "".join(parts)


def show_resources(
    rows: pd.DataFrame, columns: Sequence[str], *, empty: str, caption: str,
    max_rows: int = 30, extra: Extra | None = None,
) -> bool:
    """A section's resource table with evidence, or "Nothing to report: ``empty``" when there
    are no rows; True when there was a table."""
    if rows.empty:
        style.nothing_to_report(empty)
        return False
    style.show_html(resource_table_html(rows, columns, extra=extra, max_rows=max_rows,
                                        caption=caption))
    return True


def abbreviate(value: str, width: int = 18) -> str:
    """A validator value cut in the middle, with the full value as a tooltip (escaped)."""
    short = style.shorten(value, width)
    return (f'<code title="{html.escape(value, quote=True)}">{html.escape(short)}</code>')
