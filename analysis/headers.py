"""Header lists as HAR files and flows carry them: ordered, repeatable, any name case.

Everything downstream sees ``list[tuple[str, str]]`` with lower-case, trimmed names, repeated
fields kept in order. HTTP/2 and HTTP/3 pseudo-headers (``:authority`` and friends) are split off:
they are request-line data, not fields, and Chrome lists them among the headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter

Headers = list[tuple[str, str]]

#: Pseudo-header -> the field it stands for when the regular one is absent.
PSEUDO_TO_FIELD: dict[str, str] = {":authority": "host"}


def normalise(pairs: Iterable[tuple[str, str]]) -> tuple[Headers, dict[str, str]]:
    """Split (name, value) pairs into regular fields and pseudo-headers, names lower-cased.

    ``:authority`` is also added as ``host`` when no Host field was sent, as HTTP/2 intends.
    Entries with an empty name are dropped (they are not fields).
    """
    return split_pseudo([(n.strip().lower(), v) for n, v in pairs])


def split_pseudo(fields: Headers) -> tuple[Headers, dict[str, str]]:
    """``normalise`` for names already trimmed and lower-cased (readers lower-case in the
    comprehension that builds the list, so each header is touched once)."""
    if not fields:
        return fields, {}
    # The smallest name is '' or starts with ':' whenever any name does (':' sorts before
    # letters): one C-level min() instead of a Python test per field in the common case.
    first = min(fields, key=_name)[0][:1]
    if first > ":" or (first and first != ":" and not _has_pseudo(fields)):
        return fields, {}
    pseudo: dict[str, str] = {}
    for n, v in fields:
        if n[:1] == ":":
            pseudo.setdefault(n, v)
    fields = [(n, v) for n, v in fields if n and n[0] != ":"]
    if ":authority" in pseudo and not any(n == "host" for n, _ in fields):
        fields.append(("host", pseudo[":authority"]))
    return fields, pseudo


_name = itemgetter(0)

def _has_pseudo(fields: Headers) -> bool:
    return any(not n or n[0] == ":" for n, _ in fields)


def values(headers: Headers, name: str) -> list[str]:
    """All values of one (lower-case) field name, in order."""
    return [v for n, v in headers if n == name]


def joined(headers: Headers, name: str) -> str | None:
    """A field's combined value (RFC 9110 5.3: repeated fields joined by ', '), or None."""
    found = values(headers, name)
    if not found:
        return None
    return found[0] if len(found) == 1 else ", ".join(found)


def to_dict(headers: Headers) -> dict[str, list[str]]:
    """name -> values, for looking several fields up in one pass."""
    out: dict[str, list[str]] = {}
    for n, v in headers:
        out.setdefault(n, []).append(v)
    return out


class NameMatcher:
    """Matches lower-case field names against a configured list: exact names, or prefixes
    written with a trailing '*' (``x-backend*``). Compiled once, used per response."""

    __slots__ = ("_memo", "exact", "prefixes")

    def __init__(self, patterns: Iterable[str]) -> None:
        pats = [p.strip().lower() for p in patterns if p.strip()]
        self.exact = frozenset(p for p in pats if not p.endswith("*"))
        self.prefixes = tuple(p[:-1] for p in pats if p.endswith("*"))
        self._memo: dict[str, bool] = {}

    def __call__(self, name: str) -> bool:
        return name in self.exact or (bool(self.prefixes) and name.startswith(self.prefixes))

    def pick(self, names: Iterable[str]) -> list[str]:
        """The matching names, in order; answers are memoised per name (a capture's
        responses carry the same few dozen names over and over)."""
        memo = self._memo
        try:
            return [n for n in names if memo[n]]
        except KeyError:
            if len(memo) > 4096:
                memo.clear()
            names = list(names)
            for n in names:
                memo[n] = self(n)
            return [n for n in names if memo[n]]


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether a lower-case name matches one of ``patterns`` (exact, or prefix ending in '*')."""
    return NameMatcher(patterns)(name)
