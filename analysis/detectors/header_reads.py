"""The rows whose header lists the detectors read, as SQL a store loader selects instead.

``req_headers`` and ``resp_headers`` (every field of the message, JSON text) are half the bytes
of the columns the detectors take from a store, and are read for a few rows only:

- req_headers: whether a request carried Authorization (prepare's ``credentials``), on every
  row; whether a 304 or 412 recorded its request headers at all (unconditional-304 / -412);
- resp_headers: the ETag / Last-Modified / Date lines of a response a syntax rule flags (for
  httplint), on candidate rows only (conformance/syntax.py).

A loader given ``PARTIAL_READS`` (``store.load_exchanges(partial=...)``) selects each column's
value where one of those reads may happen and NULL elsewhere: at 1M exchanges it reads and
converts about 1.4 + 1.1 s less (BENCHMARKS.md, "Analyze end to end"). The conditions are
supersets, written from the rules' own tests (a row kept that no rule reads costs a little
time; a row left out that a rule reads would change a finding), and tests/test_header_reads.py
holds each one to those tests. A source without SQL (a Parquet dataset) keeps the whole
columns, with the same results.
"""

from __future__ import annotations

from typing import NamedTuple


class PartialRead(NamedTuple):
    """An SQL expression standing for a column, and the columns it names (a store of an older
    schema that lacks one is read whole)."""

    sql: str
    needs: frozenset[str]


def _numeric(column: str) -> str:
    return f"typeof({column}) IN ('integer', 'real')"


#: The ETag is exactly one entity-tag, strong or weak, without spaces: the syntax rule's
#: pattern matches it (the rule re-checks ETags recorded without violations; any other form
#: is kept for it).
_ONE_TAG = ("""(etag GLOB '"*"' AND instr(substr(etag, 2, length(etag) - 2), '"') = 0)"""
            """ OR (etag GLOB 'W/"*"' AND instr(substr(etag, 4, length(etag) - 4), '"') = 0)""")

#: Status values the unconditional rules judge (conformance/not_modified.py).
_JUDGED_BARE = "(304, 412)"

PARTIAL_READS: dict[str, PartialRead] = {
    # credentials: the JSON text holds the header name "authorization" (names are stored
    # lower-case); unconditional-304 / -412: a 304 or 412 recorded its request headers
    "req_headers": PartialRead(
        "CASE WHEN instr(req_headers, '\"authorization\"') > 0"
        f" OR NOT {_numeric('status')} OR status IN {_JUDGED_BARE} THEN req_headers END",
        frozenset({"req_headers", "status"})),
    # etag-syntax: violations recorded, or none recorded for an ETag that is not plainly one
    # entity-tag (the rule re-checks those with its pattern);
    # etag-repeated: more than one ETag field; last-modified-syntax and -future: a
    # Last-Modified whose timestamp, or the Date's, was not recorded as a number (then parsed
    # from the text), or that is later than the Date
    "resp_headers": PartialRead(
        "CASE WHEN etag_count > 1"
        " OR etag_violations <> '[]'"
        f" OR (etag_violations IS NULL AND etag IS NOT NULL AND NOT ({_ONE_TAG}))"
        f" OR (last_modified IS NOT NULL AND (NOT {_numeric('last_modified_ts')}"
        f" OR NOT {_numeric('date_ts')} OR last_modified_ts > date_ts))"
        " THEN resp_headers END",
        frozenset({"resp_headers", "etag_count", "etag_violations", "etag", "last_modified",
                   "last_modified_ts", "date_ts"})),
}
