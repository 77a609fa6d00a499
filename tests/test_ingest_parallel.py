"""Ingest with a writer process: same store as in one process; failures reach the caller;
indexes deferred during a bulk load come back; file digests taken beside the reader."""

from __future__ import annotations

import hashlib
import shutil

import pytest
from test_readers_har import make_entry, make_har, write_har

from analysis import ingest as ingest_module
from analysis.cli import main
from analysis.commands.ingest import default_jobs
from analysis.exchange import COLUMNS
from analysis.ingest import ingest_paths
from analysis.store import EXCHANGE_INDEXES, Store, load_exchanges
from analysis.writer_process import WriterError, WriterProcess


def _indexes(store: Store) -> set[str]:
    return {r[1] for r in store.connection.execute("PRAGMA index_list(exchanges)")}


def _twin_stores(tmp_path):
    """Two empty stores sharing one key, so keyed hashes compare across them."""
    a = tmp_path / "a.sqlite"
    Store(a).close()
    b = tmp_path / "b.sqlite"
    shutil.copy(a, b)
    return Store(a), Store(b)


def test_writer_process_stores_what_one_process_stores(real_hars, tmp_path, monkeypatch):
    folder = real_hars / "har2tree"
    one, two = _twin_stores(tmp_path)
    r1 = ingest_paths([folder], one, jobs=1)
    monkeypatch.setattr(ingest_module, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(ingest_module, "OFFLOAD_SHARE", 0.5)
    taken = []
    real_take = WriterProcess.take

    def take(self, reader, data, first_index, count):
        taken.append(count)
        real_take(self, reader, data, first_index, count)

    monkeypatch.setattr(WriterProcess, "take", take)
    r2 = ingest_paths([folder], two, jobs=2)
    assert sum(taken) > 500  # the writer converted runs of entries itself
    assert r1.stored == r2.stored > 3000
    assert (r1.skipped, r1.errors) == (r2.skipped, r2.errors)
    d1, d2 = load_exchanges(one), load_exchanges(two)
    assert d1[list(COLUMNS)].equals(d2[list(COLUMNS)])
    s1, s2 = one.table("sources"), two.table("sources")
    assert s1[["path", "sha256", "entries", "stored", "skipped"]].equals(
        s2[["path", "sha256", "entries", "stored", "skipped"]]
    )
    assert _indexes(two) >= set(EXCHANGE_INDEXES)  # dropped for the bulk load, rebuilt after
    one.close()
    two.close()


def test_writer_failure_is_raised_with_its_reason(tmp_path):
    path = tmp_path / "w.sqlite"
    with Store(path) as store:
        store.connection.execute("DROP TABLE exchanges")
        store.connection.commit()
    from analysis.readers import open_capture

    har = write_har(tmp_path / "x.har", make_har([make_entry()]))
    exchanges = [i for i in open_capture(har, client="c", key=b"k" * 32)]
    with WriterProcess(path) as writer, pytest.raises(WriterError, match="no such table"):
        writer.insert(exchanges)


def test_writer_death_is_raised_not_waited_for(tmp_path):
    path = tmp_path / "d.sqlite"
    Store(path).close()
    writer = WriterProcess(path)
    writer._proc.kill()
    writer._proc.wait()
    from analysis.readers import open_capture

    har = write_har(tmp_path / "x.har", make_har([make_entry()]))
    with pytest.raises(WriterError, match="died"):
        writer.insert(list(open_capture(har, client="c", key=b"k" * 32)))
    writer.close()


def test_missing_indexes_are_rebuilt_on_open(tmp_path):
    path = tmp_path / "i.sqlite"
    with Store(path) as store:
        for name in EXCHANGE_INDEXES:
            store.connection.execute(f"DROP INDEX {name}")
        store.connection.commit()
        assert not _indexes(store) & set(EXCHANGE_INDEXES)
    with Store(path) as store:
        assert _indexes(store) >= set(EXCHANGE_INDEXES)


def test_digest_is_the_file_sha256_and_same_size_files_are_told_apart(tmp_path):
    a = write_har(tmp_path / "a.har", make_har([make_entry("https://a.test/1")]))
    b = write_har(tmp_path / "b.har", make_har([make_entry("https://a.test/2")]))
    assert a.stat().st_size == b.stat().st_size and a.read_bytes() != b.read_bytes()
    copy = tmp_path / "copy.har"
    shutil.copy(a, copy)
    with Store(tmp_path / "s.sqlite") as store:
        first = ingest_paths([a, b], store)
        again = ingest_paths([copy], store)
        sources = store.table("sources")
    assert first.stored == 2 and not first.duplicates
    assert again.duplicates == [(str(copy), str(a))]
    want = {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b)}
    assert dict(zip(sources.path, sources.sha256, strict=True)) == want


def test_cli_default_jobs_use_the_writer_for_large_input(tmp_path, monkeypatch, capsys):
    assert default_jobs() in (1, 2)
    monkeypatch.setattr(ingest_module, "PARALLEL_MIN_BYTES", 0)
    started = []
    import analysis.writer_process as writer_module  # ingest imports it where it is used

    real = writer_module.WriterProcess

    def spy(path, **kw):
        started.append(path)
        return real(path, **kw)

    monkeypatch.setattr(writer_module, "WriterProcess", spy)
    har = write_har(tmp_path / "x.har", make_har([make_entry(f"https://a.test/{i}") for i in range(5)]))
    db = tmp_path / "s.sqlite"
    assert main(["ingest", str(har), "--db", str(db), "--no-progress"]) == 0
    assert "stored:    5 exchanges" in capsys.readouterr().out
    assert len(started) == (default_jobs() >= 2)
    assert main(["ingest", str(har), "--db", str(tmp_path / "t.sqlite"), "--jobs", "1"]) == 0
    assert len(started) == (default_jobs() >= 2)  # --jobs 1: no writer process
    assert len(load_exchanges(db)) == 5
