"""The precondition case table: each row holds the RFC 9110 answer for one request.

Rows come from the RFC text and from public peer test suites:
- Django ``tests/conditional_processing/tests.py`` (class ConditionalGet),
- Go ``src/net/http/fs_test.go`` TestServeContent (each case is run there for GET and HEAD),
- the httpwg cache-tests ``tests/conditional-etag.mjs`` and ``tests/conditional-lm.mjs``.
``source`` names the peer test (or the RFC clause); where the peer departs from RFC 9110 the row
holds the RFC answer and ``peer_note`` says what the peer answers. Cache-tests test caches, not
origins; their rows take the request and the stored validators as an origin would see them.
``rfc`` is the clause that decides, exactly as ``Decision.rfc`` reports it.
"""

from __future__ import annotations

from typing import Any

# Django's fixtures
LM = "Sun, 21 Oct 2007 23:21:47 GMT"
NEWER = "Mon, 18 Oct 2010 16:56:23 GMT"
OLDER = "Sat, 20 Oct 2007 23:21:47 GMT"
INVALID = "Mon, 32 Oct 2010 16:56:23 GMT"
ETAG = '"b4246ffc4f62314ca13147c9d4f76974"'
WEAK = 'W/"b4246ffc4f62314ca13147c9d4f76974"'
OTHER = '"7fae4cd4b0f81e7d2914700043aa8ed6"'
# Go's range fixtures
GO_LM = "Wed, 25 Jun 2014 17:12:18 GMT"
GO_LM_PLUS_1 = "Wed, 25 Jun 2014 17:12:19 GMT"
GO_LM_MINUS_2 = "Wed, 25 Jun 2014 17:12:16 GMT"

S1, S2, S3, S4, S5, S6 = (f"RFC 9110 13.2.2 step {n}" for n in range(1, 7))
S6R = "RFC 9110 13.2.2 step 6, 14.2"
EXEMPT = "RFC 9110 13.2.1"

DJ = "Django ConditionalGet."
GO = "Go TestServeContent/"
CT = "httpwg cache-tests "


def case(
    id: str,
    source: str,
    method: str,
    headers: list[tuple[str, str]],
    expected_status: int,
    rfc: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    exists: bool = True,
    peer_note: str = "",
    unconditional_status: int | None = None,
) -> dict[str, Any]:
    return {
        "id": id,
        "source": source,
        "method": method,
        "headers": headers,
        "etag": etag,
        "last_modified": last_modified,
        "exists": exists,
        "expected_status": expected_status,
        "rfc": rfc,
        "peer_note": peer_note,
        "unconditional_status": unconditional_status,
    }


BOTH = {"etag": ETAG, "last_modified": LM}  # Django's /condition/
LM_ONLY = {"last_modified": LM}  # Django's /condition/last_modified/
ETAG_ONLY = {"etag": ETAG}  # Django's /condition/etag/
IMS, IUS, INM, IM, IR, RANGE = (
    "If-Modified-Since",
    "If-Unmodified-Since",
    "If-None-Match",
    "If-Match",
    "If-Range",
    "Range",
)

