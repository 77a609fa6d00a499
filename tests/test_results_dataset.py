"""The result dataset (analyze --parquet DIR) holds the analysis exactly: the JSON streamed from
it is byte for byte analyze's own JSON, and a folder holding something else is refused."""

from __future__ import annotations

import io
from pathlib import Path

from support import ingest_into

from analysis.cli import main
from analysis.engine.results import read_manifest, stream_json

ROOT = Path(__file__).resolve().parent.parent


def test_streamed_json_is_analyzes_json_byte_for_byte(tmp_path):
    store = tmp_path / "s.sqlite"
    ingest_into(store, [ROOT / "sample_captures"])
    assert main(["analyze", str(store), "--json", str(tmp_path / "a.json"), "--parquet",
                 str(tmp_path / "r"), "-q"]) == 0
    out = io.BytesIO()
    stream_json(str(tmp_path / "r"), out)
    assert out.getvalue() == (tmp_path / "a.json").read_bytes()
    # written again over itself: replaced, the old parts gone
    before = read_manifest(str(tmp_path / "r")).files["resources"]
    assert main(["analyze", str(store), "--parquet", str(tmp_path / "r"), "-q"]) == 0
    after = read_manifest(str(tmp_path / "r")).files["resources"]
    assert before != after and not (tmp_path / "r" / before[0]).exists()
    assert (tmp_path / "r" / after[0]).exists()


def test_a_folder_of_other_files_is_refused(tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    ingest_into(store, [ROOT / "sample_captures"])
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert main(["analyze", str(store), "--parquet", str(tmp_path / "other"), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds other files" in err[0]
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
