"""Evidence (a JSON-serialisable dict) and a one-line explanation for each resource verdict.

Runs once per resource (not per exchange). The evidence always states the counts behind the
verdict and the basis of each claim (a body hash or only size and type; a digest compared with
the body; a format field compared with the response; bits estimated from variation or from
length alone); for accusations, what rules out the benign explanations (load balancing, content
change) and the tracking ``scope``; for likely-identifier and undetermined, what would settle
it (a second client, ``etagwatch probe URL``). docs/verdicts.md describes each text.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pandas as pd

_COUNTS = [
    "validator", "clients", "exchanges", "values", "fetches_2xx", "n304", "clients_304",
    "stable_clients", "reidentified_clients", "max_clients_per_value", "shared_values", "content_values",
    "content_identical", "content_derived", "backends", "tied_to_backends", "overlapping_values",
    "shape", "min_bits", "third_party", "cookie_match", "query_match", "forced_revalidation", "small_body",
    "body_size",
    "wasted_revalidations", "wasted_bytes", "reflected_304s", "reflected_values",
    "kind", "content_basis", "digest_verified", "digest_kind", "digest_unverified",
    "format_verified", "format_fields", "bits_basis", "length_bits", "low_information",
    "shared_by_clients", "credentials", "per_client_content", "sites", "cross_site_values",
    "partitioned_clients", "first_seen", "last_seen", "value_runs", "min_change_gap",
    "last_modified_values", "concurrent", "validator_clients",
]
#: Verdicts that accuse: they carry a tracking scope.
ACCUSING = ("identifier", "likely-identifier")
_CAUSES = {
    "differs_inode": "inode differs (Apache FileETag INode: each backend's copy has its own inode)",
    "differs_mtime": "mtime differs (unsynchronised deploys: same bytes, different modification times)",
    "differs_change": "change number differs (IIS farm: per-server metabase change numbers)",
}


def _plain(v: Any) -> Any:
    """numpy / pandas scalars to JSON-native values; NaN to None."""
    if v is pd.NA:
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _plain_column(col: pd.Series) -> list[Any]:
    """A column as JSON-native values (what _plain gives per value, without its per-value cost
    where the dtype already guarantees it)."""
    kind = col.dtype.kind
    if kind in "iub" and not (isinstance(col.dtype, pd.api.extensions.ExtensionDtype)
                              and col.isna().any()):  # nullable Int64 holds pd.NA
        return col.tolist()
    if kind == "f":
        return [None if v != v else v for v in col.tolist()]
    plain = (str, bool, int, type(None))
    return [v if type(v) in plain else _plain(v) for v in col.tolist()]


#: How reports name a validator.
VALIDATOR_NAMES = {"etag": "ETag", "last-modified": "Last-Modified"}


def validator_name(validator: object) -> str:
    return VALIDATOR_NAMES.get(str(validator), str(validator))


def human_bytes(n: float) -> str:
    """1368 -> '1.4 kB' (SI units, as browsers' network panels show them)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} GB"


def human_duration(seconds: float) -> str:
    """95 -> '1.6 min', 200000 -> '2.3 days'."""
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:,.1f} s"


def churn_cause(row: dict[str, Any]) -> str | None:
    """What differs between the values, when they are in a known server format."""
    causes = [text for col, text in _CAUSES.items() if row.get(col) is True]
    if not causes:
        return None
    return f"{row.get('shape')}: " + "; ".join(causes)


def _fallback_cause(ev: dict[str, Any]) -> str:
    """The churn cause when no known format says which part differs."""
    name = validator_name(ev.get("validator"))
    if ev.get("tied_to_backends"):
        return (f"values follow the backends: each backend sends its own {name} for the same "
                f"bytes ({name} not derived from the content)")
    return (f"{content_phrase(ev)} under {ev.get('values')} {name} values shared by several "
            f"clients ({name} not derived from the content)")


def content_phrase(ev: dict[str, Any]) -> str:
    """How identical the content is known to be: by body hash, or only by size and type."""
    if ev.get("content_basis") == "body hash":
        return "identical bodies (body hash)"
    return "the same size and type (bodies not hashed: a weak basis)"


