"""The conventions every command shares: -q / -v, '-' for stdout, progress bars only on a
terminal, warnings and errors on stderr, a closed pipe ends quietly, SIGTERM unwinds, and
ingest's accounting (files read and failed, entries that are no HTTP exchange)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import exchange_factory as xf
import pytest
from har_builder import Har
from test_readers_har import make_entry, make_har, write_har

from analysis.cli import build_parser, main
from analysis.commands import COMMANDS

ETAGWATCH = [sys.executable, "-m", "analysis"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_quiet_and_verbose(command, capsys):
    sub = build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    options = {s for a in sub._actions for s in a.option_strings}
    assert {"-q", "--quiet", "-v", "--verbose"} <= options


def _big_store(tmp_path: Path) -> Path:
    har = Har()
    for i in range(3000):
        har.get(f"https://h{i % 40}.test/r{i}.js", at=1_700_000_000 + i, etag=f'"e{i}"', body="x")
    db = tmp_path / "big.sqlite"
    assert main(["ingest", str(har.write(tmp_path / "big.har")), "--db", str(db), "-q"]) == 0
    return db


def test_a_closed_pipe_ends_quietly(tmp_path):
    db = _big_store(tmp_path)
    proc = subprocess.Popen([*ETAGWATCH, "analyze", str(db), "--json", "-"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # like `| head`, which is gone before the report is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path):
    har = Har()
    for i in range(200):
        har.get(f"https://a.test/{i}", at=1_700_000_000 + i, etag=f'"e{i}"')
    folder = tmp_path / "caps"
    for n in range(3):  # a folder of several files used to force a bar into the log
        har.write(folder / f"c{n}.har")
    for argv in (["ingest", str(folder), "--db", str(tmp_path / "a.sqlite")],
                 ["analyze", str(folder), "--db", str(tmp_path / "b.sqlite")]):
        run = subprocess.run([*ETAGWATCH, *argv], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert "\r" not in run.stderr and "it/s" not in run.stderr, run.stderr


def test_ingest_counts_files_read_and_failed_and_data_urls_are_no_error(tmp_path, capsys):
    good = write_har(tmp_path / "good.har", make_har([make_entry("data:,x"), make_entry()]))
    for n in range(3):
        (tmp_path / f"junk{n}.har").write_text("not json")
    db = str(tmp_path / "s.sqlite")
    assert main(["ingest", str(good), "--db", str(tmp_path / "only.sqlite")]) == 0  # data: URL
    capsys.readouterr()
    assert main(["ingest", str(tmp_path), "--db", db]) == 1
    out, err = capsys.readouterr()
    assert "files:     4 (1 read, 3 unreadable)" in out
    assert err.count("etagwatch: warning: ") == 3 and "junk0.har" in err
    assert main(["analyze", str(tmp_path), "--db", str(tmp_path / "t.sqlite")]) == 0
    assert "stored 1 exchanges from 1 of 4 file(s) read, 3 unreadable" in capsys.readouterr().err


def test_already_ingested_says_how_many_and_never_same_bytes_as_itself(tmp_path, capsys):
    for n in range(7):
        write_har(tmp_path / f"c{n}.har", make_har([make_entry(f"https://a.test/{n}")]))
    db = str(tmp_path / "s.sqlite")
    main(["ingest", str(tmp_path), "--db", db])
    capsys.readouterr()
    assert main(["ingest", str(tmp_path), "--db", db]) == 0
    err = capsys.readouterr().err
    assert err.count("already ingested (stored before; --force reads it again)") == 5
    assert "2 more files already ingested (-v lists them)" in err
    assert "same bytes as" not in err
    main(["ingest", str(tmp_path), "--db", db, "-v"])
    assert capsys.readouterr().err.count("already ingested (stored before") == 7


def test_a_folder_without_captures_says_so(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    for argv in (["ingest", str(tmp_path), "--db", str(tmp_path / "s.sqlite")],
                 ["analyze", str(tmp_path), "--db", str(tmp_path / "s.sqlite")],
                 ["report", str(tmp_path), "-o", str(tmp_path / "r.html")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"etagwatch: error: no capture found in {tmp_path}: looked for "
                              "files ending in .har, .har.gz"), err


def test_report_and_analyze_refuse_unreadable_captures_alike(tmp_path, capsys):
    junk = tmp_path / "junk.har"
    junk.write_text("not json at all")
    lines = []
    for argv in (["analyze", str(junk), "--db", str(tmp_path / "a.sqlite")],
                 ["report", str(junk), "-o", str(tmp_path / "r.html")]):
        assert main(argv) == 2
        lines.append(capsys.readouterr().err)
    assert lines[0] == lines[1]
    assert lines[0].endswith("etagwatch: error: no readable capture among the inputs\n")
    assert not (tmp_path / "r.html").exists()


def test_truncated_har_gz_keeps_the_entries_before_the_cut(tmp_path):
    data = json.dumps(make_har([make_entry(f"https://a.test/{i}", text="x" * 200)
                                for i in range(200)])).encode()
    packed = gzip.compress(data)
    for name, content in (("cut.har.gz", packed[: len(packed) * 2 // 3]),
                          ("cut.har", data[: len(data) * 2 // 3])):
        path = tmp_path / name
        path.write_bytes(content)
        db = tmp_path / f"{name}.sqlite"
        assert main(["ingest", str(path), "--db", str(db), "-q"]) == 1
        from analysis.store import load_exchanges

        assert len(load_exchanges(db)) > 90, name


@pytest.mark.parametrize("doc", [{"log": {"entries": {"a": 1}}}, [1, 2], {"log": {}}])
def test_malformed_shapes_are_one_error_each(tmp_path, capsys, doc):
    path = tmp_path / "odd.har"
    path.write_text(json.dumps(doc))
    assert main(["ingest", str(path), "--db", str(tmp_path / "s.sqlite")]) == 1
    err = capsys.readouterr().err
    assert f"etagwatch: warning: {path}: not a HAR file: " in err


@pytest.mark.timeout(180)
def test_report_to_stdout(tmp_path):
    db = xf.store(tmp_path / "s.sqlite", xf.tracker(2))
    run = subprocess.run([*ETAGWATCH, "report", str(db), "-o", "-", "-q"], capture_output=True,
                         timeout=170, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.lstrip().startswith(b"<!DOCTYPE html") and b"</html>" in run.stdout
    assert not (tmp_path / "-").exists()
