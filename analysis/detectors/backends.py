"""Who answered: the detectors' backend keys as objects a person can read.

``prepare`` keys a backend as ``<JSON of backend-hint headers>|<server IP>`` (either part may be
empty). Evidence shows each backend as ``{"label", "headers", "server_ip"}``: the label is the
most specific hint present, so a reader sees ``x-backend: apache-1`` rather than a JSON string.
``node_hints`` drops the per-request parts of hints (cf-ray ids, x-cache HIT / MISS) before
``prepare`` builds the keys: otherwise every response would count as its own backend.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

#: Hints naming one node, most specific first; prefix entries end in '*'. Server IP follows,
#: then the hints naming software or a cache layer rather than a node.
_NODE_HINTS = ("x-backend*", "x-served-by", "x-server", "x-host", "x-upstream", "x-amz-cf-pop",
               "cf-ray", "via")
#: Per-request ids (x-fastly-request-id, x-vercel-id, ...) name no node: never a label.
_SOFTWARE_HINTS = ("server", "x-cache")


#: Hint headers that change per request: only the part naming the node (POP / region) is kept,
#: or nothing. Left whole, a per-request id makes every response look like its own backend.
_PER_REQUEST = ("cf-ray", "fly-request-id", "x-vercel-id", "x-fastly-request-id",
                "x-akamai-request-id", "x-azure-ref", "x-cache", "x-cache-hits")


def _node_part(name: str, value: str) -> str | None:
    """The node-naming part of a per-request hint, None when it names none."""
    if name in ("cf-ray", "fly-request-id"):  # "8a1b2c3d4e5f6a7b-FRA", "01HX...-ams"
        return value.rsplit("-", 1)[1] if "-" in value else None
    if name == "x-vercel-id":  # "fra1::iad1::abcde-1700000000000-0123456789ab"
        return value.rsplit("::", 1)[0] if "::" in value else None
    if name == "x-cache":  # Squid: "MISS from proxy-2.example"; "HIT" alone names no node
        nodes = [w.split()[0] for w in value.split(" from ")[1:] if w.split()]
        return ", ".join(nodes) or None
    return None


def node_hints(backend: str) -> str | None:
    """A backend field (JSON of hint headers) without per-request parts, so that responses
    from one node share one backend key; unchanged when it holds no per-request hint."""
    if not any(name in backend for name in _PER_REQUEST):
        return backend
    try:
        hints = json.loads(backend)
    except ValueError:
        return backend
    if not isinstance(hints, dict):
        return backend
    kept = {}
    for name, value in hints.items():
        if name in _PER_REQUEST:
            value = _node_part(name, str(value))
        if value is not None:
            kept[name] = value
    return json.dumps(kept, separators=(",", ":"), sort_keys=True) if kept else None


def backend_key(backend: object, server_ip: object) -> str | None:
    """The key ``prepare`` gives one response's backend (``backend`` hints JSON, server IP):
    for code that labels exchanges one by one, such as the notebook, so it names backends
    exactly as the detectors' evidence does (``describe``)."""
    hints = node_hints(backend) if isinstance(backend, str) and backend else None
    ip = server_ip if isinstance(server_ip, str) else ""
    key = f"{hints or ''}|{ip}"
    return None if key == "|" else key


def parse_key(key: object) -> tuple[dict[str, str], str | None]:
    """(hint headers, server IP) of a backend key; unusable parts become empty."""
    if not isinstance(key, str) or not key:
        return {}, None
    hints, _, ip = key.rpartition("|")
    headers: dict[str, str] = {}
    if hints:
        try:
            decoded = json.loads(hints)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            headers = {str(k): str(v) for k, v in decoded.items()}
    return headers, ip or None


def _matches(name: str, pattern: str) -> bool:
    return name.startswith(pattern[:-1]) if pattern.endswith("*") else name == pattern


def label_parts(headers: dict[str, str], server_ip: str | None) -> list[str]:
    """Every hint as ``name: value``, most specific first (the label is the first)."""
    parts: list[str] = []
    for pattern in _NODE_HINTS:
        for name in sorted(n for n in headers if _matches(n, pattern)):
            parts.append(f"{name}: {headers[name]}")
    if server_ip:
        parts.append(f"ip {server_ip}")
    parts += [f"{n}: {headers[n]}" for n in _SOFTWARE_HINTS if n in headers]
    return parts or ["unknown backend"]


def describe(keys: Iterable[object]) -> dict[object, dict[str, Any]]:
    """Backend objects for the keys of one resource. Labels stay distinct: when two backends
    share the most specific hint, their labels carry every hint that tells them apart."""
    keys = list(dict.fromkeys(keys))
    parsed = {k: parse_key(k) for k in keys}
    parts = {k: label_parts(*parsed[k]) for k in keys}
    best = {k: p[0] for k, p in parts.items()}
    labels = dict(best)
    for k in keys:
        others = [set(parts[o]) for o in keys if o != k and best[o] == best[k]]
        differ = [p for p in parts[k][1:] if any(p not in o for o in others)]
        if differ:
            labels[k] = ", ".join([best[k], *differ])
    out = {}
    for k in keys:
        headers, ip = parsed[k]
        out[k] = {"label": labels[k], "headers": headers, "server_ip": ip}
    return out
