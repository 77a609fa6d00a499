"""Datasets and result datasets at s3:// URLs, against a real S3-compatible server (moto's
server mode) that the test starts on 127.0.0.1: export, ingest --dataset and analyze (both
engines, the Dask one on a real LocalCluster whose workers read the dataset from the server)
give what the same commands give on local folders."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from support import ingest_into

from analysis.cli import main

moto_server = pytest.importorskip("moto.server")
s3fs = pytest.importorskip("s3fs")
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on loopback, the AWS variables pointing at it (inherited by Dask
    workers, which start later), one bucket."""
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    patch = pytest.MonkeyPatch()
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                        "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}.items():
        patch.setenv(name, value)
    for name in ("AWS_PROFILE", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        patch.delenv(name, raising=False)
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir("etagwatch-test")
    yield fs
    patch.undo()
    server.stop()


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _rows(report: dict) -> tuple:
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    return (report["summary"], report["hosts"], sorted(map(key, report["resources"])),
            sorted(map(key, report["findings"])))


@pytest.mark.timeout(300)
def test_export_ingest_and_analyze_on_s3(s3, tmp_path):
    from test_dataset_outcomes import probe

    store = tmp_path / "s.sqlite"
    ingest_into(store, [ROOT / "sample_captures"])
    probe(store)  # its probe outcomes go along: the remote analyses settle alike
    url = "s3://etagwatch-test/ds"
    assert main(["export", str(store), "--parquet", url, "-q"]) == 0
    listed = s3.find("etagwatch-test/ds")
    assert "etagwatch-test/ds/_etagwatch.json" in listed
    assert any(p.endswith(".parquet") for p in listed)
    assert any("/probe_outcomes/" in p for p in listed)

    local, remote = tmp_path / "local.json", tmp_path / "remote.json"
    assert main(["analyze", str(store), "--json", str(local), "-q"]) == 0
    assert main(["analyze", url, "--json", str(remote), "-q"]) == 0
    assert _rows(_json(remote)) == _rows(_json(local))
    assert sum(_json(local)["summary"]["settled"].values()) == 2
    # worker processes: the dataset cut into group files from the server
    split = tmp_path / "split.json"
    assert main(["analyze", url, "--jobs", "2", "--json", str(split), "-q"]) == 0
    assert split.read_bytes() == remote.read_bytes()

    # appending: the same store again, and the same captures through ingest --dataset, add
    # nothing; a new capture adds its rows
    before = _json(remote)["summary"]["exchanges"]
    assert main(["export", str(store), "--parquet", url, "-q"]) == 0
    assert main(["ingest", str(ROOT / "sample_captures"), "--dataset", url, "-q"]) in (0, 1)
    again = tmp_path / "again.json"
    assert main(["analyze", url, "--json", str(again), "-q"]) == 0
    assert _json(again)["summary"]["exchanges"] == before

    # the Dask engine: workers read the dataset from the server, results written back to it
    results = "s3://etagwatch-test/results"
    many = tmp_path / "many.json"
    assert main(["analyze", url, "--engine", "dask", "--json", str(many), "--parquet", results,
                 "-q"]) == 0
    assert _rows(_json(many)) == _rows(_json(local))
    assert s3.exists("etagwatch-test/results/_etagwatch_results.json")
    from analysis.engine.results import read_manifest, read_table

    assert read_manifest(results).summary == _json(local)["summary"]
    assert len(read_table(results, "resources")) == len(_json(local)["resources"])


def test_a_url_without_a_dataset_is_one_line(s3, capsys):
    assert main(["analyze", "s3://etagwatch-test/nothing-here", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "s3://etagwatch-test/nothing-here" in err[0]
