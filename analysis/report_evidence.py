"""The evidence behind one resource verdict, as the few sentences the terminal report prints.

Each verdict gets the facts a reader needs to check it: for churn the cause, which backend sent
which value and the cost; for identifiers what rules out churn and the context signals; for
reflection how many never-issued values the server accepted. Sentences only: report_text wraps
them to the terminal width.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from analysis.detectors.evidence import content_phrase, human_bytes, validator_name

#: Backends (churn) and examples (reflection) listed before "(+N more)".
MAX_LISTED = 3

_CONTEXT = (
    ("third_party", "third-party"),
    ("small_body", "small body (<= 5 kB)"),
    ("forced_revalidation", "forced revalidation (no-cache / max-age=0)"),
    ("cookie_match", "ETag equals a cookie value"),
    ("query_match", "ETag equals a query-string value"),
)


def more(items: Sequence[str], limit: int = MAX_LISTED, sep: str = ", ") -> str:
    """The first ``limit`` items joined, then '(+N more)' for the rest."""
    shown = sep.join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def context_line(ev: dict[str, Any]) -> str:
    present = [text for key, text in _CONTEXT if ev.get(key)]
    if not present:
        return "context: none of third-party, small body, forced revalidation, cookie match"
    return "context: " + ", ".join(present)


def cost_line(ev: dict[str, Any]) -> str:
    n = int(ev.get("wasted_revalidations") or 0)
    if n == 0:
        return ("cost: no revalidation seen yet; each one reaching a different value is answered "
                "200 and resends the body")
    return (f"cost: {plural(n, 'revalidation')} answered 200 with an identical body, "
            f"{human_bytes(int(ev.get('wasted_bytes') or 0))} resent")


def backend_lines(ev: dict[str, Any]) -> list[str]:
    """One line per backend: its label and the values it sent (values without a known
    backend are listed under 'unknown backend')."""
    mapping = ev.get("value_backends")
    if not isinstance(mapping, dict) or not mapping:
        n = ev.get("backends") or 0
        return [f"backends: {n} seen" if n else "backends: none named in the responses"]
    sent: dict[str, list[str]] = {}
    for value, backends in mapping.items():
        for b in backends or [{"label": "unknown backend"}]:
            sent.setdefault(str(b.get("label") or "unknown backend"), []).append(f'"{value}"')
    listed = len(mapping)
    unlisted = int(ev.get("values") or listed) - listed
    lines = []
    for label, values in list(sent.items())[:MAX_LISTED]:
        lines.append(f"{label} sent {more(values, 2)}")
    if len(sent) > MAX_LISTED:
        lines.append(f"(+{len(sent) - MAX_LISTED} more backends)")
    if unlisted > 0:
        lines[-1] += f" (+{unlisted} more values in the JSON)"
    lead = "backends: "
    return [lead + lines[0], *(" " * len(lead) + line for line in lines[1:])]


def scope_line(ev: dict[str, Any]) -> str:
    """Where the value links a client's visits (cache partitioning, field notes section 5)."""
    sites = int(ev.get("sites") or 0)
    return f"scope: {ev.get('scope', 'unknown')} ({plural(sites, 'top-level site')}): " + str(
        ev.get("scope_basis") or "no page context")


def bits_line(ev: dict[str, Any]) -> str | None:
    info = ev.get("information")
    if not isinstance(info, dict) or not isinstance(info.get("bits"), int | float):
        return None
    return f"information: about {info['bits']:.0f} bits, from {info.get('basis')}"


def _identifier(ev: dict[str, Any]) -> list[str]:
    name = validator_name(ev.get("validator"))
    if (ev.get("reflected_304s") or 0) > 0:
        examples = [f'"{v}"' for v in (ev.get("reflection") or {}).get("examples") or []]
        eg = f" (e.g. {more(examples, 2)})" if examples else ""
        return [
            f"reflection: {plural(int(ev['reflected_304s']), '304')} to "
            f"{plural(int(ev.get('reflected_values') or 0), 'If-None-Match value')} the server "
            f"never issued{eg}",
            "rules out churn: a server validating its own tags cannot accept values it never "
            "issued",
            context_line(ev),
            scope_line(ev),
        ]
    if ev.get("kind") == "per-client-content":
        return [
            f"{ev['clients']} clients each kept their own {name} and their own body "
            f"({ev['values']} values) with {ev['n304']} 304s: the body carries the id",
            "rules out churn: no value or body seen by two clients; values not tied to backends "
            f"({_backends(ev)}); no known server format",
            "rules out personalisation: no request carried a Cookie or Authorization",
            context_line(ev),
            scope_line(ev),
        ]
    reid = int(ev.get("reidentified_clients") or 0)
    again = f"; {plural(reid, 'client')} re-identified after a cache loss" if reid else ""
    bits = ev.get("min_bits")
    shape = ev.get("shape") or "other"
    form = "digest-shaped" if shape == "digest" else "opaque"
    entropy = f"{form}, up to {bits:.0f} bits" if isinstance(bits, float | int) else form
    backends = _backends(ev)
    return [
        f"{ev['clients']} clients each kept their own {name} ({ev['values']} values) and got "
        f"{ev['n304']} 304s for {content_phrase(ev)}{again}",
        f"rules out churn: no value shared by two clients; values not tied to backends "
        f"({backends}); no known server format ({entropy})",
        context_line(ev),
        scope_line(ev),
    ]