def scope(row: dict[str, Any]) -> tuple[str, str]:
    """(scope, why): ``cross-site`` when one client presented one value under pages of two or
    more top-level sites (its cache was not partitioned), ``per-site`` when every client held
    its values within one top-level site each, ``unknown`` without page context."""
    sites = row.get("sites") or 0
    if not sites:
        return "unknown", "no page context (no top-level site known for these requests)"
    if (row.get("cross_site_values") or 0) > 0:
        return "cross-site", (f"{row['cross_site_values']} client(s) presented the same value "
                              f"under pages of two or more of {sites} top-level sites")
    if (row.get("partitioned_clients") or 0) > 0:
        return "per-site", (f"{row['partitioned_clients']} client(s) held one value per top-level "
                            "site (a partitioned cache): the value links visits within a site")
    return "per-site", (f"each client seen under one top-level site only ({sites} in all): "
                        "linking across sites was not observed")


def _bits(ev: dict[str, Any]) -> dict[str, Any]:
    """The information estimate of an ETag value and what it rests on."""
    others = ev.get("bits_basis")
    basis = (f"variation among {int(others) + 1} values of the host" if others
             else "length and alphabet only (the host's only value)")
    return {"bits": ev.get("min_bits"), "basis": basis, "length_bits": ev.get("length_bits")}


def _settle(ev: dict[str, Any]) -> str:
    return ("fetch the URL from a second, fresh profile (another browser profile, HAR or proxy "
            "client) or run `etagwatch probe URL`: a different value per client kept with 304s is an "
            "identifier; the same value for both, or one that follows the body, is benign")


def _date(ts: Any) -> str | None:
    if not isinstance(ts, int | float) or ts != ts:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + " UTC"


def _why_benign(ev: dict[str, Any]) -> str:
    """The evidence that makes a stable value benign, in words."""
    name = validator_name(ev.get("validator"))
    if ev.get("digest_verified"):
        return f"the {name} equals the body's {ev.get('digest_kind')} digest (verified)"
    if ev.get("content_derived"):
        return f"{ev.get('values')} {name} values, one per body (body hash): they follow the content"
    if ev.get("format_verified"):
        fields = {"size": "size field = body length", "mtime": "mtime field = Last-Modified",
                  "size+mtime": "size field = body length, mtime field = Last-Modified"}
        return f"{ev.get('shape')}, {fields.get(ev.get('format_fields') or '', 'fields')}, verified"
    if ev.get("shared_by_clients"):
        return f"{ev.get('max_clients_per_value')} clients presented the same {name} value"
    if ev.get("low_information"):
        return (f"about {ev.get('min_bits')} bits of information: too little to tell clients apart")
    return "no sign of identifier, churn or instability"


def _none_evidence(ev: dict[str, Any]) -> dict[str, Any]:
    return {k: ev[k] for k in ("validator", "clients", "exchanges", "values", "n304",
                               "third_party", "wasted_revalidations", "wasted_bytes") if k in ev}


def _identifier(ev: dict[str, Any], row: dict[str, Any]) -> str:
    name = validator_name(ev["validator"])
    if (ev.get("reflected_304s") or 0) > 0:
        ev["reflection"] = {"examples": list(row.get("reflected_examples") or [])}
        ev["rules_out_churn"] = (
            "the server answered 304 to If-None-Match values it never issued, sent by a "
            "client that held another value: a server validating its own tags cannot do that"
        )
        return (f"identifier by reflection: {ev['reflected_304s']} 304s to "
                f"{ev.get('reflected_values') or 0} never-issued If-None-Match values")
    if ev.get("kind") == "per-client-content":
        ev["rules_out_churn"] = (
            "each client kept its own value and got its own body, and no value or body was seen "
            "by two clients; values not tied to backends and not a known server format"
        )
        ev["rules_out_personalisation"] = (
            "no request carried a Cookie or Authorization: nothing but the cached value itself "
            "could tell the server which client asked"
        )
        return (f"identifier: {ev['clients']} clients each kept their own {name} value and their "
                f"own body with {ev['n304']} 304s, without cookies or credentials: the body "
                "carries the id")
    ruled = ["each value seen by exactly one client (load balancing shares values)",
             f"{content_phrase(ev)} under every value (not a content change)",
             "values not tied to backends and not a known server format"]
    if ev.get("overlapping_values"):
        ruled.append("the server accepted several values during the same period")
    if ev.get("reidentified_clients"):
        ruled.append(f"{ev['reidentified_clients']} client(s) got a new value only on an "
                     "unconditional refetch and then kept it with 304s (re-identified)")
    ev["rules_out_churn"] = "; ".join(ruled)
    basis = "identical content" if ev.get("content_basis") == "body hash" else (
        "content of the same size and type")
    return (f"identifier: {ev['clients']} clients each kept their own {name} value "
            f"and got {ev['n304']} 304s for {basis}")


