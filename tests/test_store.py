"""The SQLite store: schema and migrations, batch and background writing, reading under WAL."""

from __future__ import annotations

import sqlite3
import threading
import time

import pandas as pd
import pytest

from analysis.exchange import COLUMNS, Exchange
from analysis.store import (
    COMMIT_INTERVAL,
    SCHEMA_VERSION,
    SourceRow,
    Store,
    StoreError,
    connect,
    load_exchanges,
)


def _ex(i: int, **kw) -> Exchange:
    base = dict(
        source="t.har", source_kind="har", client="c", method="GET",
        url=f"https://h{i % 3}.test/{i}", host=f"h{i % 3}.test", entry_index=i,
        status=200 if i % 2 else 304, etag=f'"{i}"', etag_weak=bool(i % 2), etag_count=1,
    )
    base.update(kw)
    return Exchange(**base)


def test_created_on_first_use_wal_versioned_with_key(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert len(store.key) == 32
        key = store.key
        mode = store.connection.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        indexes = {r[1] for r in store.connection.execute("PRAGMA index_list(exchanges)")}
        assert {"exchanges_host", "exchanges_url"} <= indexes
    with Store(path) as again:
        assert again.key == key  # the key persists: hashes stay comparable across runs


def test_insert_and_load_with_nullable_dtypes(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        n = store.insert([_ex(i) for i in range(5)] + [_ex(9, status=None, etag_weak=None)])
        assert n == 6 == store.count()
        df = load_exchanges(store)
    assert list(df.columns) == ["id", *COLUMNS]
    assert df["status"].dtype == "Int64" and df["etag_weak"].dtype == "boolean"
    assert df["from_cache"].dtype == "boolean" and df["started"].dtype == "float64"
    assert df["status"].isna().sum() == 1 and pd.isna(df["etag_weak"].iloc[-1])
    assert df["status"].tolist()[:5] == [304, 200, 304, 200, 304]
    assert df.loc[df.status == 200, "etag_weak"].all()


def test_load_from_path_and_missing_store(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.insert([_ex(1)])
    assert len(load_exchanges(path)) == 1
    with pytest.raises(FileNotFoundError):
        load_exchanges(tmp_path / "nope.sqlite")


def test_background_writer_commits_on_its_own_and_readers_work_meanwhile(tmp_path):
    path = tmp_path / "live.sqlite"
    store = Store(path)
    writer = store.writer()
    try:
        producer_done = threading.Event()

        def produce():
            for i in range(300):
                writer.put(_ex(i))
            producer_done.set()

        t = threading.Thread(target=produce)
        t.start()
        t.join()
        assert producer_done.is_set()
        # committed without flush, within the commit interval (plus scheduling slack)
        deadline = time.monotonic() + COMMIT_INTERVAL + 5
        seen = 0
        while time.monotonic() < deadline:
            seen = len(load_exchanges(path))  # a reader while the writer is active
            if seen == 300:
                break
            time.sleep(0.05)
        assert seen == 300
        writer.put(_ex(1000))
        writer.flush()
        assert store.count() == 301
    finally:
        writer.close()
        store.close()
    assert writer.stored == 301


def test_writer_error_is_raised_to_the_producer(tmp_path):
    path = tmp_path / "w.sqlite"
    store = Store(path)
    writer = store.writer()
    store.connection.execute("DROP TABLE exchanges")
    store.connection.commit()
    writer.put(_ex(1))
    with pytest.raises(RuntimeError, match="store writer failed"):
        writer.flush(timeout=10)
    with pytest.raises(RuntimeError):
        writer.put(_ex(2))
    store.close()


def test_new_exchange_fields_are_added_to_an_old_store(tmp_path):
    path = tmp_path / "old.sqlite"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE exchanges DROP COLUMN cache_kind")
    conn.commit()
    conn.close()
    with Store(path) as store:
        cols = {r[1] for r in store.connection.execute("PRAGMA table_info(exchanges)")}
        assert "cache_kind" in cols
        store.insert([_ex(1, from_cache=True, cache_kind="disk")])
        assert load_exchanges(store)["cache_kind"].tolist() == ["disk"]


def test_newer_or_foreign_files_are_refused(tmp_path):
    path = tmp_path / "new.sqlite"
    Store(path).close()
    conn = connect(path)
    conn.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store(path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not an etagwatch store"):
        Store(junk)


def test_sources_and_skips_tables(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        store.add_source(SourceRow("a.har", "har", "ab" * 32, 10, "a.har", 3, 2, 1))
        store.add_skipped([("a.har", 2, "data: URL, no HTTP exchange")])
        assert store.seen_sha256("ab" * 32) == "a.har"
        assert store.seen_sha256("cd" * 32) is None
        assert store.table("skipped").iloc[0].entry_index == 2
        assert store.table("sources").iloc[0].stored == 2