def _backends(ev: dict[str, Any]) -> str:
    n = int(ev.get("backends") or 0)
    return plural(n, "backend") if n else "no backend named"


def _likely(ev: dict[str, Any]) -> list[str]:
    name = validator_name(ev.get("validator"))
    bits = ev.get("min_bits")
    size = f" (up to {bits:.0f} bits)" if isinstance(bits, float | int) else ""
    if ev.get("content_unseen"):
        backends = _backends(ev)
        return [
            f"{ev['clients']} clients each kept their own high-entropy {name}: "
            f"{ev['values']} values{size}, none shared, {plural(int(ev['n304']), '304')}",
            f"rules out churn: no value shared by two clients; values not tied to backends "
            f"({backends}); no known server format, digest or content-coding variant",
            "not an identifier yet: no 2xx body seen, so identical content under every value is "
            "unconfirmed (a content change between clients, or values cached before the "
            "capture, could explain it)",
            context_line(ev),
            scope_line(ev),
            "confirm: " + str(ev.get("confirm_with", "")),
        ]
    lines = [
        f"one client kept a high-entropy {name}{size} with {plural(int(ev['n304']), '304')}; "
        "no second client seen",
        bits_line(ev),
        "not content-derived: the body was compared with its digests and matched none"
        if ev.get("digest_refuted") else None,
        context_line(ev),
        scope_line(ev),
        "confirm: " + str(ev.get("confirm_with", "fetch it from a second, fresh client")),
    ]
    return [line for line in lines if line]


def _changed(ev: dict[str, Any]) -> list[str]:
    dates = ev.get("dates") or {}
    return [
        f"{ev['values']} {validator_name(ev.get('validator'))} values, first seen "
        f"{dates.get('first_seen')}, last seen {dates.get('last_seen')}",
        "not churn: " + str(ev.get("rules_out_churn") or "the values followed each other"),
        "cost: none counted (a new version is worth its bytes)",
    ]


def _undetermined(ev: dict[str, Any]) -> list[str]:
    lines = [
        "why not decided: " + str(ev.get("not_identifier_because") or ev.get("digest") or (
            "one client, and nothing compared the value with the body or a server format")),
        bits_line(ev),
        "settle it: " + str(ev["settle_with"]) if ev.get("settle_with") else None,
    ]
    return [line for line in lines if line]


def _churn(ev: dict[str, Any]) -> list[str]:
    cause = str(ev.get("cause") or "unknown")
    shape, _, what = cause.partition(": ")
    cause = f"{what}; {validator_name(ev.get('validator'))} format {shape}" if what else cause
    return [f"cause: {cause}", *backend_lines(ev), cost_line(ev)]


def _unstable(ev: dict[str, Any]) -> list[str]:
    name = validator_name(ev.get("validator"))
    same = "identical content" if ev.get("content_identical") else "content not recorded"
    return [
        f"{ev['values']} {name} values over {ev['fetches_2xx']} responses to "
        f"{plural(int(ev['clients']), 'client')}, never a 304 ({same})",
        cost_line(ev),
    ]


_BY_VERDICT = {"identifier": _identifier, "likely-identifier": _likely, "churn": _churn,
               "changed": _changed, "unstable": _unstable, "undetermined": _undetermined}


def _answer(r: dict[str, Any]) -> str:
    sent = (r.get("sent") or {}).get("if_none_match")
    head = f"If-None-Match {sent}" if sent else "GET"
    got = f"{r.get('status')}" + (f" {r['etag']}" if r.get("etag") else "")
    return f"{head} -> {got}"


def probe_lines(ev: dict[str, Any]) -> list[str]:
    """What a probe sent and got, and what it settled (analysis.detectors.settled)."""
    probe = ev.get("probe") or {}
    lines = [f"probe {probe.get('probed_at')}: {probe.get('outcome')} ({probe.get('rule')}): "
             f"{probe.get('reason')}"]
    before = ev.get("before")
    if isinstance(before, dict):
        lines.append(f"before the probe: {before.get('verdict')} "
                     f"{float(before.get('confidence') or 0):.2f} ({before.get('kind')})")
    clients: dict[str, list[str]] = {}
    for r in probe.get("requests") or []:
        clients.setdefault(str(r.get("client")), []).append(_answer(r))
    for client, answers in list(clients.items())[:MAX_LISTED + 1]:
        lines.append(f"  {client}: " + "; ".join(answers))
    if len(clients) > MAX_LISTED + 1:
        lines.append(f"  (+{len(clients) - MAX_LISTED - 1} more clients in the JSON)")
    return lines


def evidence_lines(verdict: str, evidence: dict[str, Any]) -> list[str]:
    """The sentences for one resource; [] for verdicts the report does not detail. A verdict a
    probe settled says what the probe sent and got first (with the capture's evidence after it
    when the probe left the verdict as it was)."""
    if not isinstance(evidence, dict):
        return []
    probed = probe_lines(evidence) if evidence.get("settled_by") == "probe" else []
    if probed and isinstance(evidence.get("before"), dict):
        return probed + ([scope_line(evidence)] if verdict == "identifier" else [])
    fn = _BY_VERDICT.get(verdict)
    return probed + (fn(evidence) if fn is not None else [])
