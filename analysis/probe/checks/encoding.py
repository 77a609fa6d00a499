"""gzip versus identity: a strong ETag promises byte-identical representations.

A compressed and an uncompressed response are different representations (different bytes), so
they must not share a strong ETag (RFC 9110 8.8.1, 8.8.3): a cache holding the gzip bytes would
get a 304 for an identity request, or a Range request would splice bytes of the wrong one.
Servers that compress on the fly weaken the tag (nginx) or suffix it (Apache's -gzip).
"""

from __future__ import annotations

import hashlib

from analysis.etag import parse_etag
from analysis.probe.checks.base import CheckResult, answer, skipped
from analysis.probe.context import ProbeContext

NAME = "gzip-vs-identity"
TITLE = "gzip and identity bytes do not share a strong ETag"


def gzip_vs_identity(ctx: ProbeContext) -> list[CheckResult]:
    if ctx.etag is None:
        return [skipped(NAME, TITLE, "The response carries no ETag.")]
    gz = ctx.send("probe-1", "GET", {"Accept-Encoding": "gzip"})
    plain = ctx.send("probe-1", "GET", {"Accept-Encoding": "identity"})
    tags = [parse_etag(s.etag).tag if s.etag else None for s in (gz, plain)]
    same_bytes = (
        hashlib.sha256(gz.response.raw).digest() == hashlib.sha256(plain.response.raw).digest()
    )
    result = CheckResult(
        NAME,
        TITLE,
        sent="GET with Accept-Encoding: gzip, then GET with Accept-Encoding: identity",
        expected="different strong ETags (or weak ETags) when the bytes differ",
        got=f"gzip: {answer(gz, 'Content-Encoding', 'ETag')}; identity: {answer(plain, 'Content-Encoding', 'ETag')}",
        outcome="pass",
        explanation="",
        rfc="RFC 9110 8.8.1",
        exchanges=[gz.entry_index, plain.entry_index],
    )
    if same_bytes:
        result.explanation = "The server sends the same bytes either way; one ETag is right."
    elif tags[0] is not None and tags[0] == tags[1] and not tags[0].weak:
        result.outcome = "fail"
        result.explanation = (
            "Different bytes carry one strong ETag: a cache may combine or revalidate the wrong "
            "representation. Weaken the tag or make it differ per encoding."
        )
    else:
        result.explanation = "Different bytes carry different (or weak) ETags, as they must."
        enc = {s.response.header("content-encoding") for s in (gz, plain)}
        if len(enc) > 1 and "accept-encoding" not in (gz.response.header("vary") or "").lower():
            result.explanation += (
                " The compressed response lacks Vary: Accept-Encoding, so shared caches may "
                "serve it to clients that cannot decode it (RFC 9110 12.5.5)."
            )
    return [result]