# One row per line reads best as a table, so the formatter leaves it alone.
# fmt: off
CASES: list[dict[str, Any]] = [
    # ---------------------------------------------------------------- Django ConditionalGet
    case("dj-no-conditions", DJ + "test_without_conditions", "GET", [], 200, S6, **BOTH),
    case("dj-ims-equal-get", DJ + "test_if_modified_since", "GET", [(IMS, LM)], 304, S4, **BOTH),
    case("dj-ims-equal-put", DJ + "test_if_modified_since", "PUT", [(IMS, LM)], 200, S6, **BOTH),
    case("dj-ims-newer-get", DJ + "test_if_modified_since", "GET", [(IMS, NEWER)], 304, S4, **BOTH),
    case("dj-ims-newer-put", DJ + "test_if_modified_since", "PUT", [(IMS, NEWER)], 200, S6, **BOTH),
    case("dj-ims-invalid", DJ + "test_if_modified_since", "GET", [(IMS, INVALID)], 200, S6, **BOTH),
    case("dj-ims-older", DJ + "test_if_modified_since", "GET", [(IMS, OLDER)], 200, S6, **BOTH),
    case("dj-ius-equal", DJ + "test_if_unmodified_since", "GET", [(IUS, LM)], 200, S6, **BOTH),
    case("dj-ius-newer", DJ + "test_if_unmodified_since", "GET", [(IUS, NEWER)], 200, S6, **BOTH),
    case("dj-ius-invalid", DJ + "test_if_unmodified_since", "GET", [(IUS, INVALID)], 200, S6, **BOTH),
    case("dj-ius-older", DJ + "test_if_unmodified_since", "GET", [(IUS, OLDER)], 412, S2, **BOTH),
    case("dj-inm-get", DJ + "test_if_none_match", "GET", [(INM, ETAG)], 304, S3, **BOTH),
    case("dj-inm-put", DJ + "test_if_none_match", "PUT", [(INM, ETAG)], 412, S3, **BOTH),
    case("dj-inm-other", DJ + "test_if_none_match", "GET", [(INM, OTHER)], 200, S6, **BOTH),
    case("dj-inm-list", DJ + "test_if_none_match", "GET", [(INM, f"{ETAG}, {OTHER}")], 304, S3, **BOTH),
    case("dj-inm-strong-vs-weak-get", DJ + "test_weak_if_none_match", "GET", [(INM, ETAG)], 304, S3, etag=WEAK, last_modified=LM),
    case(
        "dj-inm-strong-vs-weak-put", DJ + "test_weak_if_none_match", "PUT", [(INM, ETAG)], 412, S3,
        etag=WEAK, last_modified=LM,
        peer_note="Apache httpd compares If-None-Match strongly for methods other than GET/HEAD and would perform the PUT",
    ),
    case("dj-inm-weak-vs-weak-get", DJ + "test_weak_if_none_match", "GET", [(INM, WEAK)], 304, S3, etag=WEAK, last_modified=LM),
    case("dj-inm-weak-vs-weak-put", DJ + "test_weak_if_none_match", "PUT", [(INM, WEAK)], 412, S3, etag=WEAK, last_modified=LM),
    case("dj-inm-weak-vs-strong-get", DJ + "test_weak_if_none_match", "GET", [(INM, WEAK)], 304, S3, **BOTH),
    case("dj-inm-weak-vs-strong-put", DJ + "test_weak_if_none_match", "PUT", [(INM, WEAK)], 412, S3, **BOTH),
    case("dj-inm-star-get", DJ + "test_all_if_none_match", "GET", [(INM, "*")], 304, S3, **BOTH),
    case("dj-inm-star-put", DJ + "test_all_if_none_match", "PUT", [(INM, "*")], 412, S3, **BOTH),
    case(
        "dj-inm-star-no-etag", DJ + "test_all_if_none_match", "GET", [(INM, "*")], 304, S3,
        peer_note="Django answers 200: it takes 'no ETag' for 'no current representation'; RFC 9110 13.1.2 asks only whether a representation exists",
    ),
    case("dj-im-put", DJ + "test_if_match", "PUT", [(IM, ETAG)], 200, S6, **BOTH),
    case("dj-im-other-put", DJ + "test_if_match", "PUT", [(IM, OTHER)], 412, S1, **BOTH),
    case("dj-im-strong-vs-weak", DJ + "test_weak_if_match", "GET", [(IM, ETAG)], 412, S1, etag=WEAK, last_modified=LM),
    case("dj-im-weak-vs-weak", DJ + "test_weak_if_match", "GET", [(IM, WEAK)], 412, S1, etag=WEAK, last_modified=LM),
    case("dj-im-weak-vs-strong", DJ + "test_weak_if_match", "GET", [(IM, WEAK)], 412, S1, **BOTH),
    case("dj-im-star", DJ + "test_all_if_match", "GET", [(IM, "*")], 200, S6, **BOTH),
    case(
        "dj-im-star-no-etag", DJ + "test_all_if_match", "GET", [(IM, "*")], 200, S6,
        peer_note="Django answers 412 (no ETag taken for no representation); Werkzeug also fails If-Match *",
    ),
    case("dj-both-match", DJ + "test_both_headers", "GET", [(IMS, LM), (INM, ETAG)], 304, S3, **BOTH),
    case("dj-both-ims-older", DJ + "test_both_headers", "GET", [(IMS, OLDER), (INM, ETAG)], 304, S3, **BOTH),
    case(
        "dj-both-inm-other", DJ + "test_both_headers", "GET", [(IMS, LM), (INM, OTHER)], 200, S6, **BOTH,
        peer_note="If-Modified-Since is ignored because If-None-Match is present (13.1.3)",
    ),
    case("dj-both-neither", DJ + "test_both_headers", "GET", [(IMS, OLDER), (INM, OTHER)], 200, S6, **BOTH),
    case("dj-both2-match", DJ + "test_both_headers_2", "GET", [(IUS, LM), (IM, ETAG)], 200, S6, **BOTH),
    case("dj-both2-ius-older", DJ + "test_both_headers_2", "GET", [(IUS, OLDER), (IM, ETAG)], 200, S6, **BOTH),
    case("dj-both2-neither", DJ + "test_both_headers_2", "GET", [(IUS, OLDER), (IM, OTHER)], 412, S1, **BOTH),
    case("dj-both2-im-other", DJ + "test_both_headers_2", "GET", [(IUS, LM), (IM, OTHER)], 412, S1, **BOTH),
    case("dj-single1-lm", DJ + "test_single_condition_1", "GET", [(IMS, LM)], 304, S4, **LM_ONLY),
    case("dj-single1-etag", DJ + "test_single_condition_1", "GET", [(IMS, LM)], 200, S6, **ETAG_ONLY),
    case("dj-single2-etag", DJ + "test_single_condition_2", "GET", [(INM, ETAG)], 304, S3, **ETAG_ONLY),
    case("dj-single2-lm", DJ + "test_single_condition_2", "GET", [(INM, ETAG)], 200, S6, **LM_ONLY),
    case("dj-single3", DJ + "test_single_condition_3", "GET", [(IMS, OLDER)], 200, S6, **LM_ONLY),
    case("dj-single4", DJ + "test_single_condition_4", "GET", [(INM, OTHER)], 200, S6, **ETAG_ONLY),
    case("dj-single7-lm", DJ + "test_single_condition_7", "GET", [(IUS, OLDER)], 412, S2, **LM_ONLY),
    case(
        "dj-single7-etag", DJ + "test_single_condition_7", "GET", [(IUS, OLDER)], 200, S6, **ETAG_ONLY,
        peer_note="Django answers 412; RFC 9110 13.1.4 ignores If-Unmodified-Since when the resource has no modification date",
    ),
    case("dj-single8", DJ + "test_single_condition_8", "GET", [(IUS, LM)], 200, S6, **LM_ONLY),
    case(
        "dj-single9-etag2", DJ + "test_single_condition_9", "GET", [(IUS, OLDER)], 200, S6, **ETAG_ONLY,
        peer_note="Django answers 412 (the @etag decorator has no Last-Modified); RFC 9110 13.1.4 ignores the field",
    ),
    case("dj-single-head", DJ + "test_single_condition_head", "HEAD", [(IMS, LM)], 304, S4, **BOTH),
    case(
        "dj-invalid-etag", DJ + "test_invalid_etag", "GET", [(INM, '"""')], 200, S6, **ETAG_ONLY,
        peer_note="Django drops the malformed member and has nothing left to match; here the field is not a list of entity-tags, so 13.1.2 step 3 makes it true",
    ),
    case("dj-unquoted-quoted-etag", DJ + "test_unquoted_if_none_match", "PUT", [(INM, ETAG)], 412, S3, **ETAG_ONLY),
    # ---------------------------------------------------------------- Go TestServeContent
    case("go-not-modified-modtime-get", GO + "not_modified_modtime", "GET", [(IMS, GO_LM)], 304, S4, etag='"foo"', last_modified=GO_LM),
    case("go-not-modified-modtime-head", GO + "not_modified_modtime", "HEAD", [(IMS, GO_LM)], 304, S4, etag='"foo"', last_modified=GO_LM),
    case("go-not-modified-etag", GO + "not_modified_etag", "GET", [(INM, '"foo"')], 304, S3, etag='"foo"'),
    case("go-not-modified-etag-head", GO + "not_modified_etag", "HEAD", [(INM, '"foo"')], 304, S3, etag='"foo"'),
    case("go-not-modified-etag-no-seek", GO + "not_modified_etag_no_seek", "GET", [(INM, '"baz", W/"foo"')], 304, S3, etag='W/"foo"'),
    case("go-inm-mismatch-case", GO + "if_none_match_mismatch", "GET", [(INM, '"Foo"')], 200, S6, etag='"foo"'),
    case("go-inm-malformed-comma", GO + "if_none_match_malformed", "GET", [(INM, ",")], 200, S6, etag='"foo"'),
    case("go-range-good", GO + "range_good", "GET", [(RANGE, "bytes=0-4")], 206, S6R, etag='"A"'),
    case(
        "go-range-good-head", GO + "range_good", "HEAD", [(RANGE, "bytes=0-4")], 200, S6, etag='"A"',
        peer_note="Go answers 206 to HEAD too; RFC 9110 14.2 defines range handling only for GET",
    ),
    case("go-range-match", GO + "range_match", "GET", [(RANGE, "bytes=0-4"), (IR, '"A"')], 206, S5, etag='"A"'),
    case("go-range-match-weak", GO + "range_match_weak_etag", "GET", [(RANGE, "bytes=0-4"), (IR, 'W/"A"')], 200, S5, etag='W/"A"'),
    case("go-range-no-match", GO + "range_no_match", "GET", [(RANGE, "bytes=0-4"), (IR, '"B"')], 200, S5, etag='"A"'),
    case(
        "go-range-modtime", GO + "range_with_modtime", "GET", [(RANGE, "bytes=0-4"), (IR, GO_LM)], 206, S5, last_modified=GO_LM,
        peer_note="Go does not check that the date is a strong validator (8.8.2.2); neither can evaluate from headers, so an exact match counts",
    ),
    case("go-range-modtime-mismatch", GO + "range_with_modtime_mismatch", "GET", [(RANGE, "bytes=0-4"), (IR, GO_LM_PLUS_1)], 200, S5, last_modified=GO_LM),
    case("go-range-modtime-nanos", GO + "range_with_modtime_nanos", "GET", [(RANGE, "bytes=0-4"), (IR, GO_LM)], 206, S5, last_modified=GO_LM),
    case(
        "go-unix-zero-modtime", GO + "unix_zero_modtime", "GET", [(IMS, "Thu, 01 Jan 1970 00:00:00 GMT")], 304, S4,
        last_modified="Thu, 01 Jan 1970 00:00:00 GMT",
        peer_note="Go treats a zero or Unix-epoch modtime as unknown and answers 200; the epoch is a valid HTTP-date",
    ),
    case("go-ifmatch-matches", GO + "ifmatch_matches", "GET", [(IM, '"Z", "A"')], 200, S6, etag='"A"'),
    case("go-ifmatch-matches-head", GO + "ifmatch_matches", "HEAD", [(IM, '"Z", "A"')], 200, S6, etag='"A"'),
    case("go-ifmatch-star", GO + "ifmatch_star", "GET", [(IM, "*")], 200, S6, etag='"A"'),
    case("go-ifmatch-failed", GO + "ifmatch_failed", "GET", [(IM, '"B"')], 412, S1, etag='"A"'),
    case("go-ifmatch-failed-head", GO + "ifmatch_failed", "HEAD", [(IM, '"B"')], 412, S1, etag='"A"'),
    case("go-ifmatch-weak", GO + "ifmatch_fails_on_weak_etag", "GET", [(IM, 'W/"A"')], 412, S1, etag='W/"A"'),
    case("go-ius-true", GO + "if_unmodified_since_true", "GET", [(IUS, GO_LM)], 200, S6, last_modified=GO_LM),
    case("go-ius-false", GO + "if_unmodified_since_false", "GET", [(IUS, GO_LM_MINUS_2)], 412, S2, last_modified=GO_LM),
    case("go-ius-false-head", GO + "if_unmodified_since_false", "HEAD", [(IUS, GO_LM_MINUS_2)], 412, S2, last_modified=GO_LM),
    # ---------------------------------------------------------------- httpwg cache-tests
    case("ct-strong", CT + "conditional-etag-strong-respond", "GET", [(INM, '"abcdef"')], 304, S3, etag='"abcdef"'),
    case("ct-precedence", CT + "conditional-etag-precedence", "GET", [(INM, '"abcdef"'), (IMS, OLDER)], 304, S3, etag='"abcdef"', last_modified=LM),
    case("ct-obs-text", CT + "conditional-etag-strong-respond-obs-text", "GET", [(INM, '"abcdefü"')], 304, S3, etag='"abcdefü"'),
    case(
        "ct-quoted-vs-unquoted", CT + "conditional-etag-quoted-respond-unquoted", "GET", [(INM, "abcdef")], 200, S6, etag='"abcdef"',
        peer_note="a 'check' there (no requirement): lenient caches answer 304; an unquoted member is not an entity-tag, so 13.1.2 step 3",
    ),
    case(
        "ct-unquoted-vs-unquoted", CT + "conditional-etag-unquoted-respond-unquoted", "GET", [(INM, "abcdef")], 200, S6, etag="abcdef",
        peer_note="a 'check' there: lenient caches answer 304",
    ),
    case(
        "ct-unquoted-vs-quoted", CT + "conditional-etag-unquoted-respond-quoted", "GET", [(INM, '"abcdef"')], 200, S6, etag="abcdef",
        peer_note="a 'check' there: lenient caches answer 304; the stored ETag is not an entity-tag, so nothing matches it",
    ),
    case("ct-weak", CT + "conditional-etag-weak-respond", "GET", [(INM, 'W/"abcdef"')], 304, S3, etag='W/"abcdef"'),
    case(
        "ct-weak-lowercase", CT + "conditional-etag-weak-respond-lowercase", "GET", [(INM, 'w/"abcdef"')], 200, S6, etag='w/"abcdef"',
        peer_note="a 'check' there: lenient caches answer 304; 'W/' is case-sensitive (8.8.3)",
    ),
    case(
        "ct-weak-backslash", CT + "conditional-etag-weak-respond-backslash", "GET", [(INM, 'W\\"abcdef"')], 200, S6, etag='W\\"abcdef"',
        peer_note="a 'check' there: some caches compare the raw strings and answer 304",
    ),
    case(
        "ct-weak-omit-slash", CT + "conditional-etag-weak-respond-omit-slash", "GET", [(INM, 'W"abcdef"')], 200, S6, etag='W"abcdef"',
        peer_note="a 'check' there: some caches compare the raw strings and answer 304",
    ),
    case("ct-multiple-first", CT + "conditional-etag-strong-respond-multiple-first", "GET", [(INM, '"abcdef", "1234", "5678"')], 304, S3, etag='"abcdef"'),
    case("ct-multiple-middle", CT + "conditional-etag-strong-respond-multiple-second", "GET", [(INM, '"1234", "abcdef", "5678"')], 304, S3, etag='"abcdef"'),
    case("ct-multiple-last", CT + "conditional-etag-strong-respond-multiple-last", "GET", [(INM, '"1234", "5678", "abcdef"')], 304, S3, etag='"abcdef"'),
    case("ct-lm-fresh", CT + "conditional-lm-fresh", "GET", [(IMS, LM)], 304, S4, last_modified=LM),
    case("ct-lm-earlier", CT + "conditional-lm-fresh-earlier", "GET", [(IMS, NEWER)], 304, S4, last_modified=LM),
    case(
        "ct-lm-no-lm", CT + "conditional-lm-fresh-no-lm", "GET", [(IMS, OLDER)], 200, S6,
        peer_note="the cache there may fall back on the stored Date (RFC 9111 4.3.2) and answer 304; an origin without a modification date ignores If-Modified-Since (13.1.3)",
    ),
    case("ct-lm-rfc850", CT + "conditional-lm-fresh-rfc850", "GET", [(IMS, "Sunday, 21-Oct-07 23:21:47 GMT")], 304, S4, last_modified=LM),
    # ---------------------------------------------------------------- RFC 9110 text
    case(
        "rfc-options-exempt", "RFC 9110 13.2.1", "OPTIONS", [(IM, OTHER)], 200, EXEMPT, **BOTH,
        peer_note="Django does not exempt OPTIONS or TRACE and would answer 412",
    ),
    case("rfc-trace-exempt", "RFC 9110 13.2.1", "TRACE", [(INM, "*")], 200, EXEMPT, **BOTH),
    case("rfc-connect-exempt", "RFC 9110 13.2.1", "CONNECT", [(IMS, LM), (IUS, OLDER)], 200, EXEMPT, **BOTH),
    case("rfc-missing-get-404", "RFC 9110 13.2.1", "GET", [(IM, "*")], 200, EXEMPT, exists=False, unconditional_status=404),
    case("rfc-missing-get-inm-404", "RFC 9110 13.2.1", "GET", [(INM, ETAG)], 200, EXEMPT, exists=False, unconditional_status=404),
    case("rfc-unconditional-2xx-kept", "RFC 9110 13.2.1", "PUT", [(IM, OTHER)], 412, S1, **BOTH, unconditional_status=204),
    case("rfc-unconditional-412-kept", "RFC 9110 13.2.1", "PUT", [(IM, OTHER)], 412, S1, **BOTH, unconditional_status=412),
    # a GET of a missing resource is a 404 whatever its preconditions say (13.2.1)
    case("rfc-im-star-missing-get", "RFC 9110 13.2.1", "GET", [(IM, "*")], 200, EXEMPT, exists=False),
    case("rfc-im-tag-missing-head", "RFC 9110 13.2.1", "HEAD", [(IM, ETAG)], 200, EXEMPT, exists=False),
    case("rfc-ius-missing-get", "RFC 9110 13.2.1", "GET", [(IUS, OLDER)], 200, EXEMPT, exists=False),
    case("rfc-im-star-missing-put", "RFC 9110 13.1.1 step 1", "PUT", [(IM, "*")], 412, S1, exists=False),
    case("rfc-im-tag-missing-put", "RFC 9110 13.1.1 step 2", "PUT", [(IM, ETAG)], 412, S1, exists=False),
    case("rfc-inm-star-missing-get", "RFC 9110 13.2.1", "GET", [(INM, "*")], 200, EXEMPT, exists=False),
    case("rfc-inm-star-missing-put", "RFC 9110 13.1.2 step 1", "PUT", [(INM, "*")], 200, S6, exists=False),
    case("rfc-inm-star-exists-put", "RFC 9110 13.1.2 step 1", "PUT", [(INM, "*")], 412, S3, **BOTH),
    case("rfc-im-delete", "RFC 9110 13.1.1 step 2", "DELETE", [(IM, ETAG)], 200, S6, **BOTH),
    case("rfc-im-other-delete", "RFC 9110 13.1.1 step 2", "DELETE", [(IM, OTHER)], 412, S1, **BOTH),
    case("rfc-inm-post", "RFC 9110 13.2.2 step 3", "POST", [(INM, ETAG)], 412, S3, **BOTH),
    case("rfc-inm-other-post", "RFC 9110 13.2.2 step 3", "POST", [(INM, OTHER)], 200, S6, **BOTH),
    case(
        "rfc-inm-weak-delete", "RFC 9110 13.1.2 (weak comparison for every method)", "DELETE", [(INM, WEAK)], 412, S3, **BOTH,
        peer_note="Apache httpd compares strongly for non-GET methods and would perform the DELETE",
    ),
    case(
        "rfc-im-star-in-list", "RFC 9110 13.1.1 step 3", "PUT", [(IM, '*, "zz"')], 412, S1, **BOTH,
        peer_note="Go's checkIfMatch counts '*' anywhere in the list and would perform the PUT",
    ),
    case(
        "rfc-inm-star-in-list", "RFC 9110 13.1.2 step 3", "GET", [(INM, f"*, {OTHER}")], 200, S6, **BOTH,
        peer_note="Go's checkIfNoneMatch counts '*' anywhere in the list and answers 304",
    ),
    case(
        "rfc-im-empty", "RFC 9110 13.1.1 step 2 (#entity-tag may be empty)", "PUT", [(IM, "")], 412, S1, **BOTH,
        peer_note="Go and Django treat an empty If-Match as absent and perform the PUT",
    ),
    case("rfc-inm-empty", "RFC 9110 13.1.2 step 2", "GET", [(INM, "")], 200, S6, **BOTH),
    case(
        "rfc-im-malformed-member", "RFC 9110 13.1.1 step 3", "PUT", [(IM, f"{ETAG}, garbage")], 412, S1, **BOTH,
        peer_note="Django's parse_etags drops the malformed member silently, matches the rest and performs the PUT",
    ),
    case(
        "rfc-inm-malformed-member", "RFC 9110 13.1.2 step 3", "GET", [(INM, f"{ETAG}, garbage")], 200, S6, **BOTH,
        peer_note="Django drops the malformed member, matches the rest and answers 304",
    ),
    case(
        "rfc-im-unquoted", "RFC 9110 13.1.1 step 3", "PUT", [(IM, ETAG.strip('"'))], 412, S1, **BOTH,
        peer_note="nginx compares If-Match as raw strings; lenient servers quote it and match",
    ),
    case("rfc-inm-two-lines", "RFC 9110 5.3 (list fields combine)", "GET", [(INM, OTHER), (INM, ETAG)], 304, S3, **BOTH),
    case("rfc-im-two-lines", "RFC 9110 5.3 (list fields combine)", "PUT", [(IM, OTHER), (IM, ETAG)], 200, S6, **BOTH),
    case("rfc-inm-comma-in-quotes", "RFC 9110 8.8.3 (etagc includes ',')", "GET", [(INM, '"a,b"')], 304, S3, etag='"a,b"'),
    case("rfc-inm-comma-in-quotes-miss", "RFC 9110 8.8.3 (etagc includes ',')", "GET", [(INM, '"a,b"')], 200, S6, etag='"a"'),
    case("rfc-inm-ows", "RFC 9110 5.6.1 (OWS around list members)", "GET", [(INM, f' \t{OTHER} ,\t{ETAG}  ')], 304, S3, **BOTH),
    case("rfc-ims-two-lines", "RFC 9110 13.1.3 (more than one member)", "GET", [(IMS, LM), (IMS, NEWER)], 200, S6, **BOTH),
    case("rfc-ims-list", "RFC 9110 13.1.3 (more than one member)", "GET", [(IMS, f"{LM}, {NEWER}")], 200, S6, **BOTH),
    case(
        "rfc-ims-utc", "RFC 9110 5.6.7, 13.1.3", "GET", [(IMS, LM.replace("GMT", "UTC"))], 200, S6, **BOTH,
        peer_note="Werkzeug parses with email.utils, accepts 'UTC' and answers 304",
    ),
    case("rfc-ims-numeric-zone", "RFC 9110 5.6.7, 13.1.3", "GET", [(IMS, LM.replace("GMT", "+0000"))], 200, S6, **BOTH),
    case("rfc-ims-lowercase", "RFC 9110 5.6.7 (case-sensitive)", "GET", [(IMS, LM.lower())], 200, S6, **BOTH),
    case("rfc-ims-asctime", "RFC 9110 5.6.7 (obsolete forms accepted)", "GET", [(IMS, "Sun Oct 21 23:21:47 2007")], 304, S4, **BOTH),
    case("rfc-ims-ows", "RFC 9110 5.5 (OWS around a field value)", "GET", [(IMS, f"  {LM}\t")], 304, S4, **BOTH),
    case("rfc-ims-one-second-before", "RFC 9110 13.1.3 (second precision)", "GET", [(IMS, "Sun, 21 Oct 2007 23:21:46 GMT")], 200, S6, **BOTH),
    case("rfc-ims-one-second-after", "RFC 9110 13.1.3 (second precision)", "GET", [(IMS, "Sun, 21 Oct 2007 23:21:48 GMT")], 304, S4, **BOTH),
    case("rfc-ims-post", "RFC 9110 13.1.3 (GET and HEAD only)", "POST", [(IMS, NEWER)], 200, S6, **BOTH),
    case("rfc-ims-delete", "RFC 9110 13.1.3 (GET and HEAD only)", "DELETE", [(IMS, NEWER)], 200, S6, **BOTH),
    case("rfc-ims-bad-last-modified", "RFC 9110 13.1.3 (no modification date)", "GET", [(IMS, NEWER)], 200, S6, last_modified="2007-10-21T23:21:47Z"),
    case(
        "rfc-ims-future", "RFC 9110 13.1.3 step 1", "GET", [(IMS, "Fri, 01 Jan 2100 00:00:00 GMT")], 304, S4, **BOTH,
        peer_note="RFC 2616 14.25 called a date later than the server's clock invalid and Apache httpd still ignores it; RFC 9110 has no such rule",
    ),
    case("rfc-ius-utc", "RFC 9110 13.1.4 (invalid date)", "PUT", [(IUS, OLDER.replace("GMT", "UTC"))], 200, S6, **BOTH),
    case("rfc-ius-list", "RFC 9110 13.1.4 (list of dates)", "PUT", [(IUS, f"{OLDER}, {NEWER}")], 200, S6, **BOTH),
    case("rfc-ius-one-second-before", "RFC 9110 13.1.4 step 2", "PUT", [(IUS, "Sun, 21 Oct 2007 23:21:46 GMT")], 412, S2, **BOTH),
    case("rfc-ius-equal-put", "RFC 9110 13.1.4 step 1", "PUT", [(IUS, LM)], 200, S6, **BOTH),
    case("rfc-ius-ignored-with-im", "RFC 9110 13.1.4 (ignored with If-Match)", "PUT", [(IM, "*"), (IUS, OLDER)], 200, S6, **BOTH),
    case(
        "rfc-ius-before-inm", "RFC 9110 13.2.2 step 2 before step 3", "GET", [(IUS, OLDER), (INM, ETAG)], 412, S2, **BOTH,
        peer_note="Werkzeug does not evaluate If-Unmodified-Since at all and would answer 304",
    ),
    case("rfc-im-true-inm-false-get", "RFC 9110 13.2.2 steps 1 and 3", "GET", [(IM, ETAG), (INM, ETAG)], 304, S3, **BOTH),
    case("rfc-im-true-inm-false-put", "RFC 9110 13.2.2 steps 1 and 3", "PUT", [(IM, ETAG), (INM, ETAG)], 412, S3, **BOTH),
    case("rfc-im-false-first", "RFC 9110 13.2.2 step 1", "GET", [(IM, OTHER), (INM, ETAG)], 412, S1, **BOTH),
    case(
        "rfc-inm-match-ims-modified", "RFC 9110 13.1.3 (ignored with If-None-Match)", "GET", [(INM, ETAG), (IMS, OLDER)], 304, S3, **BOTH,
        peer_note="nginx and Apache httpd answer 304 only when both fields say 'not modified' and would send 200",
    ),
    case("rfc-im-star-weak-current", "RFC 9110 13.1.1 step 1", "PUT", [(IM, "*")], 200, S6, etag=WEAK),
    case("rfc-im-star-bad-current", "RFC 9110 13.1.1 step 1", "PUT", [(IM, "*")], 200, S6, etag="abc"),
    case("rfc-inm-bad-current", "RFC 9110 8.8.3 (current ETag not an entity-tag)", "GET", [(INM, '"abc"')], 200, S6, etag="abc"),
    case("rfc-method-lowercase", "RFC 9110 13.2.2 step 3", "get", [(INM, ETAG)], 304, S3, **BOTH),
    case("rfc-header-name-case", "RFC 9110 5.1 (names case-insensitive)", "GET", [("if-none-MATCH", ETAG)], 304, S3, **BOTH),
    case("rfc-range-im-true", "RFC 9110 13.2.2 steps 1 and 5", "GET", [(IM, ETAG), (RANGE, "bytes=0-1"), (IR, ETAG)], 206, S5, **BOTH),
    case("rfc-range-ims-not-modified", "RFC 9110 13.2.2 step 4 before step 5", "GET", [(IMS, LM), (RANGE, "bytes=0-1")], 304, S4, **BOTH),
    case("rfc-range-inm-match", "RFC 9110 13.2.2 step 3 before step 5", "GET", [(INM, ETAG), (RANGE, "bytes=0-1"), (IR, ETAG)], 304, S3, **BOTH),
    case("rfc-range-post", "RFC 9110 14.2 (GET only)", "POST", [(RANGE, "bytes=0-1")], 200, S6, **BOTH),
    case("rfc-if-range-without-range", "RFC 9110 13.1.5 (ignored without Range)", "GET", [(IR, ETAG)], 200, S6, **BOTH),
    case("rfc-range-unknown-unit", "RFC 9110 14.2 (unknown unit ignored)", "GET", [(RANGE, "items=0-1")], 200, S6, **BOTH),
    case("rfc-range-unit-case", "RFC 9110 14.1 (unit names case-insensitive)", "GET", [(RANGE, "Bytes=0-1")], 206, S6R, **BOTH),
    case("rfc-if-range-weak-vs-strong", "RFC 9110 13.1.5 (strong comparison)", "GET", [(RANGE, "bytes=0-1"), (IR, WEAK)], 200, S5, **BOTH),
    case("rfc-if-range-date-no-lm", "RFC 9110 13.1.5", "GET", [(RANGE, "bytes=0-1"), (IR, LM)], 200, S5, **ETAG_ONLY),
    case("rfc-if-range-date-utc", "RFC 9110 13.1.5 (neither entity-tag nor HTTP-date)", "GET", [(RANGE, "bytes=0-1"), (IR, LM.replace("GMT", "UTC"))], 200, S5, **BOTH),
    case("rfc-if-range-date-earlier", "RFC 9110 13.1.5 (exact match only)", "GET", [(RANGE, "bytes=0-1"), (IR, OLDER)], 200, S5, **BOTH),
    case(
        "rfc-if-range-date-later", "RFC 9110 13.1.5 (exact match only)", "GET", [(RANGE, "bytes=0-1"), (IR, NEWER)], 200, S5, **BOTH,
        peer_note="Werkzeug accepts an If-Range date not earlier than Last-Modified (<=) and would answer 206",
    ),
    case("rfc-if-range-date-equal", "RFC 9110 13.1.5 step 2", "GET", [(RANGE, "bytes=0-1"), (IR, LM)], 206, S5, **BOTH),
    case("rfc-if-range-unquoted", "RFC 9110 13.1.5", "GET", [(RANGE, "bytes=0-1"), (IR, ETAG.strip('"'))], 200, S5, **BOTH),
    case(
        "rfc-if-range-head", "RFC 9110 13.2.2 step 5 (GET only)", "HEAD", [(RANGE, "bytes=0-1"), (IR, ETAG)], 200, S6, **BOTH,
        peer_note="Go honours Range on HEAD and answers 206",
    ),
    case("rfc-range-missing", "RFC 9110 13.2.1", "GET", [(RANGE, "bytes=0-1")], 200, EXEMPT, exists=False),
]
# fmt: on
