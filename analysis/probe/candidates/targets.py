"""Which resources of a store `probe --candidates` probes: every resource whose verdict the
capture left open or accusing (identifier, likely-identifier, undetermined), judged by the same
detectors as `analyze`, and what stops one from being probed."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pandas as pd

from analysis.detectors.settled import CANDIDATES
from analysis.privacy import HASH_PREFIX

#: The verdicts a probe can confirm or clear (docs/verdicts.md, "Settled by probe").
CANDIDATE_VERDICTS = CANDIDATES


@dataclass(frozen=True)
class Target:
    url: str  # the resource as stored (the key of its outcome)
    host: str  # the rate limit is per host name
    verdict: str
    kind: str | None
    confidence: float
    redacted: bool  # the capture stored its validators as keyed hashes: so does the outcome
    skip: str | None = None  # why it cannot be probed (nothing is sent)

    @property
    def server(self) -> str:
        """host:port, the unit that fails (a refused port says nothing of the host's others)."""
        return urlsplit(self.url).netloc or self.host


def _skip_reason(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http:// or https:// URL"
    if HASH_PREFIX in parts.query:
        return ("its query values are stored as keyed hashes, so the URL the client fetched "
                "cannot be rebuilt (ingest with --keep-query to probe such URLs)")
    return None


def candidates(exchanges: pd.DataFrame) -> list[Target]:
    """The candidate resources of ``exchanges`` (a store's rows), worst verdict first, hosts
    interleaved so that concurrent probes spread over hosts rather than queue on one."""
    from analysis.detectors import run_all

    if exchanges.empty:
        return []
    resources = run_all(exchanges).resources
    picked = resources[resources["verdict"].isin(CANDIDATE_VERDICTS)]
    # a redacted opaque-tag is its own keyed hash (analysis.readers.record)
    etags = exchanges[["url", "etag_opaque", "etag_hash"]].dropna()
    redacted = set(etags.loc[etags["etag_opaque"] == etags["etag_hash"], "url"])
    by_host: dict[str, list[Target]] = {}
    for row in picked.itertuples(index=False):
        url = str(row.url)
        ev = row.evidence if isinstance(row.evidence, dict) else {}
        target = Target(url, str(row.host or urlsplit(url).hostname or ""), str(row.verdict),
                        ev.get("kind"), float(row.confidence), url in redacted,
                        _skip_reason(url))
        by_host.setdefault(target.host, []).append(target)
    out: list[Target] = []
    queues = list(by_host.values())
    while queues:
        out += [q.pop(0) for q in queues]
        queues = [q for q in queues if q]
    return out
