"""The terminal report of `etagwatch analyze`: worst first, within 100 columns, nothing cut.

Order: identifiers, likely identifiers, churn, unstable validators (each resource with its URL,
verdict, confidence and a few evidence lines), conformance findings grouped by rule (worst
severity first, one example each), then a per-host table with a legend. Lines are wrapped, never
truncated; lists longer than ``limit`` rows say how many more the JSON / CSV output holds.
"""

from __future__ import annotations

import os
import textwrap
from typing import Any

import pandas as pd

from analysis.detectors.evidence import human_bytes
from analysis.findings import SEVERITIES, SEVERITY_RANK
from analysis.report_evidence import evidence_lines, plural

WIDTH = 100
INDENT = " " * 6

_SECTIONS = (
    ("identifier", "Identifiers: validators used to recognise clients"),
    ("likely-identifier", "Likely identifiers: one client seen, or content never seen; "
                          "the evidence says what confirms"),
    ("churn", "Churn: the same content under several validators at once, bytes resent"),
    ("changed", "Changed: a content change or redeploy between visits (not churn, nothing "
                "wasted)"),
    ("unstable", "Unstable validators: a new value on every response, never a 304"),
    ("undetermined", "Undetermined: the capture cannot tell; the evidence says what would "
                     "settle it"),
)
_HOST_LEGEND = (
    "exch: exchanges; ETag / L-M: share of responses carrying an ETag / Last-Modified; "
    "reval: conditional requests answered; 304%: share of them answered 304; ident: "
    "identifier and likely-identifier resources; unst: unstable; err / warn: conformance "
    "findings; wasted: bytes resent for content the client already had; -: nothing to measure"
)


def wrap(text: str, width: int = WIDTH, indent: str = INDENT) -> list[str]:
    """``text`` wrapped at ``width`` (words are never split: an ETag stays copyable)."""
    lead = len(text) - len(text.lstrip(" "))
    return textwrap.wrap(
        text.lstrip(" "), width=width, initial_indent=indent + " " * lead,
        subsequent_indent=indent + " " * (lead + 2), break_long_words=False,
        break_on_hyphens=False,
    ) or [indent]


def shorten_middle(text: str, room: int) -> str:
    """``text`` with its middle replaced by '…' when longer than ``room``."""
    if len(text) <= room:
        return text
    head = (room - 1) * 2 // 3
    return text[:head] + "…" + text[len(text) - (room - 1 - head):]


def show_url(url: str, room: int) -> str:
    """A URL within ``room`` columns: the query string gives way first, scheme, host and path
    last (the JSON always has it whole)."""
    if len(url) <= room:
        return url
    base, sep, query = url.partition("?")
    if sep and len(base) + 8 <= room:
        return base + "?" + shorten_middle(query, room - len(base) - 1)
    return shorten_middle(url, room)


def show_source(source: object) -> str:
    """A finding's source (file#entry), relative to the working directory when inside it."""
    text = str(source)
    try:
        cwd = os.getcwd().rstrip("/") + "/"
    except OSError:  # the working directory was removed
        return text
    return text[len(cwd):] if text.startswith(cwd) else text


def headline(s: dict[str, Any]) -> list[str]:
    """analyze's first lines (counts, verdicts, conformance, waste); `crawl` ends with them."""
    verdicts = ", ".join(f"{k} {v}" for k, v in s["verdicts"].items() if v) or "none"
    found = s["findings"]
    conformance = ", ".join(plural(found.get(k, 0), k, k if k == "info" else None)
                            for k in SEVERITIES) if any(found.values()) else "no findings"
    wasted = int(s.get("wasted_revalidations") or 0)
    waste = ("waste: none (no revalidation was answered with a body the client already had)"
             if not wasted else
             f"waste: {plural(wasted, 'revalidation')} answered 200 with a body the client "
             f"already had, {human_bytes(int(s.get('wasted_bytes') or 0))} resent")
    settled = s.get("settled") or {}
    probed = (["probe: " + ", ".join(f"{v} {k}" for k, v in settled.items() if v)
               + " (etagwatch probe --candidates)"] if any(settled.values()) else [])
    return [
        *wrap(f"etagwatch analyze: {plural(s['exchanges'], 'exchange')} "
              f"({plural(s.get('responses', 0), 'response')}) from "
              f"{plural(s['clients'], 'client')}, {plural(s['hosts'], 'host')}, "
              f"{plural(s['resources'], 'resource')}", indent=""),
        *wrap(f"verdicts: {verdicts}", indent=""),
        *(part for line in probed for part in wrap(line, indent="")),
        *wrap(f"conformance: {conformance}", indent=""),
        *wrap(waste, indent=""),
    ]


def _more(n: int, what: str) -> str:
    return f"  (+{n} more {what} in the JSON / CSV output; raise --limit to list them)"


