"""End to end: a bad etagwatch option stops a real mitmdump at startup with one clear line and
exit status 1, as mitmproxy does for its own bad options; while mitmweb runs, a bad value set
through its options API is refused with the reason and the old value stays."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from support import free_port

from analysis.lab.mitm import ADDON, MitmWeb, mitmdump_path

pytestmark = pytest.mark.e2e


def run_mitmdump(tmp_path: Path, *sets: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """mitmdump with the addon and these ``--set`` values, until it exits (or ``timeout``)."""
    cmd = [mitmdump_path(), "--listen-host", "127.0.0.1", "--listen-port", str(free_port("127.0.0.1")),
           "--set", f"confdir={tmp_path / 'conf'}", "-s", str(ADDON)]
    for value in sets:
        cmd += ["--set", value]
    try:
        return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"mitmdump kept running with {sets}: {exc.stdout!r}") from None


def bad_cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    notes = tmp_path / "notes.sqlite"
    notes.write_text("these are notes, not a database\n" * 100)
    missing = tmp_path / "no-such-folder" / "x.sqlite"
    return [
        (["etagwatch_annotate=maybe"], 'etagwatch: --set etagwatch_annotate=maybe: Boolean must be "true", "false"'),
        (["etagwatch_replay_stateful=yes"], "etagwatch: --set etagwatch_replay_stateful=yes: Boolean must be"),
        ([f"etagwatch_db={missing}"],
         f"etagwatch: etagwatch_db={missing}: folder {missing.parent} does not exist; nothing is recorded"),
        ([f"etagwatch_db={tmp_path}"], f"etagwatch: etagwatch_db={tmp_path}: is a folder, not a store file"),
        ([f"etagwatch_db={notes}"],
         f"etagwatch: etagwatch_db={notes}: not an etagwatch store (file is not a database); nothing is recorded"),
        (["etagwatch_client="], "etagwatch: etagwatch_client is empty"),
        ([f"etagwatch_replay={tmp_path / 'gone.har'}"],
         f"etagwatch: etagwatch_replay: {tmp_path / 'gone.har'}: cannot read replay source (No such file or directory)"),
        (["etagwatch_backend_headers=x-backend:"], "etagwatch: etagwatch_backend_headers: 'x-backend:' is not a header name"),
        (["etagwatch_secret_headers=two words"], "etagwatch: etagwatch_secret_headers: 'two words' is not a header name part"),
    ]


def test_every_bad_option_stops_mitmdump_with_one_line(tmp_path: Path) -> None:
    for sets, line in bad_cases(tmp_path):
        store = [] if sets[0].startswith("etagwatch_db=") else [f"etagwatch_db={tmp_path / 'ok.sqlite'}"]
        done = run_mitmdump(tmp_path, *store, *sets)
        out = done.stdout + done.stderr
        assert done.returncode == 1, (sets, out)
        assert "Error logged during startup, exiting..." in done.stderr, (sets, out)
        shown = [text for text in done.stdout.splitlines() if "etagwatch:" in text and "recording" not in text]
        assert len(shown) == 1 and line in shown[0], (sets, out)  # one line, the path once
        assert "Traceback" not in out, (sets, out)
        value = sets[0].split("=", 1)[1]
        if len(value) > 8:
            assert out.count(value) == 1, (sets, out)


def test_good_options_start_and_record(tmp_path: Path) -> None:
    """The control: the same run with valid values keeps serving (so the runs above stopped
    because of their one bad value)."""
    cmd_sets = [f"etagwatch_db={tmp_path / 'ok.sqlite'}", "etagwatch_annotate=false", "etagwatch_client=alice"]
    with pytest.raises(AssertionError, match="kept running"):
        run_mitmdump(tmp_path, *cmd_sets, timeout=6)
    assert (tmp_path / "ok.sqlite").exists()


def test_mitmweb_refuses_a_bad_store_while_running_and_keeps_recording(tmp_path: Path) -> None:
    db = tmp_path / "first.sqlite"
    with MitmWeb(scripts=(ADDON,), db=db) as web, httpx.Client(base_url=web.web_url, trust_env=False, timeout=10) as ui:
        ui.get("/")  # sets the _xsrf cookie mitmweb checks on writes
        token = {"X-XSRFToken": ui.cookies["_xsrf"]}
        refused = ui.put("/options", json={"etagwatch_db": str(tmp_path / "missing" / "x.sqlite")}, headers=token)
        bad_bool = ui.put("/options", json={"etagwatch_client": ""}, headers=token)
        kept = ui.get("/options").json()
    assert refused.status_code == 400
    assert f"folder {tmp_path / 'missing'} does not exist" in refused.text
    assert bad_bool.status_code == 400 and "etagwatch_client is empty" in bad_bool.text
    assert kept["etagwatch_db"]["value"] == str(db) and kept["etagwatch_client"]["value"] == "address"
