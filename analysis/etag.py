"""Entity-tags (RFC 9110 8.8.3): parse ETag, If-Match, If-None-Match and If-Range values, compare.

Real servers send unquoted tags, ``w/``, spaces inside tags and the like; browsers echo them back.
The parsers here are lenient (they recover a tag whenever one can be read) and strict at once
(every departure from the RFC grammar is reported in ``violations``), so a detector can count
deviations while still following the tag. ``violations`` holds only the constant strings defined
below, so callers can test for a kind of violation with ``in``.

Written here rather than taken from a library: httplint and mitmproxy validate the grammar but
neither recovers a tag from a malformed value nor says what is wrong with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

# --- violation kinds (stable strings; new kinds may be added, existing ones never renamed) -----
EMPTY = "empty entity-tag (RFC 9110 8.8.3)"
UNQUOTED = "entity-tag not in double quotes (RFC 9110 8.8.3)"
LOWERCASE_WEAK = "weak indicator 'w/' in lower case; it is case-sensitive 'W/' (RFC 9110 8.8.3)"
SPACE_AFTER_WEAK = "space between 'W/' and the opening quote (RFC 9110 8.8.3)"
UNTERMINATED = "entity-tag lacks its closing double quote (RFC 9110 8.8.3)"
TRAILING_TEXT = "text after the closing double quote of the entity-tag (RFC 9110 8.8.3)"
BAD_CHARACTER = (
    "entity-tag contains a character not allowed in etagc: space, control or DEL (RFC 9110 8.8.3)"
)
STAR_IN_LIST = "'*' combined with other list members; the field is '*' or a list of tags (RFC 9110 13.1.1, 13.1.2)"
EMPTY_LIST_ELEMENT = (
    "empty list element; recipients ignore it, senders must not send it (RFC 9110 5.6.1)"
)

#: List-level violations that a recipient must tolerate (RFC 9110 5.6.1.2): they do not make
#: the field invalid.
TOLERATED: frozenset[str] = frozenset({EMPTY_LIST_ELEMENT})

_OWS = " \t"


@dataclass(frozen=True, slots=True)
class EntityTag:
    """One entity-tag: ``opaque`` is the text between the double quotes."""

    opaque: str
    weak: bool = False

    def __str__(self) -> str:
        return f'{"W/" if self.weak else ""}"{self.opaque}"'


class ETagParse(NamedTuple):
    """An ETag (or single entity-tag) value: the tag read from it, if any, and what was wrong."""

    tag: EntityTag | None
    violations: tuple[str, ...]

    @property
    def valid(self) -> bool:
        """True when the value is exactly an RFC 9110 entity-tag."""
        return self.tag is not None and not self.violations


class ETagListParse(NamedTuple):
    """An If-Match / If-None-Match value: ``"*"`` or a list of entity-tags."""

    tags: tuple[EntityTag, ...]
    star: bool
    violations: tuple[str, ...]

    @property
    def valid(self) -> bool:
        """True when the value follows ``"*" / #entity-tag`` as a recipient must accept it."""
        return all(v in TOLERATED for v in self.violations)


#: A character outside etagc = "!" / %x23-7E / obs-text (a double quote cannot occur here: it
#: ends the tag).
_BAD_CHARACTER = re.compile("[^!\x23-\x7e\x80-\U0010ffff]")


def _bad_character(text: str) -> bool:
    return _BAD_CHARACTER.search(text) is not None


def _decoded(value: object) -> str | None:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "surrogateescape")  # as mitmproxy decodes headers
    return value if isinstance(value, str) else None


def parse_etag(value: str | bytes) -> ETagParse:
    """Read one entity-tag from a field value; never raises.

    Surrounding spaces and tabs are optional whitespace around a field value, not a violation.
    """
    value = _decoded(value)
    if value is None:
        return ETagParse(None, (EMPTY,))
    text = value.strip(_OWS)
    violations: list[str] = []
    weak = False
    if text[:2] in ("W/", "w/"):
        weak = True
        if text[0] == "w":
            violations.append(LOWERCASE_WEAK)
        text = text[2:]
        if text[:1] in (" ", "\t"):
            violations.append(SPACE_AFTER_WEAK)
            text = text.lstrip(_OWS)
    if not text:
        violations.append(EMPTY)
        return ETagParse(None, tuple(violations))
    if text[0] == '"':
        end = text.find('"', 1)
        if end < 0:
            violations.append(UNTERMINATED)
            opaque = text[1:]
        else:
            opaque = text[1:end]
            if text[end + 1 :]:
                violations.append(TRAILING_TEXT)
    else:
        violations.append(UNQUOTED)
        opaque = text[:-1] if text.endswith('"') else text
        if '"' in opaque:
            violations.append(TRAILING_TEXT)
            opaque = opaque[: opaque.index('"')].rstrip(_OWS)
    if _bad_character(opaque):
        violations.append(BAD_CHARACTER)
    if not opaque and (not text.startswith('"') or UNTERMINATED in violations):
        violations.append(EMPTY)
        return ETagParse(None, tuple(violations))
    return ETagParse(EntityTag(opaque, weak), tuple(violations))


def split_list(value: str) -> list[str]:
    """Split a list field value at commas outside double quotes (``"a,b"`` is one tag).

    Members keep their text with surrounding optional whitespace removed; empty members stay.
    """
    members: list[str] = []
    start = 0
    quoted = False
    for i, char in enumerate(value):
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            members.append(value[start:i].strip(_OWS))
            start = i + 1
    members.append(value[start:].strip(_OWS))
    return members


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def parse_etag_list(value: str | bytes) -> ETagListParse:
    """Read an If-Match / If-None-Match value (``"*" / #entity-tag``); never raises.

    An empty value is a valid empty list. ``*`` next to other members sets ``star`` and is
    reported as :data:`STAR_IN_LIST`; callers decide what an invalid field means.
    """
    value = _decoded(value)
    if value is None:
        return ETagListParse((), False, (EMPTY,))
    text = value.strip(_OWS)
    if text == "*":
        return ETagListParse((), True, ())
    if not text:
        return ETagListParse((), False, ())
    tags: list[EntityTag] = []
    violations: list[str] = []
    star = False
    for member in split_list(text):
        if not member:
            violations.append(EMPTY_LIST_ELEMENT)
        elif member == "*":
            star = True
            violations.append(STAR_IN_LIST)
        else:
            parsed = parse_etag(member)
            violations.extend(parsed.violations)
            if parsed.tag is not None:
                tags.append(parsed.tag)
    return ETagListParse(tuple(tags), star, _unique(violations))


def _as_tag(value: EntityTag | str | None) -> EntityTag | None:
    if value is None or isinstance(value, EntityTag):
        return value
    return parse_etag(value).tag


def strong_match(a: EntityTag | str | None, b: EntityTag | str | None) -> bool:
    """RFC 9110 8.8.3.2 strong comparison: neither tag weak and the opaque tags identical.

    Strings are parsed leniently first; an unreadable one matches nothing.
    """
    ta, tb = _as_tag(a), _as_tag(b)
    return (
        ta is not None and tb is not None and not ta.weak and not tb.weak and ta.opaque == tb.opaque
    )


def weak_match(a: EntityTag | str | None, b: EntityTag | str | None) -> bool:
    """RFC 9110 8.8.3.2 weak comparison: the opaque tags identical, either or both may be weak."""
    ta, tb = _as_tag(a), _as_tag(b)
    return ta is not None and tb is not None and ta.opaque == tb.opaque
