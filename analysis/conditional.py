"""Precondition evaluation exactly as RFC 9110 13.2.1 and 13.2.2 say, with the reasoning spelled out.

``evaluate`` answers what an RFC-conforming origin server does with a conditional request, given
the current representation's validators. Detectors use it to judge the 304s and 412s servers
send; the replay addon uses it to answer like a correct server. Each peer implementation (Django,
Werkzeug, Go, nginx, Apache) departs from the RFC somewhere, so none of them is used here.

Decisions taken where the RFC leaves room (each one is also told in ``Decision.reason`` or
``Decision.ignored`` when it matters):

* ``exists`` says whether a current representation exists. ``exists=False`` drops ``etag`` and
  ``last_modified``; ``If-Match: *`` and If-Match tags are then false (412), ``If-None-Match: *``
  is true. For a GET or HEAD, ``exists=False`` means the unconditional response is 404 (neither
  method can create the resource), so 13.2.1 has every precondition ignored and the decision is
  200, "perform the method" (whose answer is that 404). For other methods evaluate assumes, as
  13.2.2 does, that without the preconditions the response would be 2xx (a PUT that creates, for
  example). When the caller knows otherwise, ``unconditional_status`` says what it would be.
* A field value that is not the RFC grammar is not treated as matching: an If-Match /
  If-None-Match value that is neither ``*`` nor a list of entity-tags (an unquoted member,
  ``*`` next to tags) takes the "Otherwise" branch of 13.1.1 / 13.1.2: If-Match false, If-None-Match
  true. Both fall back to the safe answer (no lost update; a full response). Django instead drops
  malformed members silently and matches the rest; Go counts ``*`` anywhere in the list. A current
  ETag that is not a valid entity-tag is treated as no entity-tag at all.
* An empty If-Match value is a present, empty list (``#entity-tag`` allows it): nothing matches,
  so 412. Go and Django treat it as absent.
* If-Range with an HTTP-date matches only a Last-Modified of exactly the same second. 8.8.2.2 also
  requires that date to be a strong validator, which depends on facts headers do not carry (did
  the representation change twice within that second?); an exact match is taken as strong, as Go
  does, because refusing every date would punish clients that follow 13.1.5.
* Range: only GET has range handling (14.2), only the ``bytes`` unit is known; the range set
  itself is not validated (an unsatisfiable range would get 416 from a server, not 206).
* The 2xx escape of steps 1 and 2 (the requested change is already in effect) cannot be seen in
  headers: evaluate answers 412 and says so in the reason.
* Method names are matched case-insensitively for the caller's convenience.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from analysis.etag import EntityTag, parse_etag, parse_etag_list, strong_match, weak_match
from analysis.httpdate import LIST_OF_DATES, parse_http_date

#: Request fields defined in RFC 9110 13.1 (plus Range, which If-Range governs).
CONDITIONAL_FIELDS: tuple[str, ...] = (
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
)
_DISPLAY = {
    "if-match": "If-Match",
    "if-none-match": "If-None-Match",
    "if-modified-since": "If-Modified-Since",
    "if-unmodified-since": "If-Unmodified-Since",
    "if-range": "If-Range",
    "range": "Range",
}
#: Methods that neither select nor modify a representation (13.2.1).
EXEMPT_METHODS: frozenset[str] = frozenset({"CONNECT", "OPTIONS", "TRACE"})
_READS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class Decision:
    """What an RFC 9110 origin server does with the request.

    status: 200 perform the method, 206 serve the requested range, 304 Not Modified, 412
    Precondition Failed (428 only from :func:`precondition_required`). reason: the deciding step
    in plain words. rfc: the clause, such as 'RFC 9110 13.2.2 step 3'. step: the 13.2.2 step that
    decided (None when 13.2.1 set the preconditions aside). ignored: headers set aside and why.
    checked: every condition evaluated on the way, in order, with its result.
    """

    status: int
    reason: str
    rfc: str
    step: int | None = None
    ignored: tuple[str, ...] = ()
    checked: tuple[str, ...] = ()


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "surrogateescape")  # as mitmproxy decodes headers
    return value if isinstance(value, str) else str(value)


HEADERS_SHAPES = (
    "a mapping, mitmproxy / httpx Headers, (name, value) pairs or 'Name: value' lines"
)


def _unreadable(headers: Any, detail: str) -> TypeError:
    shown = repr(headers)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return TypeError(f"request_headers must be {HEADERS_SHAPES}; got {shown} ({detail})")


def _line(text: str, whole: Any) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise _unreadable(whole, f"{text[:40]!r} is not a 'Name: value' line")
    return name, value.strip(" \t")


def _pairs(headers: Any) -> Iterable[tuple[Any, Any]]:
    """(name, value) pairs from every shape ``evaluate`` documents; TypeError for the rest."""
    if headers is None:
        return ()
    if isinstance(headers, str | bytes | bytearray):  # a header block: lines of 'Name: value'
        text = _text(headers)
        return [_line(t, headers) for t in text.replace("\r\n", "\n").split("\n") if t.strip()]
    if hasattr(headers, "fields") and not isinstance(headers, Mapping | list | tuple):
        return headers.fields  # mitmproxy Headers: raw (name, value) lines, repeats kept
    if hasattr(headers, "multi_items"):
        return headers.multi_items()  # httpx / starlette style
    if hasattr(headers, "items"):
        return headers.items()
    try:
        items = list(headers)
    except TypeError:
        raise _unreadable(headers, "not iterable") from None
    pairs = []
    for item in items:
        if isinstance(item, str | bytes | bytearray):
            pairs.append(_line(_text(item), headers))
        elif isinstance(item, list | tuple) and len(item) == 2:
            pairs.append((item[0], item[1]))
        else:
            raise _unreadable(headers, f"{item!r:.40} is neither a pair nor a line")
    return pairs


def field_lines(headers: Any) -> dict[str, list[str]]:
    """Header lines by lower-case name, repeats kept in order, from any shape ``evaluate``
    documents; TypeError naming the shapes for anything else."""
    lines: dict[str, list[str]] = {}
    for name, value in _pairs(headers):
        values = value if isinstance(value, list | tuple) else (value,)
        for one in values:
            lines.setdefault(_text(name).strip().lower(), []).append(_text(one))
    return lines


def _combined(lines: dict[str, list[str]], name: str) -> str | None:
    """The field value as HTTP combines repeated list fields (13.1; 5.3)."""
    values = lines.get(name)
    return None if values is None else ", ".join(values)


def _tag_words(tag: EntityTag | None) -> str:
    return "no entity-tag" if tag is None else f"ETag {tag}"


class _Run:
    """One evaluation: collects notes while walking the 13.2.2 steps."""

    def __init__(self, method: str, lines: dict[str, list[str]]) -> None:
        self.method = method
        self.lines = lines
        self.ignored: list[str] = []
        self.checked: list[str] = []

    def decide(
        self, status: int, reason: str, step: int | None, rfc: str | None = None
    ) -> Decision:
        rfc = rfc or (f"RFC 9110 13.2.2 step {step}" if step else "RFC 9110 13.2.1")
        return Decision(status, reason, rfc, step, tuple(self.ignored), tuple(self.checked))

    def check(self, field: str, ok: bool, words: str) -> None:
        self.checked.append(f"{field} {'true' if ok else 'false'}: {words}")

    def fail_status(self) -> int:
        return 304 if self.method in _READS else 412


def _if_match(value: str, tag: EntityTag | None, exists: bool) -> tuple[bool, str]:
    """13.1.1: strong comparison; '*' is true when a current representation exists."""
    parsed = parse_etag_list(value)
    if not parsed.valid:
        return False, (
            f"If-Match {value!r} is neither '*' nor a list of entity-tags "
            f"({parsed.violations[0]}), so it is false (13.1.1)"
        )
    if parsed.star:
        if exists:
            return True, "If-Match * is true: a current representation exists (13.1.1)"
        return False, "If-Match * is false: no current representation exists (13.1.1)"
    if not parsed.tags:
        return False, "If-Match lists no entity-tags, so none can match (13.1.1)"
    listed = ", ".join(str(t) for t in parsed.tags)
    for candidate in parsed.tags:
        if strong_match(candidate, tag):
            return (
                True,
                f"If-Match {candidate} matched the current {tag} by strong comparison (13.1.1)",
            )
    if tag is not None and tag.weak and any(t.opaque == tag.opaque for t in parsed.tags):
        why = f"the current {_tag_words(tag)} is weak, and If-Match uses strong comparison, which a weak tag never passes"
    else:
        why = f"none of {listed} matches the current {_tag_words(tag)} by strong comparison"
    return False, f"If-Match is false: {why} (13.1.1, 8.8.3.2)"


def _if_none_match(value: str, tag: EntityTag | None, exists: bool) -> tuple[bool, str]:
    """13.1.2: weak comparison for every method; '*' is false when a representation exists."""
    parsed = parse_etag_list(value)
    if not parsed.valid:
        return True, (
            f"If-None-Match {value!r} is neither '*' nor a list of entity-tags "
            f"({parsed.violations[0]}), so it is true (13.1.2)"
        )
    if parsed.star:
        if exists:
            return False, "If-None-Match * matched: a current representation exists (13.1.2)"
        return True, "If-None-Match * is true: no current representation exists (13.1.2)"
    for candidate in parsed.tags:
        if weak_match(candidate, tag):
            return False, f"If-None-Match matched {candidate} by weak comparison (13.1.2)"
    listed = ", ".join(str(t) for t in parsed.tags) or "no entity-tags"
    return True, (
        f"If-None-Match is true: {listed} does not match the current {_tag_words(tag)} (13.1.2)"
    )


def _date_field(run: _Run, name: str, last_modified: float | None, clause: str) -> float | None:
    """The date of If-Modified-Since / If-Unmodified-Since, or None after noting why it is ignored."""
    shown = _DISPLAY[name]
    values = run.lines[name]
    if len(values) > 1:
        run.ignored.append(f"{shown} ignored: it holds more than one date ({clause})")
        return None
    parsed = parse_http_date(values[0])
    if not parsed.valid:
        what = (
            "more than one date" if LIST_OF_DATES in parsed.violations else "not a valid HTTP-date"
        )
        run.ignored.append(f"{shown} ignored: {values[0]!r} is {what} ({clause})")
        return None
    if last_modified is None:
        run.ignored.append(
            f"{shown} ignored: the resource has no modification date (no valid Last-Modified) ({clause})"
        )
        return None
    return parsed.timestamp


def _if_range(value: str, tag: EntityTag | None, last_modified: float | None) -> tuple[bool, str]:
    """13.1.5: an entity-tag must match strongly; a date must equal Last-Modified exactly."""
    text = value.strip(" \t")
    if text.startswith(('"', "W/", "w/")):
        parsed = parse_etag(text)
        if not parsed.valid:
            return False, f"If-Range {value!r} is not a valid entity-tag ({parsed.violations[0]})"
        assert parsed.tag is not None
        if parsed.tag.weak:
            return False, f"If-Range {parsed.tag} is weak, and If-Range needs a strong match"
        if strong_match(parsed.tag, tag):
            return True, f"If-Range {parsed.tag} matched the current {tag} by strong comparison"
        return False, f"If-Range {parsed.tag} does not strongly match the current {_tag_words(tag)}"
    date = parse_http_date(text)
    if not date.valid:
        return False, f"If-Range {value!r} is neither an entity-tag nor an HTTP-date"
    if last_modified is None:
        return False, "If-Range holds a date but the resource has no Last-Modified to compare with"
    if date.timestamp == last_modified:
        return (
            True,
            "If-Range date equals Last-Modified exactly (taken as a strong validator, 8.8.2.2)",
        )
    return False, "If-Range date is not exactly the Last-Modified date"


def _range_step(run: _Run, exists: bool, tag: EntityTag | None, lm: float | None) -> Decision:
    """Steps 5 and 6: If-Range decides whether a Range on GET is served (206) or ignored (200)."""
    range_value = _combined(run.lines, "range")
    if_range = run.lines.get("if-range")
    done = "no precondition failed" if run.checked else "no preconditions to evaluate"
    if range_value is None:
        if if_range is not None:
            run.ignored.append("If-Range ignored: the request has no Range (13.1.5)")
        return run.decide(200, f"{done.capitalize()}, so perform {run.method}: 200", 6)
    if run.method != "GET":
        run.ignored.append(
            f"Range ignored: range handling is defined only for GET, not {run.method} (14.2)"
        )
        if if_range is not None:
            run.ignored.append(
                "If-Range ignored: it applies only to GET with Range (13.2.2 step 5)"
            )
        return run.decide(200, f"{done.capitalize()}, so perform {run.method}: 200", 6)
    if not range_value.strip(" \t").lower().startswith("bytes="):
        run.ignored.append(f"Range ignored: {range_value!r} is not in the bytes unit (14.2)")
        return run.decide(200, f"{done.capitalize()}; the Range is ignored, so 200", 6)
    if not exists:
        run.ignored.append("Range ignored: no current representation to take a range of")
        return run.decide(
            200, f"{done.capitalize()}; no representation exists for the Range, so 200", 6
        )
    if if_range is None:
        return run.decide(
            206,
            f"{done.capitalize()} and Range asks for part of it, so 206",
            6,
            "RFC 9110 13.2.2 step 6, 14.2",
        )
    ok, words = (
        _if_range(if_range[0], tag, lm)
        if len(if_range) == 1
        else (False, "If-Range holds more than one validator")
    )
    run.check("If-Range", ok, f"{words} (13.1.5)")
    if ok:
        return run.decide(206, f"{words}, so the Range is served: 206", 5)
    return run.decide(
        200, f"{words}, so the Range is ignored and the whole representation sent: 200", 5
    )


def evaluate(
    method: str,
    request_headers: Any,
    etag: str | None = None,
    last_modified: str | None = None,
    exists: bool = True,
    *,
    unconditional_status: int | None = None,
) -> Decision:
    """What an RFC 9110 origin server answers to a conditional request.

    request_headers: a mapping (a value may be a list of field lines), a list of (name, value)
    pairs, mitmproxy / httpx Headers or anything with ``.items()`` / ``.fields``, or a header
    block as text (``"If-None-Match: x\r\nRange: bytes=0-1"``) or a list of such lines; names
    are case-insensitive and repeated list fields are combined. etag / last_modified: the
    current representation's ETag and Last-Modified field values (anything else reads as an
    invalid value, not an error). exists: whether a current representation exists.
    unconditional_status: the status the request would get without its preconditions, when
    known (see the module docstring).

    Malformed field values never raise: they are what the answer is about. Raises TypeError,
    with a message naming the accepted shapes, only when request_headers has none of the
    shapes above (``5``, ``[(1, 2, 3)]``, ``["no colon"]``) or unconditional_status is not an
    integer.
    """
    if unconditional_status is not None and (
        isinstance(unconditional_status, bool) or not isinstance(unconditional_status, int)
    ):
        raise TypeError(
            f"unconditional_status must be an int status code or None; got {unconditional_status!r}"
        )
    run = _Run(_text(method).strip().upper(), field_lines(request_headers))
    present = [_DISPLAY[n] for n in CONDITIONAL_FIELDS if n in run.lines]

    if run.method in EXEMPT_METHODS:
        if present:
            run.ignored.append(
                f"{', '.join(present)} ignored: {run.method} neither selects nor modifies a representation (13.2.1)"
            )
        return run.decide(
            200, f"Preconditions do not apply to {run.method}, so perform it: 200", None
        )
    if unconditional_status is None and not exists and run.method in ("GET", "HEAD"):
        # 13.2.1: a GET or HEAD cannot create the resource, so without its preconditions the
        # answer would be 404; no caller should have to say so
        unconditional_status = 404
    if unconditional_status is not None and not (
        200 <= unconditional_status < 300 or unconditional_status == 412
    ):
        if present:
            run.ignored.append(
                f"{', '.join(present)} ignored: without them the response would be {unconditional_status} (13.2.1)"
            )
        return run.decide(
            200,
            f"Without preconditions the response would be {unconditional_status}, so they are ignored "
            f"and the method performed (the server answers {unconditional_status})",
            None,
        )

    if not exists and (etag is not None or last_modified is not None):
        run.ignored.append(
            "ETag and Last-Modified given but not used: exists=False means no current representation"
        )
        etag = last_modified = None
    tag: EntityTag | None = None
    if etag is not None:
        parsed = parse_etag(_text(etag))
        if parsed.valid:
            tag = parsed.tag
        else:
            run.ignored.append(
                f"current ETag {etag!r} is not a valid entity-tag ({parsed.violations[0]}), so no tag can match it"
            )
    lm: float | None = None
    if last_modified is not None:
        lm_parse = parse_http_date(_text(last_modified))
        if lm_parse.valid:
            lm = lm_parse.timestamp
        else:
            run.ignored.append(
                f"current Last-Modified {last_modified!r} is not a valid HTTP-date, so the resource has no usable modification date"
            )
    escape = (
        ""
        if run.method in _READS
        else " A server may answer 2xx instead if the requested change is already in effect; headers cannot show that."
    )

    # Step 1: If-Match.
    if_match = _combined(run.lines, "if-match")
    if if_match is not None:
        ok, words = _if_match(if_match, tag, exists)
        run.check("If-Match", ok, words)
        if not ok:
            missing = (
                ""
                if exists
                else " If the resource is simply missing, a server answers 404 instead (13.2.1)."
            )
            return run.decide(412, f"{words}, so 412 for {run.method}.{escape}{missing}", 1)
        if "if-unmodified-since" in run.lines:
            run.ignored.append("If-Unmodified-Since ignored: If-Match present (13.1.4)")
    # Step 2: If-Unmodified-Since, only without If-Match.
    elif "if-unmodified-since" in run.lines:
        date = _date_field(run, "if-unmodified-since", lm, "13.1.4")
        if date is not None and lm is not None:
            ok = lm <= date
            words = (
                "If-Unmodified-Since is true: Last-Modified is not later than its date"
                if ok
                else "If-Unmodified-Since is false: the representation was modified after its date"
            )
            run.check("If-Unmodified-Since", ok, f"{words} (13.1.4)")
            if not ok:
                return run.decide(412, f"{words} (13.1.4), so 412 for {run.method}.{escape}", 2)

    # Step 3: If-None-Match.
    if_none_match = _combined(run.lines, "if-none-match")
    if if_none_match is not None:
        ok, words = _if_none_match(if_none_match, tag, exists)
        run.check("If-None-Match", ok, words)
        if "if-modified-since" in run.lines:
            run.ignored.append("If-Modified-Since ignored: If-None-Match present (13.1.3)")
        if not ok:
            status = run.fail_status()
            return run.decide(status, f"{words}, so {status} for {run.method}", 3)
    # Step 4: If-Modified-Since, only without If-None-Match, only GET / HEAD.
    elif "if-modified-since" in run.lines:
        if run.method not in _READS:
            run.ignored.append(
                f"If-Modified-Since ignored: method {run.method} is neither GET nor HEAD (13.1.3)"
            )
        else:
            date = _date_field(run, "if-modified-since", lm, "13.1.3")
            if date is not None and lm is not None:
                ok = lm > date
                words = (
                    "If-Modified-Since is true: the representation was modified after its date"
                    if ok
                    else "If-Modified-Since is false: Last-Modified is not later than its date"
                )
                run.check("If-Modified-Since", ok, f"{words} (13.1.3)")
                if not ok:
                    return run.decide(304, f"{words} (13.1.3), so 304 for {run.method}", 4)

    # Steps 5 and 6.
    return _range_step(run, exists, tag, lm)


def precondition_required(
    method: str,
    request_headers: Any,
    exists: bool = True,
    *,
    methods: Iterable[str] = ("PUT", "PATCH", "DELETE"),
) -> Decision | None:
    """A 428 Decision when a server requiring conditional writes (RFC 6585 section 3) would refuse
    this request, else None. A server policy against lost updates, never part of evaluate.

    Writing to an existing resource needs If-Match or If-Unmodified-Since (If-None-Match with tags
    does not protect the current state); creating with PUT needs If-None-Match or If-Match so a
    concurrent creation is not overwritten. Other methods, and writes to a missing resource other
    than PUT, need nothing.
    """
    name = _text(method).strip().upper()
    if name not in {_text(m).upper() for m in methods}:
        return None
    lines = field_lines(request_headers)
    if exists:
        if "if-match" in lines or "if-unmodified-since" in lines:
            return None
        reason = (
            f"{name} to an existing resource without If-Match or If-Unmodified-Since; a server "
            "that requires conditional requests answers 428 to prevent lost updates"
        )
    else:
        if name != "PUT" or "if-none-match" in lines or "if-match" in lines:
            return None
        reason = (
            "PUT creating a resource without If-None-Match: *; a server that requires conditional "
            "requests answers 428 so a concurrent creation is not overwritten"
        )
    return Decision(428, reason, "RFC 6585 3", None)