def _undetermined(ev: dict[str, Any]) -> str:
    """What the capture cannot decide, and what would."""
    name = validator_name(ev["validator"])
    if ev.get("kind") == "personalised":
        ev["not_identifier_because"] = (
            "requests carried a Cookie or Authorization: a signed-in client gets content and "
            "validators of its own without any tracking"
        )
        return (f"undetermined: {ev['clients']} clients each kept their own {name} value and "
                "body, personalised for a signed-in client (cookies or credentials sent); "
                "not accused")
    ev["settle_with"] = _settle(ev)
    holders = ev.get("validator_clients") or 0
    if holders >= 2 and not ev.get("shared_by_clients"):
        ev["not_identifier_because"] = (
            "no client's value was shared, but the content under them differs or is unknown, "
            "or not every client kept its value with 304s"
        )
        return (f"undetermined: {holders} clients, {ev['values']} {name} values, none "
                "shared; the capture cannot tell per-client ids from content changes")
    if holders == 1 and (ev.get("clients") or 0) >= 2:
        lead = f"only one of {ev['clients']} clients got a {name}"
        why = "one value"
        ev["not_identifier_because"] = "one client holding a value proves nothing either way"
        return (f"undetermined: {lead} ({why}); a second client holding it settles it")
    if ev.get("digest_unverified"):
        ev["digest"] = "digest-shaped, unverified: no body was compared with it"
        why = "a digest-shaped value no body was compared with"
    elif ev["validator"] == "etag":
        why = f"about {ev.get('min_bits')} bits, no body or server format checked it"
    else:
        why = "a date nothing else confirms"
    return (f"undetermined: one client, one {name} value ({why}); a per-client token and a "
            "stable value look alike here: a second profile or `etagwatch probe URL` settles it")


def _changed(ev: dict[str, Any]) -> str:
    name = validator_name(ev["validator"])
    first, last = _date(ev.get("first_seen")), _date(ev.get("last_seen"))
    ev["dates"] = {"first_seen": first, "last_seen": last}
    lm = (ev.get("last_modified_values") or 0) >= 2
    ev["rules_out_churn"] = (
        "the values followed each other and never alternated or overlapped"
        + ("; Last-Modified moved with them" if lm else "")
        + (f"; at least {human_duration(ev['min_change_gap'])} between one value's last "
           "sighting and the next one's first" if isinstance(ev.get("min_change_gap"), int | float)
           and ev["min_change_gap"] == ev["min_change_gap"] else "")
    )
    ev["wasted_revalidations"] = 0
    ev["wasted_bytes"] = 0
    return (f"changed: {ev['values']} {name} values one after another between {first} and "
            f"{last} (a content change or redeploy, not churn); no revalidation wasted")


def _unseen_content(ev: dict[str, Any]) -> str:
    """Several clients, one value each, 304s only: what rules out the benign readings, what
    keeps it from ``identifier`` and what would settle it."""
    name = validator_name(ev["validator"])
    ev["content_unseen"] = True
    ev["rules_out_churn"] = (
        "each value seen by exactly one client (load balancing shares values); values not tied "
        "to backends, not a known server format, a digest or content-coding variants of one "
        "value; each client kept its one value with 304s"
    )
    ev["not_identifier_because"] = (
        f"no 2xx response with a body was seen ({ev.get('fetches_2xx') or 0} issued the {name}), "
        "so identical content under every value is unknown (a content change between clients "
        "could explain the values), and a browser may have cached its value before the capture"
    )
    ev["confirm_with"] = (
        "a 200 response with the same body under two values, or `etagwatch probe URL`, whose "
        "forged-tag test shows reflection directly"
    )
    return (f"likely identifier: {ev['clients']} clients each kept their own high-entropy {name} "
            f"value ({ev['values']} values, none shared) with {ev['n304']} 304s; no 2xx body "
            "seen, so identical content is unconfirmed")


