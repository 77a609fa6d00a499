"""`etagwatch ingest`: exit statuses, the summary, client ids, re-ingest detection."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from test_readers_har import make_entry, make_har, write_har

from analysis.cli import main
from analysis.store import Store, load_exchanges


@pytest.fixture
def captures(tmp_path):
    d = tmp_path / "caps"
    (d / "profile-a").mkdir(parents=True)
    write_har(d / "profile-a" / "one.har", make_har([make_entry("https://a.test/1"),
                                                    make_entry("https://b.test/2")]))
    write_har(d / "two.har.gz", make_har([make_entry("https://a.test/1")]))
    (d / "notes.txt").write_text("ignored: not a capture name")
    return d


def test_clean_run_exits_0_with_summary(captures, tmp_path, capsys):
    db = tmp_path / "s.sqlite"
    assert main(["ingest", str(captures), "--db", str(db), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "files:     2" in out and "stored:    3 exchanges" in out
    assert "clients:   2" in out and "hosts:     2" in out
    df = load_exchanges(db)
    assert sorted(df.client.unique()) == ["profile-a/one.har", "two.har.gz"]


def test_skips_exit_1_and_are_listed_by_reason(tmp_path, capsys):
    har = write_har(tmp_path / "x.har", make_har([make_entry("data:,x"), make_entry()]))
    broken = tmp_path / "broken.har"
    broken.write_text('{"log": {"entries": [')
    db = tmp_path / "s.sqlite"
    status = main(["ingest", str(har), str(broken), "--db", str(db), "--client", "me"])
    out, err = capsys.readouterr()
    assert status == 1  # the broken file; the data: URL is no problem
    assert "files:     2 (1 read, 1 unreadable)" in out
    assert "not HTTP:  1 entries" in out and "skipped:   0 entries" in out
    assert f"etagwatch: warning: {broken}: not valid JSON: file ends inside" in err
    assert "not valid JSON" not in out  # errors and warnings go to stderr
    with Store(db) as store:
        assert set(load_exchanges(store).client) == {"me"}
        skipped = store.table("skipped")
        assert skipped.entry_index.tolist() == [0] and skipped.file.tolist() == [str(har)]


def test_missing_path_is_a_usage_error(tmp_path, capsys):
    assert main(["ingest", str(tmp_path / "nope.har"), "--db", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("etagwatch: error: no such file or folder") and err.count("\n") == 1
    assert not (tmp_path / "s").exists()


def test_reingest_is_detected_and_force_reads_again(captures, tmp_path, capsys):
    db = str(tmp_path / "s.sqlite")
    main(["ingest", str(captures), "--db", db])
    capsys.readouterr()
    assert main(["ingest", str(captures), "--db", db]) == 0
    out = capsys.readouterr().out
    assert "(0 read, 2 already ingested)" in out and "stored:    0 exchanges" in out
    main(["ingest", str(captures), "--db", db, "--force"])
    assert len(load_exchanges(db)) == 6


def test_console_script_runs(tmp_path, captures):
    exe = shutil.which("etagwatch", path=str(sys.prefix) + "/bin")
    assert exe, "the etagwatch console script is not in the venv (make installs it with pip -e)"
    db = tmp_path / "s.sqlite"
    proc = subprocess.run([exe, "ingest", str(captures), "--db", str(db)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "stored:    3 exchanges" in proc.stdout


def test_backend_header_option(tmp_path):
    har = write_har(tmp_path / "b.har", make_har([make_entry(
        resp_headers=[("X-Pod", "pod-7"), ("Server", "nginx"), ("X-Backend-Id", "b2")])]))
    db = tmp_path / "s.sqlite"
    main(["ingest", str(har), "--db", str(db), "--backend-header", "x-pod"])
    assert json.loads(load_exchanges(db).backend.iloc[0]) == {"x-pod": "pod-7"}


def test_summary_names_where_each_skip_reason_first_happened(tmp_path) -> None:
    """A user fixing a capture needs a file and entry, not only a count."""
    from analysis.ingest import format_summary, ingest_paths
    from analysis.store import Store

    har = tmp_path / "x.har"
    entry = {
        "request": {"method": "", "url": "https://a.test/x", "headers": []},
        "response": {"status": 200, "headers": []},
    }
    ok = {
        "request": {"method": "GET", "url": "https://a.test/", "headers": []},
        "response": {"status": 200, "headers": [{"name": "ETag", "value": '"x"'}]},
    }
    har.write_text(json.dumps({"log": {"entries": [ok, entry, entry]}}))
    store = Store(tmp_path / "s.sqlite")
    try:
        report = ingest_paths([har], store)
    finally:
        store.close()
    text = format_summary(report, "s.sqlite")
    assert report.stored == 1 and len(report.skipped) == 2
    assert f"(first: {har} entry 1)" in text and "numbered from 0" in text


def test_clients_never_merge_files_that_share_a_base_name(tmp_path):
    """Class: captures given one by one that share a base name (every Polly.JS recording is
    recording.har, many exports are chrome51.har) are separate clients, in one run or many."""
    for name in ("a", "b", "c", "d"):
        (tmp_path / name).mkdir()
        write_har(tmp_path / name / "recording.har",
                  make_har([make_entry(f"https://{name}.test/x")]))
    db = tmp_path / "s.sqlite"
    together = [str(tmp_path / n / "recording.har") for n in ("a", "b")]
    assert main(["ingest", *together, "--db", str(db), "--no-progress"]) == 0
    # later runs, each given one file alone: its relative id is its base name
    for name in ("c", "d"):
        assert main(["ingest", str(tmp_path / name / "recording.har"), "--db", str(db),
                     "--no-progress"]) == 0
    clients = load_exchanges(db).groupby("host")["client"].first().to_dict()
    assert clients["a.test"] == "a/recording.har" and clients["b.test"] == "b/recording.har"
    assert clients["c.test"] == "recording.har"
    # "recording.har" is taken by c's file: d's full path keeps it apart
    assert clients["d.test"] == str((tmp_path / "d" / "recording.har").resolve())
    assert len(set(clients.values())) == 4


def test_reingesting_a_file_keeps_its_client(tmp_path):
    (tmp_path / "d").mkdir()
    har = write_har(tmp_path / "d" / "recording.har", make_har([make_entry("https://a.test/x")]))
    db = tmp_path / "s.sqlite"
    assert main(["ingest", str(har), "--db", str(db), "--no-progress"]) == 0
    assert main(["ingest", str(har), "--db", str(db), "--no-progress", "--force"]) == 0
    assert set(load_exchanges(db)["client"]) == {"recording.har"}
