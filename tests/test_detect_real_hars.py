"""The detectors over the real HAR corpus: no accusation without proof, and what it does show."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.detectors import run_all
from analysis.ingest import ingest_paths
from analysis.report_json import analysis_to_json
from analysis.store import Store, load_exchanges


@pytest.fixture(scope="module")
def corpus(real_hars: Path, tmp_path_factory):  # type: ignore[no-untyped-def]
    db = tmp_path_factory.mktemp("corpus") / "real.sqlite"
    store = Store(db)
    try:
        ingest_paths([real_hars], store)
    finally:
        store.close()
    return run_all(load_exchanges(db))


def test_no_identifier_in_the_real_corpus(corpus) -> None:
    """Each file is one client and none revalidates a forged value: nothing can prove tracking."""
    verdicts = set(corpus.resources["verdict"])
    assert "identifier" not in verdicts
    assert corpus.summary["exchanges"] > 4000
    assert corpus.resources["url"].is_unique


def test_corpus_shows_known_defects(corpus) -> None:
    f = corpus.findings
    # httpolice_old: GET /status/304 on httpbin answered 304 without preconditions
    bare = f[f["rule"] == "unconditional-304"]
    assert len(bare) == 7 and set(bare["host"]) == {"httpbin.org", "http2bin.org"}
    # unquoted ETags (lalibre, buzzfeed, cnn...) confirmed by httplint
    syntax = f[f["rule"] == "etag-syntax"]
    assert len(syntax) > 100
    assert all(any(n.startswith("BAD_SYNTAX") for n in e["httplint"]) for e in syntax["evidence"])
    # metrics.cnn.com: Last-Modified a day after Date
    assert "metrics.cnn.com" in set(f.loc[f["rule"] == "last-modified-future", "host"])


def test_json_report_of_the_corpus_serialises(corpus) -> None:
    import json

    doc = analysis_to_json(corpus)
    json.dumps(doc, allow_nan=False)  # raises on NaN / inf
    assert len(doc["resources"]) == len(corpus.resources)
