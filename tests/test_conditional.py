"""Precondition evaluation, clause by clause (RFC 9110 13.1, 13.2.1, 13.2.2; RFC 6585 3)."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from mitmproxy.http import Headers

from analysis.conditional import Decision, evaluate, field_lines, precondition_required

LM = "Sun, 21 Oct 2007 23:21:47 GMT"
OLDER = "Sat, 20 Oct 2007 23:21:47 GMT"
CURRENT = {"etag": '"v1"', "last_modified": LM}


def test_decision_is_frozen_with_the_documented_fields() -> None:
    decision = evaluate("GET", {})
    assert isinstance(decision, Decision)
    assert [f.name for f in dataclasses.fields(Decision)][:5] == [
        "status",
        "reason",
        "rfc",
        "step",
        "ignored",
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.status = 304  # type: ignore[misc]


def test_13_2_2_step_3_reason_names_the_tag_and_comparison() -> None:
    decision = evaluate("GET", {"If-None-Match": 'W/"a"'}, etag='"a"')
    assert decision.status == 304
    assert decision.step == 3
    assert decision.rfc == "RFC 9110 13.2.2 step 3"
    assert 'If-None-Match matched W/"a" by weak comparison' in decision.reason
    assert "304 for GET" in decision.reason


def test_13_1_1_weak_current_etag_never_satisfies_if_match() -> None:
    decision = evaluate("PUT", [("If-Match", '"a"')], etag='W/"a"')
    assert decision.status == 412 and decision.step == 1
    assert "weak" in decision.reason and "strong comparison" in decision.reason


def test_13_2_2_step_1_reason_mentions_the_2xx_escape_for_writes_only() -> None:
    put = evaluate("PUT", {"If-Match": '"old"'}, **CURRENT)
    get = evaluate("GET", {"If-Match": '"old"'}, **CURRENT)
    assert put.status == get.status == 412
    assert "already in effect" in put.reason
    assert "already in effect" not in get.reason


def test_13_2_1_missing_resource_hint_and_unconditional_status() -> None:
    # 13.2.1: a GET cannot create the resource, so its unconditional answer is 404 and every
    # precondition is ignored, without the caller passing unconditional_status
    for method in ("GET", "HEAD"):
        implied = evaluate(method, {"If-Match": "*", "If-None-Match": '"x"'}, exists=False)
        assert implied.status == 200 and implied.step is None
        assert implied.rfc == "RFC 9110 13.2.1" and "404" in implied.reason
    # a write still gets 412: without If-Match * it could have created the resource
    assert evaluate("PUT", {"If-Match": "*"}, exists=False).status == 412
    ignored = evaluate("GET", {"If-Match": "*"}, exists=False, unconditional_status=404)
    assert ignored.status == 200 and ignored.step is None
    assert ignored.rfc == "RFC 9110 13.2.1"
    assert any("If-Match" in note and "404" in note for note in ignored.ignored)


def test_13_2_1_exists_false_drops_the_given_validators() -> None:
    decision = evaluate("PUT", {"If-None-Match": '"v1"'}, exists=False, **CURRENT)
    assert decision.status == 200
    assert any("exists=False" in note for note in decision.ignored)


@pytest.mark.parametrize("method", ["CONNECT", "OPTIONS", "TRACE"])
def test_13_2_1_exempt_methods_ignore_every_precondition(method: str) -> None:
    headers = {"If-Match": '"nope"', "If-None-Match": '"v1"', "If-Unmodified-Since": OLDER}
    decision = evaluate(method, headers, **CURRENT)
    assert decision.status == 200 and decision.step is None
    assert decision.ignored == (
        f"If-Match, If-None-Match, If-Unmodified-Since ignored: {method} neither selects nor "
        "modifies a representation (13.2.1)",
    )


def test_13_1_3_ims_ignored_notes_say_why() -> None:
    cases = {
        "If-None-Match present": (
            "GET",
            {"If-None-Match": '"x"', "If-Modified-Since": LM},
            CURRENT,
        ),
        "neither GET nor HEAD": ("POST", {"If-Modified-Since": LM}, CURRENT),
        "not a valid HTTP-date": ("GET", {"If-Modified-Since": "yesterday"}, CURRENT),
        "more than one date": (
            "GET",
            [("If-Modified-Since", LM), ("If-Modified-Since", LM)],
            CURRENT,
        ),
        "no modification date": ("GET", {"If-Modified-Since": LM}, {"etag": '"v1"'}),
    }
    for why, (method, headers, current) in cases.items():
        decision = evaluate(method, headers, **current)
        assert decision.status == 200, why
        assert any(
            n.startswith("If-Modified-Since ignored") and why in n for n in decision.ignored
        ), (
            why,
            decision.ignored,
        )


def test_13_1_3_ims_ignored_note_names_the_clause() -> None:
    decision = evaluate("GET", {"If-None-Match": '"x"', "If-Modified-Since": LM}, **CURRENT)
    assert "If-Modified-Since ignored: If-None-Match present (13.1.3)" in decision.ignored


def test_13_1_4_ius_ignored_with_if_match_and_without_date() -> None:
    with_im = evaluate("PUT", {"If-Match": '"v1"', "If-Unmodified-Since": OLDER}, **CURRENT)
    assert with_im.status == 200
    assert "If-Unmodified-Since ignored: If-Match present (13.1.4)" in with_im.ignored
    no_date = evaluate("PUT", {"If-Unmodified-Since": OLDER}, etag='"v1"')
    assert no_date.status == 200
    assert any("no modification date" in n for n in no_date.ignored)


def test_13_1_3_ims_compares_at_second_precision() -> None:
    lm = "Sun, 21 Oct 2007 23:21:47 GMT"
    assert evaluate("GET", {"If-Modified-Since": lm}, last_modified=lm).status == 304
    earlier = "Sun, 21 Oct 2007 23:21:46 GMT"
    assert evaluate("GET", {"If-Modified-Since": earlier}, last_modified=lm).status == 200


def test_13_1_5_if_range_date_must_equal_last_modified() -> None:
    headers = {"Range": "bytes=0-9", "If-Range": LM}
    assert evaluate("GET", headers, last_modified=LM).status == 206
    assert evaluate("GET", headers, last_modified=OLDER).status == 200
    rfc850 = {"Range": "bytes=0-9", "If-Range": "Sunday, 21-Oct-07 23:21:47 GMT"}
    assert evaluate("GET", rfc850, last_modified=LM).status == 206  # same instant, other form


def test_13_1_5_range_notes() -> None:
    no_range = evaluate("GET", {"If-Range": '"v1"'}, **CURRENT)
    assert "If-Range ignored: the request has no Range (13.1.5)" in no_range.ignored
    put = evaluate("PUT", {"Range": "bytes=0-1"}, **CURRENT)
    assert put.status == 200 and any(n.startswith("Range ignored") for n in put.ignored)
    two = evaluate(
        "GET", [("Range", "bytes=0-1"), ("If-Range", '"v1"'), ("If-Range", '"v1"')], **CURRENT
    )
    assert two.status == 200 and two.step == 5


def test_checked_lists_every_condition_in_order() -> None:
    decision = evaluate(
        "GET",
        {"If-Match": '"v1"', "If-None-Match": '"v0"', "Range": "bytes=0-1", "If-Range": '"v1"'},
        **CURRENT,
    )
    assert decision.status == 206
    assert [c.split(" ")[0] for c in decision.checked] == ["If-Match", "If-None-Match", "If-Range"]
    assert all(" true: " in c for c in decision.checked)


def test_current_validators_that_do_not_parse_are_noted() -> None:
    decision = evaluate("GET", {"If-None-Match": '"abc"'}, etag="abc", last_modified="yesterday")
    assert decision.status == 200
    assert any("current ETag" in n for n in decision.ignored)
    assert any("current Last-Modified" in n for n in decision.ignored)


@pytest.mark.parametrize(
    "headers",
    [
        {"If-None-Match": '"a", "v1"'},
        {"if-none-match": ['"a"', '"v1"']},
        [("If-None-Match", '"a"'), ("IF-NONE-MATCH", '"v1"')],
        [(b"If-None-Match", b'"a"'), (b"if-none-match", b'"v1"')],
        Headers([(b"If-None-Match", b'"a"'), (b"If-None-Match", b'"v1"')]),
        httpx.Headers([("If-None-Match", '"a"'), ("If-None-Match", '"v1"')]),
    ],
    ids=["dict", "dict-of-lists", "pairs", "byte-pairs", "mitmproxy", "httpx"],
)
def test_5_3_header_shapes_combine_repeated_lines(headers: object) -> None:
    assert field_lines(headers)["if-none-match"] in (['"a", "v1"'], ['"a"', '"v1"'])
    assert evaluate("GET", headers, **CURRENT).status == 304


def test_mitmproxy_headers_keep_repeated_date_lines_apart() -> None:
    headers = Headers([(b"If-Modified-Since", LM.encode()), (b"If-Modified-Since", LM.encode())])
    decision = evaluate("GET", headers, **CURRENT)
    assert decision.status == 200  # a list of dates: ignored (13.1.3)


def test_none_headers_mean_no_preconditions() -> None:
    assert evaluate("GET", None, **CURRENT).status == 200


# --- RFC 6585 3: 428 is a policy helper, never a result of evaluate ---------------------------


def test_6585_428_for_unconditional_write() -> None:
    decision = precondition_required("PUT", {}, exists=True)
    assert decision is not None and decision.status == 428
    assert decision.rfc == "RFC 6585 3"
    assert precondition_required("PUT", {"If-Match": '"v1"'}) is None
    assert precondition_required("DELETE", {"If-Unmodified-Since": LM}) is None
    assert precondition_required("patch", {"If-None-Match": '"v1"'}) is not None  # no protection


def test_6585_creation_and_reads() -> None:
    assert precondition_required("PUT", {}, exists=False) is not None
    assert precondition_required("PUT", {"If-None-Match": "*"}, exists=False) is None
    assert precondition_required("DELETE", {}, exists=False) is None
    assert precondition_required("GET", {}) is None
    assert precondition_required("POST", {}, methods=("POST",)) is not None


def test_evaluate_never_answers_428() -> None:
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        assert evaluate(method, {}, **CURRENT).status == 200


# --- what evaluate accepts, and the one error for the rest ----------------------------------
@pytest.mark.parametrize("headers", [
    "If-None-Match: \"a\"",
    b"If-None-Match: \"a\"\r\nUser-Agent: x",
    ["If-None-Match: \"a\""],
    [("If-None-Match", '"a"')],
    {"If-None-Match": ['"b"', '"a"']},
])
def test_every_readable_headers_shape_is_read(headers):
    assert evaluate("GET", headers, etag='"a"').status == 304


@pytest.mark.parametrize("headers", [["If-None-Match"], [(1, 2, 3)], 5, "no colon here", [None]])
def test_unreadable_headers_are_one_type_error_naming_the_shapes(headers):
    with pytest.raises(TypeError, match=r"request_headers must be a mapping, .*'Name: value' lines; got"):
        evaluate("GET", headers, etag='"a"')


def test_unconditional_status_must_be_a_status_code():
    with pytest.raises(TypeError, match="unconditional_status must be an int"):
        evaluate("GET", {"If-None-Match": '"a"'}, etag='"a"', unconditional_status="200")


@pytest.mark.parametrize("etag, last_modified", [(5, None), (None, 7.5), (b'"a"', b"x"), ([], {})])
def test_odd_validator_values_read_as_values_not_errors(etag, last_modified):
    decision = evaluate("GET", {"If-None-Match": '"a"', "If-Modified-Since": "x"},
                        etag=etag, last_modified=last_modified)
    assert decision.status in (200, 304)
