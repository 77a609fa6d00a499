"""Section "What was found": the report's first screen says what the capture shows before any
method: verdict counts, the worst identifiers and churn with their hosts, conformance errors,
each linking to the section (and the resource's row) that holds the evidence."""

from __future__ import annotations

import html
from collections.abc import Callable

import pandas as pd

from analysis.detectors.evidence import human_bytes
from analysis.report_evidence import plural
from analysis.reporting import style
from analysis.reporting.data import ReportData

#: Section anchors (ids placed in the notebook's headings).
SECTIONS = {
    "summary": "What was found",
    "overview": "Capture overview",
    "hosts": "Hosts",
    "identifiers": "Identifiers",
    "churn": "Churn",
    "other-verdicts": "Other verdicts",
    "conformance": "Conformance",
}
#: Where each verdict's resources are listed.
VERDICT_SECTION = {
    "identifier": "identifiers",
    "likely-identifier": "identifiers",
    "churn": "churn",
    "changed": "other-verdicts",
    "unstable": "other-verdicts",
    "undetermined": "other-verdicts",
    "stable": "hosts",
    "none": "hosts",
}
TOP = 3


def _link(target: str, text: str) -> str:
    return f'<a href="#{html.escape(target, quote=True)}">{text}</a>'


def _resource(row: pd.Series, facts: str) -> str:
    """One accused resource: its host in bold, the URL (linked to its row), then the facts."""
    from analysis.reporting.evidence_rows import anchor

    url = _link(anchor(row["url"]), f"<code>{html.escape(style.shorten(row['url'], 70))}</code>")
    return f"<li><strong>{html.escape(str(row.get('host')))}</strong>: {url} ({facts})</li>"


def verdict_line(data: ReportData) -> str:
    """``2 identifier, 1 churn, ...``: each count linked to the section listing them."""
    counts = data.resources["verdict"].value_counts()
    order = [*style.VERDICTS, "none"]
    parts = []
    for verdict in order:
        n = int(counts.get(verdict, 0))
        if n:
            label = "without a validator" if verdict == "none" else html.escape(verdict)
            parts.append(_link(VERDICT_SECTION[verdict], f"<strong>{n}</strong> {label}"))
    return ", ".join(parts)


def _more(total: int, shown: int, target: str) -> list[str]:
    return [f"<li>{_link(target, f'and {total - shown} more')}</li>"] if total > shown else []


def _listed(hits: pd.DataFrame, facts: Callable[[pd.Series], str], top: int, target: str
            ) -> list[str]:
    """The first ``top`` resources as list items with their facts, then "and N more"."""
    out = [_resource(row, facts(row)) for _, row in hits.head(top).iterrows()]
    return out + _more(len(hits), len(out), target)


def _identifier_facts(row: pd.Series) -> str:
    facts = (f"{html.escape(str(row['verdict']))}, confidence {float(row['confidence']):.2f}, "
             f"{plural(int(row.get('clients') or 0), 'client')}, "
             f"{plural(int(row.get('values') or 0), 'value')}")
    if row.get("scope"):
        facts += f", scope {html.escape(str(row['scope']))}"
    return facts


def _churn_facts(row: pd.Series) -> str:
    return (f"{plural(int(row.get('values') or 0), 'value')} for the same content, "
            f"{plural(int(row.get('wasted_revalidations') or 0), 'revalidation')} "
            "answered 200, "
            f"{html.escape(human_bytes(float(row.get('wasted_bytes') or 0)))} resent")


def worst_identifiers(data: ReportData, top: int = TOP) -> list[str]:
    from analysis.reporting.identifiers import identifying

    return _listed(identifying(data), _identifier_facts, top, "identifiers")


def worst_churn(data: ReportData, top: int = TOP) -> list[str]:
    from analysis.reporting.churn import churn_resources

    return _listed(churn_resources(data), _churn_facts, top, "churn")


def conformance_line(data: ReportData) -> str:
    f = data.findings
    if f.empty:
        return "no exchange broke a rule etagwatch checks."
    sev = f["severity"].value_counts()
    counts = ", ".join(f"<strong>{int(sev.get(s, 0))}</strong> {s}" for s in style.SEVERITY_ORDER)
    # the rules of the worst severity present: errors, else warnings, ...
    worst = next((s for s in style.SEVERITY_ORDER if sev.get(s, 0)), str(sev.index[0]))
    top = f[f["severity"] == worst]["rule"].value_counts().head(TOP)
    rules = ", ".join(f"<code>{html.escape(str(r))}</code> ×{int(n)}" for r, n in top.items())
    return f"{_link('conformance', counts)} findings; {html.escape(worst)}s: {rules}."


def headline_html(data: ReportData) -> str:
    """The summary block (HTML; capture data escaped)."""
    s = data.summary
    ex = data.exchanges
    n, clients, hosts = ((s.get("exchanges", 0), s.get("clients", 0), s.get("hosts", 0))
                         if data.overview is not None
                         else (len(ex), ex["client"].nunique(), ex["host"].nunique()))
    scale = (f"{n:,} exchanges from {clients:,} clients and "
             f"{hosts:,} hosts; {len(data.resources):,} resources judged.")
    parts = [f"<p>{html.escape(scale)}</p>",
             f"<p><strong>Verdicts:</strong> {verdict_line(data)}.</p>"]
    idents = worst_identifiers(data)
    parts.append(f"<p><strong>{_link('identifiers', 'Identifiers')}</strong>"
                 + (":</p><ul>" + "".join(idents) + "</ul>" if idents
                    else ": none found.</p>"))
    churned = worst_churn(data)
    wasted = human_bytes(float(s.get("wasted_bytes") or 0))
    parts.append(f"<p><strong>{_link('churn', 'Churn')}</strong>"
                 + (f" ({html.escape(wasted)} resent in all):</p><ul>" + "".join(churned) + "</ul>"
                    if churned else ": none found.</p>"))
    parts.append(f"<p><strong>Conformance:</strong> {conformance_line(data)}</p>")
    nav = " · ".join(_link(k, v) for k, v in SECTIONS.items() if k != "summary")
    parts.append(f"<p>Sections: {nav}</p>")
    return '<div class="etagwatch-headline">' + "".join(parts) + "</div>"


def show(data: ReportData) -> None:
    """The section as the notebook shows it."""
    if data.empty:
        style.nothing_to_report("the inputs hold no exchanges.")
        return
    style.show_html(headline_html(data))
