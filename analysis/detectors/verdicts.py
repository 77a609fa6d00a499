"""One verdict per resource, with a confidence and the evidence behind it.

Verdicts (exact names, a contract for reports and the addon):

- ``identifier``: values stable within each client, unique across >= 2 clients, revalidated
  with 304, identical content, and nothing that load balancing explains (values not tied to
  backends, not a known server format); or reflection (a 304 to a value never issued).
  "Stable within a client" tolerates re-identification: a new value that came on an
  unconditional refetch (hard reload, cache eviction) and was then itself kept with 304s
  (analysis.detectors.resources), as long as at most half the clients needed it; a server that
  answers a presented value with a new one is never stable.
- ``likely-identifier``: one client only; the value persists with 304s, is high-entropy, is
  neither a digest nor a known server format, and has a context signal. The evidence says what a
  second client would confirm. Also: >= 2 clients each keeping one distinct value (none shared)
  with 304s, high-entropy and hash-like, not a digest, known server format or content-coding
  variant, not tied to backends (304s included), with a context signal, but no 2xx body ever
  seen (``content_unseen``): passive evidence cannot tell a forged or echoed value from a content
  change between clients, so the evidence says what would confirm it.
- ``churn``: identical content under several values that are shared across clients, tied to
  backends, or in a known server format whose parts differ; with cause and cost.
- ``unstable``: a new value on (almost) every response, never a 304.
- ``stable``: one value, or values that follow the content (content-derived); benign.
- ``none``: the resource never carried this validator (kept so per-host tables add up).

Precision rule: a resource seen by one client can never be ``identifier`` except by
reflection, and values that map 1:1 to backends or are shared by clients never are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

VERDICTS = ("identifier", "likely-identifier", "churn", "unstable", "stable", "none")
#: Worst first: reports sort by this, and a resource takes its worst validator's verdict.
RANK = {v: i for i, v in enumerate(VERDICTS)}

SMALL_BODY = 5 * 1024  # tracking pixels and beacons (Brave's 1-5 kB heuristic)
HIGH_ENTROPY_BITS = 64.0


def _col(f: pd.DataFrame, name: str, default: object) -> pd.Series:
    if name in f.columns:
        return f[name].fillna(default).infer_objects()
    return pd.Series(default, index=f.index)


def _tied(f: pd.DataFrame, suffix: str) -> pd.Series:
    """Values follow backends: >= 2 of each, every value from one backend, every backend
    answering with one value (load balancing, not identification)."""
    return (
        (f["backends"] >= 2)
        & (f["values_with_backend" + suffix] >= 2)
        & (f["value_backend_pairs" + suffix] == f["values_with_backend" + suffix])
        & (f["max_values_per_backend" + suffix] <= 1)
    )


def classify(f: pd.DataFrame) -> pd.DataFrame:
    """Vectorised verdict per (resource, validator) row of resource_features (+ churn costs).

    Returns ``f`` with the boolean tests used (so evidence can cite them), ``verdict`` and
    ``confidence`` (0..1)."""
    f = f.copy()
    known = _col(f, "known_format", False).astype(bool)
    shape = _col(f, "shape", "")
    hash_like = _col(f, "hash_like", False).astype(bool)
    bits = _col(f, "min_bits", 0.0).astype(float)
    f["content_known"] = f["values_with_content"] > 0
    f["content_identical"] = f["content_known"] & (f["content_values"] == 1)
    f["content_derived"] = (
        f["content_known"]
        & (f["value_content_pairs"] == f["values_with_content"])
        & (f["values_with_content"] == f["content_values"])
        & ((f["values"] >= 2) | (shape == "digest"))
    )
    f["tied_to_backends"] = _tied(f, "")
    # the same over every response naming a backend, 304s included (see resources)
    f["answers_tied_to_backends"] = _tied(f, "_any") if "values_with_backend_any" in f else False
    f["all_clients_stable"] = f["stable_clients"] == f["clients"]
    f["unique_across_clients"] = f["max_clients_per_value"] <= 1
    f["small_body"] = _col(f, "body_size", np.nan).astype(float).le(SMALL_BODY)
    f["context_signals"] = (
        f["third_party"].astype(int) + f["cookie_match"].astype(int)
        + f["forced_revalidation"].astype(int) + f["small_body"].astype(int)
    )
    reflected = f["reflected_304s"] > 0
    # a value change on an unconditional refetch is also what invisible, non-sticky backends
    # produce; trackers keep a client's id until it loses it, so such changes stay the exception
    f["reidentification_rare"] = _col(f, "reidentified_clients", 0).astype(int) * 2 <= f["clients"]
    is_etag = f.index.get_level_values("validator") == "etag"
    # 'abc-gzip' and 'abc-br' are one value in two content codings, not two clients' ids
    stems = _col(f, "coding_stems", 0).astype(int)
    distinct_stems = (stems == f["values"]) | ~is_etag
    identifier = (
        (f["clients"] >= 2) & (f["values"] >= 2) & f["all_clients_stable"]
        & f["reidentification_rare"]
        & f["unique_across_clients"] & (f["clients_304"] >= 2) & f["content_identical"]
        & ~f["tied_to_backends"] & ~known & distinct_stems
    )
    churn = (
        (f["values"] >= 2) & f["content_identical"] & ~identifier & ~reflected
        & ((f["shared_values"] >= 1) | f["tied_to_backends"] | known)
    )
    issued = f["issued_values"]
    unstable = (
        (f["fetches_2xx"] >= 3) & (issued >= np.maximum(2, 0.8 * f["fetches_2xx"]))
        & (f["n304"] == 0) & (f["content_identical"] | ~f["content_known"])
    )
    likely = (
        (f["clients"] == 1) & (f["values"] == 1) & (f["n304"] >= 1) & (f["exchanges"] >= 2)
        & is_etag
        & (hash_like | (bits >= HIGH_ENTROPY_BITS)) & (bits >= HIGH_ENTROPY_BITS)
        & ~known & (shape != "digest") & (f["context_signals"] >= 1)
    )
    # several clients, one value each, none shared, every client answered 304, but no 2xx body
    # was ever seen: a content change between clients is not ruled out (nor a value the browser
    # cached before the capture), so "identifier" would claim too much and "stable" too little
    f["one_value_per_client"] = (
        (f["clients"] >= 2) & (f["max_values_per_client"] == 1) & f["unique_across_clients"]
    )
    likely_unseen_content = (
        f["one_value_per_client"] & ~f["content_known"] & (f["clients_304"] == f["clients"])
        & is_etag & hash_like & (bits >= HIGH_ENTROPY_BITS) & ~known & (shape != "digest")
        & (stems == f["values"]) & ~f["tied_to_backends"] & ~f["answers_tied_to_backends"]
        & (f["context_signals"] >= 1)
    )
    f["content_unseen"] = likely_unseen_content
    f["verdict"] = np.select(
        [reflected, identifier, churn, unstable, likely, likely_unseen_content],
        ["identifier", "identifier", "churn", "unstable", "likely-identifier",
         "likely-identifier"],
        default="stable",
    )
    conf = np.select(
        [reflected, identifier, churn, unstable, likely, likely_unseen_content],
        [
            np.full(len(f), 0.95),
            0.6 + 0.15 * (f["clients"] >= 3) + 0.1 * (f["overlapping_values"] > 0)
            + 0.1 * (hash_like | (bits >= 48)) + 0.04 * (f["context_signals"] > 0),
            0.6 + 0.2 * f["tied_to_backends"] + 0.1 * (f["shared_values"] >= 1)
            + 0.09 * known,
            0.6 + 0.2 * f["content_identical"] + 0.1 * (f["fetches_2xx"] >= 5),
            0.4 + 0.05 * np.minimum(f["context_signals"], 4),
            0.5 + 0.08 * (f["clients"] >= 3) + 0.04 * (f["overlapping_values"] > 0)
            + 0.02 * np.minimum(f["context_signals"], 4),
        ],
        default=0.5 + 0.3 * f["content_derived"] + 0.15 * (f["values"] == 1),
    )
    f["confidence"] = np.round(np.minimum(conf, 0.99), 2)
    return f


def pick_per_resource(classified: pd.DataFrame) -> pd.DataFrame:
    """The worst verdict of each resource across its validators (ETag wins ties)."""
    c = classified.reset_index()
    c["_rank"] = c["verdict"].map(RANK)
    c["_etag_first"] = (c["validator"] != "etag").astype(int)
    c = c.sort_values(["_rank", "_etag_first"], kind="stable").drop_duplicates("resource")
    return c.drop(columns=["_rank", "_etag_first"]).set_index("resource")
