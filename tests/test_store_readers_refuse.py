"""Every reader of a store refuses what it could misread, with the line ``Store`` gives on open:
a store of a newer schema (analyze and report read it silently and exited 0 before) and a file
that is not a store. Nothing is written to the file on the way."""

from __future__ import annotations

import hashlib
from pathlib import Path

import exchange_factory as xf
import pytest

from analysis.cli import main
from analysis.store import SCHEMA_VERSION, StoreError, connect, load_exchanges

NEWER = f"schema version {SCHEMA_VERSION + 1} is newer than this etagwatch ({SCHEMA_VERSION}); upgrade etagwatch"


@pytest.fixture
def newer(tmp_path: Path) -> Path:
    path = xf.store(tmp_path / "newer.sqlite", xf.tracker(2))
    conn = connect(path)
    conn.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.commit()
    conn.close()
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_load_exchanges_refuses_a_newer_store_without_touching_it(newer):
    before = _digest(newer)
    with pytest.raises(StoreError) as info:
        load_exchanges(newer)
    assert str(info.value) == f"{newer}: {NEWER}"
    assert _digest(newer) == before


@pytest.mark.parametrize("command", [
    ["analyze", "{db}"],
    ["analyze", "{db}", "--json", "-"],
    ["report", "{db}", "-o", "{tmp}/r.html"],
    ["ingest", "{har}", "--db", "{db}"],
])
def test_every_command_refuses_a_newer_store_in_one_line(newer, tmp_path, capsys, command):
    from har_builder import Har

    har = Har()
    har.get("https://a.test/x", at=1_700_000_000, etag='"a"')
    har_path = har.write(tmp_path / "c.har")
    argv = [a.format(db=newer, tmp=tmp_path, har=har_path) for a in command]
    assert main(argv) == 2
    out = capsys.readouterr()
    assert out.err == f"etagwatch: error: {newer}: {NEWER}\n"
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("content", [b"this is not sqlite at all" * 40, b""])
def test_report_calls_a_non_store_what_analyze_calls_it(tmp_path, capsys, content):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(content)
    lines = []
    for argv in (["analyze", str(junk)], ["report", str(junk), "-o", str(tmp_path / "r.html")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "not an etagwatch store" in err, err
        lines.append(err)
    assert lines[0] == lines[1]


def test_an_older_store_without_later_columns_still_reads(tmp_path):
    path = xf.store(tmp_path / "old.sqlite", xf.tracker(2))
    conn = connect(path)
    conn.execute("ALTER TABLE exchanges DROP COLUMN cache_kind")
    conn.commit()
    conn.close()
    frame = load_exchanges(path)
    assert len(frame) > 0 and frame["cache_kind"].isna().all()