def _resources(res: pd.DataFrame, limit: int, counts: dict[str, int]) -> list[str]:
    """Each verdict's first ``limit`` resources; ``counts`` (the summary's) may say there
    are more than ``res`` holds (a result dataset hands over only the first ones)."""
    lines: list[str] = []
    for verdict, title in _SECTIONS:
        hits = res[res["verdict"] == verdict] if not res.empty else res
        if hits.empty:
            continue
        total = max(len(hits), int(counts.get(verdict, 0)))
        lines += ["", f"== {title} ({total})"]
        for r in hits.head(limit).itertuples(index=False):
            head = f"  {verdict} {r.confidence:.2f}  "
            lines.append(head + show_url(str(r.url), WIDTH - len(head)))
            for sentence in evidence_lines(verdict, r.evidence):
                lines += wrap(sentence)
        if total > limit:
            lines.append(_more(total - limit, "resources"))
    return lines + _cleared(res, limit)


def _cleared(res: pd.DataFrame, limit: int) -> list[str]:
    """Resources a probe cleared to stable (the sections above show unstable ones)."""
    if res.empty or "settled" not in res.columns:
        return []
    hits = res[(res["settled"] == "cleared") & (res["verdict"] == "stable")]
    if hits.empty:
        return []
    lines = ["", f"== Cleared by probe: stable, not identifiers ({len(hits)})"]
    for r in hits.head(limit).itertuples(index=False):
        head = f"  stable {r.confidence:.2f}  "
        lines.append(head + show_url(str(r.url), WIDTH - len(head)))
        for sentence in evidence_lines("stable", r.evidence):
            lines += wrap(sentence)
    if len(hits) > limit:
        lines.append(_more(len(hits) - limit, "resources"))
    return lines


def _findings(fnd: pd.DataFrame, limit: int) -> list[str]:
    if fnd.empty:
        return []
    groups = (fnd.assign(_s=fnd["severity"].map(SEVERITY_RANK)).groupby(["_s", "rule"], sort=False)
              .agg(n=("rule", "size"), hosts=("host", "nunique"), severity=("severity", "first"),
                   rfc=("rfc", "first"), first=("explanation", "first"))
              .reset_index().sort_values(["_s", "n", "rule"], ascending=[True, False, True]))
    counts = fnd["severity"].value_counts()
    title = ", ".join(plural(int(counts.get(s, 0)), s, s if s == "info" else None)
                      for s in SEVERITIES)
    lines = ["", f"== Conformance findings by rule, worst first ({title})"]
    for g in groups.head(limit).itertuples(index=False):
        example = fnd[fnd["rule"] == g.rule].iloc[0]
        lines.append(f"  {g.severity:<7} {g.rule}: {plural(int(g.n), 'finding')} on "
                     f"{plural(int(g.hosts), 'host')} ({g.rfc})")
        status = example["status"]
        answered = f" -> {int(status)}" if not pd.isna(status) else ""
        lines += wrap(f"e.g. {show_source(example['source'])} ({example['method']}{answered})")
        lines.append(INDENT + "  " + show_url(str(example["url"]), WIDTH - len(INDENT) - 2))
        lines += wrap(f"  {example['explanation']}")
    if len(groups) > limit:
        lines.append(_more(len(groups) - limit, "rules"))
    return lines


def _pct(value: float, measured: bool) -> str:
    return f"{100 * value:.0f}%" if measured and not pd.isna(value) else "-"


def _hosts(hosts: pd.DataFrame, limit: int) -> list[str]:
    if hosts.empty:
        return []
    top = f", top {limit} of {len(hosts)}" if len(hosts) > limit else ""
    lines = ["", f"== Hosts (worst first{top})",
             f"  {'host':<26} {'exch':>6} {'ETag':>5} {'L-M':>5} {'reval':>6} {'304%':>5} "
             f"{'ident':>5} {'churn':>5} {'unst':>4} {'err':>4} {'warn':>4} {'wasted':>9}"]
    shown = hosts.head(limit).rename(columns={"likely-identifier": "likely_identifier"})
    for h in shown.itertuples(index=False):
        answered = h.responses > 0
        ident = h.identifier + h.likely_identifier
        lines.append(
            f"  {shorten_middle(str(h.host), 26):<26} {h.exchanges:>6} "
            f"{_pct(h.etag_share, answered):>5} {_pct(h.last_modified_share, answered):>5} "
            f"{h.revalidations:>6} {_pct(h.revalidation_304_rate, h.revalidations > 0):>5} "
            f"{ident:>5} {h.churn:>5} {h.unstable:>4} {h.error:>4} {h.warning:>4} "
            f"{human_bytes(h.wasted_bytes):>9}")
    lines += wrap(_HOST_LEGEND, indent="  ")
    return lines


def render(analysis: Any, *, limit: int = 15) -> str:
    """The whole report as one string; every line fits WIDTH columns (URLs and ETag values
    longer than a line excepted: they are shortened in the middle or kept whole)."""
    res: pd.DataFrame = analysis.resources
    return "\n".join([
        *headline(analysis.summary),
        *_resources(res, limit, dict(analysis.summary.get("verdicts") or {})),
        *_findings(analysis.findings, limit),
        *_hosts(analysis.hosts, limit),
    ])
