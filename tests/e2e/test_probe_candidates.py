"""`etagwatch probe --candidates STORE` against real origins on loopback: a single-client
capture of the lab's tracker and echo tracker and of a benign origin leaves them open
(likely-identifier / undetermined); the probe settles them in the store, and `analyze` then
shows identifier for the trackers and stable for the benign one, with what settled each.

Each origin listens on its own loopback address (127.0.0.1..4), so the per-host rate limit
and the failing server can be seen apart."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from origins.stable_token_origin import BODY, COOKIE_SECRET, ETAG, StableTokenOrigin
from support import need_program

from analysis.cli import main
from analysis.lab.lab import Lab
from analysis.lab.origins.echo_tracker import EchoTrackerOrigin
from analysis.lab.origins.tracker import TrackerOrigin
from analysis.probe.candidates.experiment import Trial, run_trial
from analysis.probe.candidates.outcome import decide
from analysis.probe.context import ProbeContext, ProbeOptions
from analysis.probe.to_exchange import to_exchange
from analysis.store import Store, load_probe_outcomes

pytestmark = pytest.mark.e2e

RATE = 20.0  # requests per second per host in these tests (the default is polite: 2)
OPEN = ("likely-identifier", "undetermined")


def capture(db: Path, urls: list[str], *, redact: bool = False,
            options: ProbeOptions | None = None) -> None:
    """One client fetches each URL and revalidates it twice with the ETag it got: what a
    single browser profile records (``redact``: validators stored as keyed hashes)."""
    with Store(db) as store:
        for url in urls:
            ctx = ProbeContext(url, options or ProbeOptions(), store.key)
            try:
                first = ctx.send("profile-1")
                for _ in range(2):
                    ctx.send("profile-1", headers={"If-None-Match": first.etag or ""})
            finally:
                ctx.close()
            store.insert(to_exchange(s.response, url=url, client="profile-1", key=store.key,
                                     entry_index=s.entry_index, redact_validators=redact)
                         for s in ctx.sent)


def analyze(db: Path, tmp_path: Path, capsys) -> tuple[dict, str]:  # type: ignore[no-untyped-def]
    out = tmp_path / "analyze.json"
    assert main(["analyze", str(db), "--json", str(out)]) == 0
    return json.loads(out.read_text()), capsys.readouterr().out


def stored_bytes(db: Path) -> bytes:
    """The store file and its write-ahead log, if any."""
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


def by_url(report: dict) -> dict[str, dict]:
    return {r["url"]: r for r in report["resources"]}


@pytest.fixture(scope="module")
def origins() -> Iterator[dict[str, str]]:
    with (TrackerOrigin(host="127.0.0.1") as tracker, EchoTrackerOrigin(host="127.0.0.2") as echo,
          StableTokenOrigin(host="127.0.0.3") as stable):
        yield {"tracker": tracker.url + "/pixel.gif", "echo": echo.url + "/e.gif",
               "stable": stable.url + "/data.json"}


@pytest.fixture
def store(origins: dict[str, str], tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A single-client capture of the three origins, and of a fourth server that is gone by
    the time the probe runs (a failing host)."""
    db = tmp_path / "capture.sqlite"
    with StableTokenOrigin(host="127.0.0.4") as gone:
        urls = {**origins, "gone": gone.url + "/data.json"}
        capture(db, list(urls.values()))
    return db, urls


