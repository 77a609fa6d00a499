"""Who answered: the detectors' backend keys as objects a person can read.

``prepare`` keys a backend as ``<JSON of backend-hint headers>|<server IP>`` (either part may be
empty). Evidence shows each backend as ``{"label", "headers", "server_ip"}``: the label is the
most specific hint present, so a reader sees ``x-backend: apache-1`` rather than a JSON string.
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


def _hint_value(name: str, value: str) -> str:
    if name == "cf-ray" and "-" in value:
        return value.rsplit("-", 1)[1]  # "8a1b2c3d4e5f6a7b-FRA": the POP, not the request id
    return value


def label_parts(headers: dict[str, str], server_ip: str | None) -> list[str]:
    """Every hint as ``name: value``, most specific first (the label is the first)."""
    parts: list[str] = []
    for pattern in _NODE_HINTS:
        for name in sorted(n for n in headers if _matches(n, pattern)):
            parts.append(f"{name}: {_hint_value(name, headers[name])}")
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
    labels = {k: p[0] for k, p in parts.items()}
    clashing = [k for k in keys if sum(labels[o] == labels[k] for o in keys) > 1]
    for k in clashing:
        others = [set(parts[o]) for o in clashing if o != k and labels[o] == labels[k]]
        differ = [p for p in parts[k][1:] if any(p not in o for o in others)]
        labels[k] = ", ".join([parts[k][0], *differ]) if differ else labels[k]
    out = {}
    for k in keys:
        headers, ip = parsed[k]
        out[k] = {"label": labels[k], "headers": headers, "server_ip": ip}
    return out
