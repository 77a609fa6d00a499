"""The terminal report of `etagwatch analyze`: worst first, short, readable.

Order: identifiers, likely identifiers, churn, unstable validators, conformance errors, then
warnings and info counted by rule, then a per-host table. Long lists are cut at ``limit`` rows
with a note saying how many more the JSON / CSV output holds.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

_SECTIONS = (
    ("identifier", "Identifiers (ETag / Last-Modified used to recognise clients)"),
    ("likely-identifier", "Likely identifiers (one client seen; a second would confirm)"),
    ("churn", "Churn (identical content under several validators; bytes resent)"),
    ("unstable", "Unstable validators (new value every response, never a 304)"),
)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def render(analysis: Any, *, limit: int = 15, width: int = 110) -> str:
    s = analysis.summary
    res: pd.DataFrame = analysis.resources
    fnd: pd.DataFrame = analysis.findings
    lines = [
        f"etagwatch analyze: {s['exchanges']} exchanges, {s['clients']} clients, "
        f"{s['hosts']} hosts, {s['resources']} resources",
        "verdicts: " + ", ".join(f"{k} {v}" for k, v in s["verdicts"].items() if v),
        "findings: " + ", ".join(f"{k} {v}" for k, v in s["findings"].items())
        + f"; wasted: {s['wasted_revalidations']} revalidations, "
        f"{_human_bytes(s['wasted_bytes'])}",
    ]
    for verdict, title in _SECTIONS:
        hits = res[res["verdict"] == verdict] if not res.empty else res
        if hits.empty:
            continue
        lines += ["", f"== {title}: {len(hits)}"]
        for r in hits.head(limit).itertuples(index=False):
            lines.append(_cut(f"  [{r.confidence:.2f}] {r.url}", width))
            lines.append(_cut(f"         {r.explanation}", width))
        if len(hits) > limit:
            lines.append(f"  … {len(hits) - limit} more in the JSON / CSV output")
    errors = fnd[fnd["severity"] == "error"] if not fnd.empty else fnd
    if not errors.empty:
        lines += ["", f"== Conformance errors: {len(errors)}"]
        for r in errors.head(limit).itertuples(index=False):
            lines.append(_cut(f"  {r.rule} ({r.rfc}) {r.url}", width))
            lines.append(_cut(f"         {r.explanation} [{r.source}]", width))
        if len(errors) > limit:
            lines.append(f"  … {len(errors) - limit} more in the JSON / CSV output")
    rest = fnd[fnd["severity"] != "error"] if not fnd.empty else fnd
    if not rest.empty:
        lines += ["", "== Warnings and info by rule"]
        counts = rest.groupby(["severity", "rule"]).size().sort_values(ascending=False)
        for (sev, rule), n in counts.items():
            lines.append(f"  {sev:<8} {rule:<24} {n}")
    hosts: pd.DataFrame = analysis.hosts
    if not hosts.empty:
        lines += ["", f"== Hosts (worst first{', top ' + str(limit) if len(hosts) > limit else ''})"]
        lines.append(f"  {'host':<34} {'exch':>6} {'etag':>5} {'lm':>5} {'weak':>5} "
                     f"{'reval':>6} {'304%':>5} {'id':>3} {'churn':>5} {'err':>4} {'wasted':>9}")
        for h in hosts.head(limit).itertuples(index=False):
            rate = "-" if pd.isna(h.revalidation_304_rate) else f"{100 * h.revalidation_304_rate:.0f}"
            ids = h.identifier
            lines.append(
                f"  {_cut(str(h.host), 34):<34} {h.exchanges:>6} {100 * h.etag_share:>4.0f}% "
                f"{100 * h.last_modified_share:>4.0f}% {100 * h.weak_etag_share:>4.0f}% "
                f"{h.revalidations:>6} {rate:>5} {ids:>3} {h.churn:>5} {h.error:>4} "
                f"{_human_bytes(h.wasted_bytes):>9}"
            )
    return "\n".join(lines)