def test_probe_settles_a_single_client_capture(store, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    db, urls = store
    before, _ = analyze(db, tmp_path, capsys)
    rows = by_url(before)
    for name in ("tracker", "echo", "stable", "gone"):
        assert rows[urls[name]]["verdict"] in OPEN, (name, rows[urls[name]]["verdict"])
        assert rows[urls[name]]["settled"] is None

    out = tmp_path / "probe.json"
    status = main(["probe", "--candidates", str(db), "--rate", str(RATE), "--concurrency", "3",
                   "--json", str(out)])
    text, err = capsys.readouterr()
    assert status == 1, err  # identifiers were confirmed
    assert "Traceback" not in err
    warnings = [line for line in err.splitlines() if line.startswith("etagwatch: warning:")]
    assert len(warnings) == 1 and "connection refused" in warnings[0], err
    run = json.loads(out.read_text())
    assert run["candidates"] == 4 and run["probed"] == 4
    assert run["outcomes"] == {"confirms": 2, "clears": 1, "inconclusive": 0, "error": 1,
                               "skipped": 0}
    gone = urls["gone"].split("/")[2]
    assert list(run["failed_hosts"]) == [gone]
    assert "connection refused" in run["failed_hosts"][gone]
    probed = {r["url"]: r for r in run["resources"]}
    assert probed[urls["tracker"]]["rule"] == "probe-per-client"
    assert probed[urls["echo"]]["rule"] == "probe-echo"
    assert probed[urls["stable"]]["rule"] == "probe-shared"
    assert probed[urls["gone"]]["outcome"] == "error"
    # three fresh clients x (a fetch and two revalidations), and the forged tag
    assert [len(probed[urls[n]]["requests"]) for n in ("tracker", "echo", "stable")] == [10] * 3
    assert run["requests"] == 30
    assert "confirms     likely-identifier -> identifier" in text or \
        "confirms     undetermined -> identifier" in text

    # the rate limit: requests to one host start 1 / RATE apart (less scheduling jitter; three
    # threads on one host without a limit start within milliseconds of each other)
    starts: dict[str, list[float]] = defaultdict(list)
    for r in run["resources"]:
        for q in r["requests"]:
            starts[r["host"]].append(datetime.fromisoformat(q["at"]).timestamp())
    for host, times in starts.items():
        times.sort()
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 0.7 / RATE, (host, min(gaps))

    after, report = analyze(db, tmp_path, capsys)
    rows = by_url(after)
    tracker, echo, stable = rows[urls["tracker"]], rows[urls["echo"]], rows[urls["stable"]]
    assert (tracker["verdict"], tracker["settled"], tracker["evidence"]["kind"]) == (
        "identifier", "confirmed", "probe-per-client")
    assert (echo["verdict"], echo["settled"], echo["evidence"]["kind"]) == (
        "identifier", "confirmed", "probe-echo")
    assert (stable["verdict"], stable["settled"], stable["evidence"]["kind"]) == (
        "stable", "cleared", "probe-shared")
    assert rows[urls["gone"]]["verdict"] in OPEN and rows[urls["gone"]]["settled"] == "error"
    # every settled verdict carries what was sent, what came back and when
    fresh = [q for q in tracker["evidence"]["probe"]["requests"] if q["client"] == "fresh-1"]
    assert [q["status"] for q in fresh] == [200, 304, 304]
    assert fresh[1]["sent"]["if_none_match"] == fresh[0]["etag"]
    forged = echo["evidence"]["probe"]["requests"][-1]
    assert forged["client"] == "forged" and forged["status"] == 304
    assert forged["etag"] == forged["sent"]["if_none_match"] == echo["evidence"]["probe"]["forged_tag"]
    assert {q["etag"] for q in stable["evidence"]["probe"]["requests"]} == {f'"{ETAG}"'}
    assert after["summary"]["settled"]["confirmed"] == 2
    assert after["summary"]["settled"]["cleared"] == 1
    assert after["summary"]["verdicts"]["identifier"] == 2
    assert "== Cleared by probe: stable, not identifiers (1)" in report
    assert "confirms (probe-echo)" in report and "confirms (probe-per-client)" in report

    # nothing secret in the store: no cookie value, no body
    data = stored_bytes(db)
    assert COOKIE_SECRET.encode() not in data
    assert BODY[200:260] not in data


def test_a_second_run_continues_and_again_reprobes(store, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    db, urls = store
    argv = ["probe", "--candidates", str(db), "--rate", str(RATE), "-q", "--json", "-"]
    main(argv)
    capsys.readouterr()
    main(argv)  # the settled three are left alone; the failed server is tried again
    second = json.loads(capsys.readouterr().out)
    assert second["already_settled"] == 3 and second["probed"] == 1
    assert second["resources"][0]["url"] == urls["gone"]
    main([*argv, "--again"])
    third = json.loads(capsys.readouterr().out)
    assert third["already_settled"] == 0 and third["probed"] == 4


def test_a_store_of_redacted_validators_gets_redacted_evidence(origins, tmp_path: Path,
                                                               capsys) -> None:  # type: ignore[no-untyped-def]
    """A store whose validators are keyed hashes (made to be shared) keeps the probe's as
    keyed hashes too: the stable origin's value is nowhere in clear, and it is still cleared."""
    db = tmp_path / "redacted.sqlite"
    capture(db, [origins["stable"]], redact=True)
    assert ETAG.encode() not in stored_bytes(db)
    assert main(["probe", "--candidates", str(db), "--rate", str(RATE), "-q"]) == 0
    report, _ = analyze(db, tmp_path, capsys)
    row = by_url(report)[origins["stable"]]
    assert (row["verdict"], row["settled"]) == ("stable", "cleared")
    etags = {q["etag"] for q in row["evidence"]["probe"]["requests"]}
    assert len(etags) == 1 and next(iter(etags)).startswith("hmac:")
    assert ETAG not in json.dumps(report)
    assert ETAG.encode() not in stored_bytes(db)


def test_a_url_whose_query_was_hashed_is_skipped_not_guessed(origins, tmp_path: Path,
                                                             capsys) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "query.sqlite"
    capture(db, [origins["stable"] + "?user=alice"])
    main(["probe", "--candidates", str(db), "--rate", str(RATE), "-q", "--json", "-"])
    run = json.loads(capsys.readouterr().out)
    (only,) = run["resources"]
    assert only["outcome"] == "skipped" and only["requests"] == []
    assert "--keep-query" in only["reason"] and "alice" not in only["url"]


def test_an_interrupted_run_keeps_what_it_finished_and_the_next_continues(
        store, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Ctrl-C in the middle: exit 130 within a second or two, every finished outcome stored,
    and the next run probes only what is left."""
    db, _ = store
    proc = subprocess.Popen(
        [sys.executable, "-m", "analysis", "probe", "--candidates", str(db), "--rate", "4",
         "--concurrency", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while load_probe_outcomes(db).empty:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        stopped = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert time.monotonic() - stopped < 5
    assert b"Traceback" not in err
    kept = load_probe_outcomes(db)
    assert 1 <= len(kept) < 4
    main(["probe", "--candidates", str(db), "--rate", str(RATE), "-q", "--json", "-"])
    rest = json.loads(capsys.readouterr().out)
    settled = kept["outcome"].isin(("confirms", "clears")).sum()
    assert rest["already_settled"] == settled and rest["probed"] == 4 - settled


#: lab site -> (outcome, settles): what the settling rule says of each real server
LAB_RULE = {
    "tracker": ("confirms", "identifier"),
    "echo": ("confirms", "identifier"),
    "nginx": ("clears", "stable"),
    "digest": ("clears", "stable"),
    "random": ("clears", "unstable"),
    # haproxy round robin over two Apache httpd / two nginx: never accused, never acquitted
    "inode": ("inconclusive", None),
    "mtime": ("inconclusive", None),
}


def test_the_rule_on_every_lab_server() -> None:
    """Precision against real load balancers: the trial and the rule of `probe --candidates`
    run on every lab site (whatever a capture said of it)."""
    need_program("nginx", "apache2", "haproxy")
    with Lab() as lab:
        assert set(lab.sites) == set(LAB_RULE)
        for key, site in lab.sites.items():
            trial = run_trial(Trial(site.loopback_url, 3), ProbeOptions(), lambda host: None)
            got = decide(trial)
            assert (got.outcome, got.settles) == LAB_RULE[key], (key, got.reason)


def _stderr_of(argv: list[str], *, terminal: bool) -> bytes:
    """What the command writes to stderr, with stderr a terminal (a pty) or a pipe."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    if not terminal:
        return subprocess.run(argv, capture_output=True, timeout=120).stderr
    primary, secondary = pty.openpty()
    # a terminal 100 columns wide (a fresh pty has no size, and tqdm draws nothing in 0)
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=secondary)
    os.close(secondary)
    seen = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=120)
    os.close(primary)
    return seen


def test_a_progress_bar_on_a_terminal_only(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db, _ = store
    argv = [sys.executable, "-m", "analysis", "probe", "--candidates", str(db), "--rate",
            str(RATE)]
    shown = _stderr_of([*argv, "--again"], terminal=True)
    assert b"probing" in shown and b"/4 [" in shown, shown  # 4 resources to probe
    logged = _stderr_of([*argv, "--again"], terminal=False)
    assert b"probing" not in logged and b"\r" not in logged, logged
    assert logged.decode().count("etagwatch: warning:") == 1  # the gone server, one line


def test_probe_settles_over_https_with_the_lab_ca(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """The same over TLS: a single-client HTTPS capture of the lab's trackers (behind its
    nginx TLS front) is settled by `probe --candidates --cacert <lab CA>`; without the CA
    every resource fails with one line naming the certificate problem, and nothing is settled."""
    need_program("nginx", "apache2", "haproxy")
    db = tmp_path / "https.sqlite"
    with Lab() as lab:
        assert lab.ca is not None
        ca = str(lab.ca.cert_path)
        urls = {k: f"https://127.0.0.1:{lab.sites[k].tls_port}{lab.sites[k].path}"
                for k in ("tracker", "echo")}
        capture(db, list(urls.values()), options=ProbeOptions(ca_file=ca))
        argv = ["probe", "--candidates", str(db), "--rate", str(RATE), "-q", "--json", "-"]
        assert main(argv) == 0
        untrusted = json.loads(capsys.readouterr().out)
        assert untrusted["outcomes"]["error"] == 2
        assert all("certificate" in r["reason"] for r in untrusted["resources"])
        assert main([*argv, "--cacert", ca]) == 1
        run = json.loads(capsys.readouterr().out)
    assert {r["url"]: r["rule"] for r in run["resources"]} == {
        urls["tracker"]: "probe-per-client", urls["echo"]: "probe-echo"}
    report, _ = analyze(db, tmp_path, capsys)
    rows = by_url(report)
    assert {rows[u]["verdict"] for u in urls.values()} == {"identifier"}
    assert {rows[u]["settled"] for u in urls.values()} == {"confirmed"}
