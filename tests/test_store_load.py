"""load_exchanges builds its frame chunk by chunk, column by column (issue 16); the frame is the
one the former loader made from the rows with pandas (kept here as the reference): every value,
every dtype, NaN or None for missing text alike, across chunk boundaries and with values SQLite
kept under another type than the column's. The store is read by connectorx where it can be
(store_arrow), through the sqlite3 module where it cannot: both give that frame."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis import store as store_module
from analysis import store_arrow
from analysis.exchange import COLUMNS
from analysis.store import StoreError, _typed, load_exchanges

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def _former(path: Path) -> pd.DataFrame:
    """The loader before issue 16: every row as a tuple, ``from_records``, then the dtypes."""
    conn = sqlite3.connect(path)
    rows = conn.execute(f"SELECT id, {', '.join(COLUMNS)} FROM exchanges ORDER BY id").fetchall()
    conn.close()
    return _typed(pd.DataFrame.from_records(rows, columns=["id", *COLUMNS]))


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b)
    for col in a.columns:  # missing text: NaN where the former frame had NaN, None where None
        if a[col].dtype == object:
            kinds = [type(v).__name__ for v in a[col]]
            assert kinds == [type(v).__name__ for v in b[col]], col


@pytest.fixture
def odd_store(tmp_path, monkeypatch) -> Path:
    from synthetic import as_stored, synthetic, write_store

    monkeypatch.setattr(store_module, "LOAD_CHUNK", 100)  # many chunk boundaries
    monkeypatch.setattr(store_arrow, "BATCH_ROWS", 100)
    path = write_store(as_stored(synthetic(1000)), tmp_path / "s.sqlite")
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE exchanges SET entry_index = NULL WHERE id % 7 = 0")
        conn.execute("UPDATE exchanges SET status = NULL WHERE id < 150")  # a whole chunk
        conn.execute("UPDATE exchanges SET content_type = NULL WHERE id > 900")
        conn.execute("UPDATE exchanges SET etag_count = 12345678901234567 WHERE id = 3")
        conn.execute("UPDATE exchanges SET third_party = 1 WHERE id % 3 = 0")
        conn.execute("UPDATE exchanges SET port = 443 WHERE id > 500")
    conn.close()
    return path


def test_the_former_frame(odd_store):
    _same(load_exchanges(odd_store), _former(odd_store))


def test_text_in_an_integer_column(odd_store):
    conn = sqlite3.connect(odd_store)
    with conn:
        conn.execute("UPDATE exchanges SET body_size = '12' WHERE id = 950")
    conn.close()
    frame = load_exchanges(odd_store)
    _same(frame, _former(odd_store))
    assert frame["body_size"][949] == 12


def test_some_columns(odd_store):
    """Only the named columns, in COLUMNS order, each as the full load has it."""
    some = load_exchanges(odd_store, ["status", "url", "client"])
    assert list(some.columns) == ["id", "client", "url", "status"]
    _same(some, load_exchanges(odd_store)[["id", "client", "url", "status"]])


def test_the_sample_store(tmp_path):
    from support import ingest_into

    ingest_into(tmp_path / "s.sqlite", [ROOT / "sample_captures"])
    _same(load_exchanges(tmp_path / "s.sqlite"), _former(tmp_path / "s.sqlite"))


def _via_sqlite3(path: Path, monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    with monkeypatch.context() as m:
        m.setattr(store_arrow, "available", lambda: False)
        return load_exchanges(path)


def _batches_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the record batches connectorx hands over from now on."""
    seen: list[int] = []
    real = store_arrow.read_batches

    def counting(*args, **kwargs):
        for batch in real(*args, **kwargs):
            seen.append(len(batch[0][0]))
            yield batch

    monkeypatch.setattr(store_arrow, "read_batches", counting)
    return seen


def test_connectorx_and_sqlite3_read_the_same_frame(odd_store, monkeypatch):
    batches = _batches_read(monkeypatch)
    frame = load_exchanges(odd_store)
    assert batches == [100] * 10  # read by connectorx, across batch boundaries
    _same(frame, _via_sqlite3(odd_store, monkeypatch))


def test_columns_a_former_schema_lacks_read_as_missing(odd_store, monkeypatch):
    conn = sqlite3.connect(odd_store)
    with conn:
        for column in ("server", "etag_count", "third_party"):  # text, integer, boolean
            conn.execute(f"ALTER TABLE exchanges DROP COLUMN {column}")
    conn.close()
    batches = _batches_read(monkeypatch)
    frame = load_exchanges(odd_store)
    assert batches
    assert frame["server"].isna().all() and frame["etag_count"].isna().all()
    assert str(frame["etag_count"].dtype) == "Int64" and str(frame["third_party"].dtype) == "boolean"
    _same(frame, _via_sqlite3(odd_store, monkeypatch))


def test_a_value_connectorx_refuses_is_read_through_sqlite3_without_noise(
        odd_store, monkeypatch, capfd):
    """A blob in a text column makes connectorx panic in Rust (its hook prints the panic and,
    under RUST_BACKTRACE, a backtrace on fd 2): the frame comes from sqlite3, stderr stays
    clean."""
    conn = sqlite3.connect(odd_store)
    with conn:
        conn.execute("UPDATE exchanges SET content_type = X'00ff' WHERE id = 550")
    conn.close()
    monkeypatch.setenv("RUST_BACKTRACE", "1")
    batches = _batches_read(monkeypatch)
    frame = load_exchanges(odd_store)
    assert len(batches) == 5  # refused in the sixth batch
    assert frame["content_type"][549] == b"\x00\xff"
    assert capfd.readouterr().err == ""
    _same(frame, _via_sqlite3(odd_store, monkeypatch))


def test_a_value_no_number_is_one_error_naming_the_exchange(odd_store):
    conn = sqlite3.connect(odd_store)
    with conn:
        conn.execute("UPDATE exchanges SET body_size = 'abc' WHERE id = 950")
    conn.close()
    with pytest.raises(StoreError, match=r"s\.sqlite: exchange id 950: column body_size holds "
                                         r"a value that is not a whole number"):
        load_exchanges(odd_store)
