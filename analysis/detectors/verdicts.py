"""One verdict per resource, with a confidence and the evidence behind it.

Verdicts (exact names, a contract for reports and the addon), worst first; docs/verdicts.md
states each rule in words, with its confidence scale and an example:

- ``identifier``: reflection (a 304 to a value never issued); or >= 2 clients each keeping
  their own value with 304s, none shared, identical content, not tied to backends, not a known
  server format and no content change explaining it; or the same with a body of its own per
  client when no request carried a Cookie or Authorization (the body carries the id).
- ``likely-identifier``: one client keeping a high-entropy value (bits from variation across
  the host) with 304s, not a format or an unverified digest shape, with a context signal; or
  several clients, one value each, 304s only, no body ever seen (``content_unseen``).
- ``churn``: the same content under several values served side by side (overlapping or
  alternating) or tied to backends; with cause and cost.
- ``changed``: values that followed each other (dates, Last-Modified, a client moving from one
  to the next): a content change or redeploy; nothing counted as wasted.
- ``unstable``: a new value on (almost) every response, never a 304.
- ``undetermined``: nothing above, and no evidence of benignity: one client, values nobody
  shared, a digest-shaped value no body was compared with, or per-client content for a client
  that sent credentials (personalised).
- ``stable``: benign on evidence: clients share the value, the body's digest was verified or
  values follow the bodies, a server format's fields match the response, or too few bits.
- ``none``: the resource never carried this validator (kept so per-host tables add up).

Precision rule: a resource seen by one client can never be ``identifier`` except by
reflection, and values that map 1:1 to backends or are shared by clients never are; a shape
alone (32 hex digits, a format's look) never makes a value benign.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.detectors.shapes import LOW_INFORMATION_BITS

VERDICTS = ("identifier", "likely-identifier", "churn", "changed", "unstable", "undetermined",
            "stable", "none")
#: Worst first: reports sort by this, and a resource takes its worst validator's verdict.
RANK = {v: i for i, v in enumerate(VERDICTS)}

SMALL_BODY = 5 * 1024  # tracking pixels and beacons (Brave's 1-5 kB heuristic)
HIGH_ENTROPY_BITS = 64.0
#: Values that follow each other with at least this long between them (and never alternate)
#: are explained by a content change or redeploy between visits (captures of different days).
CHANGE_GAP = 24 * 3600.0


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

    Returns ``f`` with the boolean tests used (so evidence can cite them), ``verdict``,
    ``kind`` (which rule gave it) and ``confidence`` (0..1). docs/verdicts.md states each
    rule in words."""
    f = f.copy()
    is_etag = pd.Series(f.index.get_level_values("validator") == "etag", index=f.index)
    known = _col(f, "known_format", False).astype(bool)
    shape = _col(f, "shape", "")
    hash_like = _col(f, "hash_like", False).astype(bool)
    bits = _col(f, "min_bits", 0.0).astype(float)
    f["format_verified"] = _col(f, "format_verified", False).astype(bool)
    f["content_known"] = f["values_with_content"] > 0
    f["content_identical"] = f["content_known"] & (f["content_values"] == 1)
    f["strong_content_basis"] = _col(f, "content_basis", "") == "body hash"
    f["digest_verified"] = _col(f, "digest_verified", 0).astype(int) > 0
    digest_refuted = (_col(f, "digest_refuted", 0).astype(int) > 0) & ~f["digest_verified"]
    # a digest-shaped value nothing compared with the body: neither benign nor accused
    f["digest_unverified"] = is_etag & (shape == "digest") & ~f["digest_verified"] & ~digest_refuted
    follows = (f["content_known"] & f["strong_content_basis"] & (f["values"] >= 2)
               & (f["value_content_pairs"] == f["values_with_content"])
               & (f["values_with_content"] == f["content_values"]))
    f["content_derived"] = f["digest_verified"] | follows
    f["tied_to_backends"] = _tied(f, "")
    # the same over every response naming a backend, 304s included (see resources)
    f["answers_tied_to_backends"] = _tied(f, "_any") if "values_with_backend_any" in f else False
    f["all_clients_stable"] = f["stable_clients"] == f["clients"]
    f["unique_across_clients"] = f["max_clients_per_value"] <= 1
    f["small_body"] = _col(f, "body_size", np.nan).astype(float).le(SMALL_BODY)
    f["context_signals"] = (
        f["third_party"].astype(int) + (f["cookie_match"] | _col(f, "query_match", False)).astype(int)
        + f["forced_revalidation"].astype(int) + f["small_body"].astype(int)
    )
    reflected = f["reflected_304s"] > 0
    # a value change on an unconditional refetch is also what invisible, non-sticky backends
    # produce; trackers keep a client's id until it loses it, so such changes stay the exception
    f["reidentification_rare"] = _col(f, "reidentified_clients", 0).astype(int) * 2 <= f["clients"]
    # 'abc-gzip' and 'abc-br' are one value in two content codings, not two clients' ids
    stems = _col(f, "coding_stems", 0).astype(int)
    distinct_stems = (stems == f["values"]) | ~is_etag
    # time: did the values live side by side (overlap, or one came back after another)?
    f["concurrent"] = (f["overlapping_values"] > 0) | (_col(f, "value_runs", 0) > f["values"])
    gap = _col(f, "min_change_gap", np.nan).astype(float)
    lm_changed = _col(f, "last_modified_values", 0).astype(int) >= 2
    f["change_explains"] = (f["values"] >= 2) & ~f["concurrent"] & (
        (lm_changed & is_etag) | (gap >= CHANGE_GAP))
    f["one_value_per_client"] = (
        (f["clients"] >= 2) & (f["max_values_per_client"] == 1) & f["unique_across_clients"]
    )
    per_client_ids = (
        (f["clients"] >= 2) & (f["values"] >= 2) & f["all_clients_stable"]
        & f["reidentification_rare"] & f["unique_across_clients"] & (f["clients_304"] >= 2)
        & ~f["tied_to_backends"] & ~known & distinct_stems & ~f["change_explains"]
    )
    identifier = per_client_ids & f["content_identical"]
    # every client its own body too: the body may carry the id (KISSmetrics' cached script);
    # without Cookie or Authorization nothing else could have personalised it
    f["per_client_content"] = (
        f["content_known"] & (f["content_values"] >= 2) & (_col(f, "shared_contents", 0) == 0)
        & (_col(f, "clients_with_content", 0) == f["clients"])
    )
    content_id = per_client_ids & f["per_client_content"] & f["one_value_per_client"] & is_etag
    f["personalised"] = content_id & _col(f, "credentials", False).astype(bool)
    identifier_by_content = content_id & ~f["personalised"]
    churn = (
        (f["values"] >= 2) & f["content_identical"] & ~identifier & ~reflected
        & ((f["shared_values"] >= 1) | f["tied_to_backends"] | known)
        & (f["concurrent"] | f["tied_to_backends"])
    )
    issued = f["issued_values"]
    unstable = (
        (f["fetches_2xx"] >= 3) & (issued >= np.maximum(2, 0.8 * f["fetches_2xx"]))
        & (f["n304"] == 0) & (f["content_identical"] | ~f["content_known"])
    )
    # a content change: the values followed each other, and either the dates explain it or a
    # client itself moved from one value to the next (each client holding its own value, one
    # after another, is what per-client ids look like in sequential profiles: not a change)
    # (and a value was seen more than once: A then B, once each, is no sign of a change)
    moved = ((f["max_values_per_client"] >= 2) & ~f["one_value_per_client"]
             & (f["exchanges"] > f["values"]))
    changed = ((f["values"] >= 2) & ~f["concurrent"] & ~f["tied_to_backends"] & ~reflected
               & ~f["content_derived"] & (f["change_explains"] | moved))
    not_benign = ~f["content_derived"] & ~f["format_verified"]
    likely = (
        (f["clients"] == 1) & (f["values"] == 1) & (f["n304"] >= 1) & (f["exchanges"] >= 2)
        & is_etag & (bits >= HIGH_ENTROPY_BITS) & ~known & ~f["digest_unverified"]
        & not_benign & (f["context_signals"] >= 1)
    )
    # several clients, one value each, none shared, every client answered 304, but no 2xx body
    # was ever seen: a content change between clients is not ruled out (nor a value the browser
    # cached before the capture), so "identifier" would claim too much and "stable" too little
    likely_unseen_content = (
        f["one_value_per_client"] & ~f["content_known"] & (f["clients_304"] == f["clients"])
        & is_etag & hash_like & (bits >= HIGH_ENTROPY_BITS) & ~known & (shape != "digest")
        & (stems == f["values"]) & ~f["tied_to_backends"] & ~f["answers_tied_to_backends"]
        & (f["context_signals"] >= 1) & ~f["change_explains"]
    )
    f["content_unseen"] = likely_unseen_content
    # what makes a value benign: others hold it too, it is checked against the body or the
    # response, or it is too short to tell clients apart; one client alone proves nothing
    f["shared_by_clients"] = f["max_clients_per_value"] >= 2
    f["low_information"] = is_etag & (bits < LOW_INFORMATION_BITS) & (bits > 0)
    f["stable_evidence"] = (f["shared_by_clients"] | f["content_derived"] | f["format_verified"]
                            | f["low_information"])
    per_client_values = f["one_value_per_client"] & (f["values"] >= 2)
    undetermined = ~f["stable_evidence"] | per_client_values | f["personalised"]
    rules = [
        ("identifier", "reflection", reflected),
        ("identifier", "per-client", identifier),
        ("identifier", "per-client-content", identifier_by_content),
        ("churn", "churn", churn),
        ("unstable", "unstable", unstable),
        ("changed", "changed", changed & ~identifier & ~identifier_by_content),
        ("likely-identifier", "single-client", likely),
        ("likely-identifier", "content-unseen", likely_unseen_content),
        ("undetermined", "personalised", f["personalised"]),
        ("undetermined", "undetermined", undetermined),
    ]
    conds = [r[2].to_numpy(dtype=bool) for r in rules]
    f["verdict"] = np.select(conds, [r[0] for r in rules], default="stable")
    f["kind"] = np.select(conds, [r[1] for r in rules], default="stable")
    weak_basis = ~f["strong_content_basis"]
    conf = np.select(
        conds,
        [
            np.full(len(f), 0.95),
            0.6 + 0.15 * (f["clients"] >= 3) + 0.1 * f["concurrent"]
            + 0.1 * (hash_like | (bits >= 48)) + 0.04 * (f["context_signals"] > 0)
            - 0.2 * weak_basis,
            0.55 + 0.15 * (f["clients"] >= 3) + 0.1 * f["concurrent"]
            + 0.05 * (f["context_signals"] > 0) - 0.15 * weak_basis,
            0.6 + 0.2 * f["tied_to_backends"] + 0.1 * (f["shared_values"] >= 1)
            + 0.09 * known - 0.2 * weak_basis,
            0.6 + 0.2 * f["content_identical"] + 0.1 * (f["fetches_2xx"] >= 5),
            0.6 + 0.2 * lm_changed + 0.1 * (gap >= CHANGE_GAP),
            0.4 + 0.05 * np.minimum(f["context_signals"], 4),
            0.5 + 0.08 * (f["clients"] >= 3) + 0.04 * (f["overlapping_values"] > 0)
            + 0.02 * np.minimum(f["context_signals"], 4),
            np.full(len(f), 0.5),
            np.full(len(f), 0.5),
        ],
        default=0.5 + 0.3 * (f["content_derived"] | f["format_verified"]) + 0.1 * (
            f["shared_by_clients"]) + 0.05 * (f["values"] == 1) - 0.15 * (
            f["content_derived"] & ~f["digest_verified"] & weak_basis),
    )
    f["confidence"] = np.round(np.clip(conf, 0.05, 0.99), 2)
    return f


def pick_per_resource(classified: pd.DataFrame) -> pd.DataFrame:
    """The worst verdict of each resource across its validators (ETag wins ties; a
    Last-Modified left undetermined yields to a stable ETag)."""
    c = classified.reset_index()
    c["_rank"] = c["verdict"].map(RANK).astype(float)
    # a Last-Modified only one client saw says nothing the resource's stable ETag has not
    # settled: the ETag's evidence decides
    settled = set(c.loc[(c["validator"] == "etag") & (c["verdict"] == "stable"), "resource"])
    lm_open = (c["validator"] == "last-modified") & (c["verdict"] == "undetermined")
    c.loc[lm_open & c["resource"].isin(settled), "_rank"] = RANK["stable"] + 0.5
    c["_etag_first"] = (c["validator"] != "etag").astype(int)
    c = c.sort_values(["_rank", "_etag_first"], kind="stable").drop_duplicates("resource")
    return c.drop(columns=["_rank", "_etag_first"]).set_index("resource")