def _churn(ev: dict[str, Any], row: dict[str, Any]) -> str:
    name = validator_name(ev["validator"])
    cause = churn_cause(row)
    ev["cause"] = cause or _fallback_cause(ev)
    mapping = row.get("value_backends")
    if isinstance(mapping, dict):
        ev["value_backends"] = mapping
        ev["backend_labels"] = sorted({b["label"] for bs in mapping.values() for b in bs})
    across = f" across {ev['backends']} backends" if ev.get("backends") else ""
    basis = "identical content" if ev.get("content_basis") == "body hash" else (
        "content of the same size and type")
    return (f"churn: {ev['values']} {name} values for {basis}{across}; "
            f"{ev.get('wasted_revalidations') or 0} revalidations answered 200 with the same body "
            f"({human_bytes(ev.get('wasted_bytes') or 0)} resent); cause: {ev['cause']}")


def build(resources: pd.DataFrame) -> tuple[list[dict[str, Any]], list[str]]:
    """(evidence, explanation) lists aligned with the rows of ``resources``."""
    evidence: list[dict[str, Any]] = []
    explanation: list[str] = []
    cols = [c for c in _COUNTS if c in resources.columns]
    extra = [c for c in (*_CAUSES, "reflected_examples", "value_backends", "verdict",
                         "content_unseen")
             if c in resources.columns]
    plain_cols = [_plain_column(resources[c]) for c in cols]
    extra_cols = [resources[c].tolist() for c in extra]
    for values, extras in zip(zip(*plain_cols, strict=True) if cols else ([()] * len(resources)),
                              zip(*extra_cols, strict=True), strict=True):
        ev = dict(zip(cols, values, strict=True))
        row = {**ev, **dict(zip(extra, extras, strict=True))}
        verdict = row["verdict"]
        name = validator_name(ev.get("validator"))
        text: str
        if verdict == "identifier":
            text = _identifier(ev, row)
        elif verdict == "likely-identifier" and row.get("content_unseen") is True:
            text = _unseen_content(ev)
        elif verdict == "likely-identifier":
            ev["confirm_with"] = (
                "fetch this URL from a second, fresh client: a different value that then stays "
                "stable with 304s confirms an identifier; the same value rules it out"
            )
            text = (f"likely identifier: one client kept a high-entropy {name} "
                    f"value with {ev['n304']} 304s; needs a second client to confirm")
        elif verdict == "churn":
            text = _churn(ev, row)
        elif verdict == "unstable":
            text = (f"unstable: {ev['values']} {name} values over "
                    f"{ev['fetches_2xx']} responses, never a 304")
        elif verdict == "changed":
            text = _changed(ev)
        elif verdict == "undetermined":
            text = _undetermined(ev)
        elif verdict == "stable":
            kind = "content-derived" if ev.get("content_derived") else "stable"
            ev["kind"] = kind
            ev["benign_because"] = _why_benign(ev)
            if kind == "content-derived" and ev.get("digest_verified"):
                text = (f"content-derived: the {name} is the body's {ev.get('digest_kind')} "
                        f"digest (verified), {ev['n304']} 304s")
            elif kind == "content-derived":
                text = (f"content-derived: {ev['values']} {name} values, one per body "
                        f"(body hash), {ev['n304']} 304s")
            elif ev.get("values") == 1:
                text = f"stable: one {name} value, {ev['n304']} 304s; {ev['benign_because']}"
            else:
                text = (f"stable: {ev['values']} {name} values, no sign of identifier, churn "
                        f"or instability; {ev['benign_because']}")
        else:
            ev = _none_evidence(ev)
            text = "no validator: neither ETag nor Last-Modified seen"
        if verdict in ACCUSING:
            ev["scope"], ev["scope_basis"] = scope(ev)
        if ev.get("validator") == "etag" and verdict != "none":
            ev["information"] = _bits(ev)
        if verdict in ACCUSING:
            text += f"; scope {ev['scope']}"
        evidence.append(ev)
        explanation.append(text)
    return evidence, explanation
