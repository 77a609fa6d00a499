"""`etagwatch crawl` end to end: three fresh Chromium profiles crawl the lab's HTTPS sites (the
lab's news page and a second first party, shop.mall.test, embedding the same third parties)
through real mitmdumps, as the real command in a process of its own. All traffic stays on
loopback: --lab-route sends *.test to 127.0.0.1 and refuses everything else."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import need_program

from analysis.crawl.journal import Journal

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PROFILES = 3
VISITS = 2
#: The crawl's own clients, one per profile (etagwatch_client=crawl-N).
CLIENTS = {f"crawl-{n}" for n in range(1, PROFILES + 1)}


@pytest.fixture(scope="module")
def crawl_sites(lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """The lab's HTTPS page and a second HTTPS first party on another registrable domain
    (its certificate issued by the lab's CA), embedding the same HTTPS third parties."""
    need_program("chromium")
    from analysis.lab.origins.first_party import FirstPartyOrigin
    from analysis.lab.servers import NginxTLSFront

    sites = lab.sites
    shop = FirstPartyOrigin(embeds={k: (s.embed, s.https_url) for k, s in sites.items()},
                            respawn_url=sites["echo"].https_url + "?respawn=1",
                            host=lab.host, name="shop").start()
    try:
        files = lab.ca.issue(["shop.mall.test"], tmp_path_factory.mktemp("shop-tls"), stem="shop")
        with NginxTLSFront(f"{lab.host}:{shop.port}", tls=files, host=lab.host,
                           name="shop-tls") as front:
            listing = tmp_path_factory.mktemp("sites") / "sites.txt"
            listing.write_text(f"# two first parties\n{lab.https_page_url}\n"
                               f"https://shop.mall.test:{front.port}/\n")
            yield {"list": listing, "ca": lab.ca.cert_path, "lab": lab}
    finally:
        shop.stop()


def crawl_command(sites: dict[str, object], db: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "analysis", "crawl", str(sites["list"]), "--profiles",
            str(PROFILES), "--visits", str(VISITS), "--db", str(db), "--jobs", "2",
            "--lab-route", "--upstream-ca", str(sites["ca"]), "--ready", "window.labDone === true",
            "--settle", "0.3", "--timeout", "20", *extra]


def crawl(sites: dict[str, object], db: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(crawl_command(sites, db, *extra), cwd=ROOT, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr + done.stdout
    return done


def verdicts(db: Path) -> dict[str, dict[str, object]]:
    """analyze --json's resources by URL without query (query values are keyed per store)."""
    out = subprocess.run([sys.executable, "-m", "analysis", "analyze", str(db), "--json", "-"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    return {r["url"].split("?", 1)[0] + ("?" if "?" in r["url"] else ""): r
            for r in json.loads(out.stdout)["resources"]}


def lab_exchanges(db: Path) -> set[tuple[str, str, str, int]]:
    """(client, URL without query values, site, visit) of every exchange with a lab host.

    Favicons aside: Chromium fetches a site's favicon once per browser session, outside the
    page, and a resumed profile is a new session (the favicon is fetched again, and that is
    recorded: it is real traffic of the resumed browser)."""
    with Journal(db) as journal:
        rows = journal.exchange_visits()
    return {(c, u.split("?", 1)[0], s, v) for c, u, s, v in rows
            if u.split("/")[2].rsplit(":", 1)[0].endswith(".test")
            and not u.split("?", 1)[0].endswith("/favicon.ico")}


@pytest.fixture(scope="module")
def partitioned(crawl_sites, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("crawl") / "partitioned.sqlite"
    done = crawl(crawl_sites, db)
    assert "12 visits done, 0 failed" in done.stdout
    assert "etagwatch analyze:" in done.stdout and "verdicts: identifier" in done.stdout
    return db


def url_of(lab, key: str) -> str:
    return lab.sites[key].https_url


def assert_identifiers(found: dict[str, dict[str, object]], lab, scope: str) -> None:
    """The tracker and the echo tracker: identifier from per-client values, in ``scope``
    over both first parties."""
    for key in ("tracker", "echo"):
        resource = found[url_of(lab, key)]
        assert resource["verdict"] == "identifier", resource["explanation"]
        assert resource["scope"] == scope and resource["sites"] == 2
        assert resource["evidence"]["kind"] == "per-client"


def test_partitioned_crawl_gives_per_site_identifiers_churn_and_stable(crawl_sites, partitioned):
    lab = crawl_sites["lab"]
    found = verdicts(partitioned)
    assert_identifiers(found, lab, "per-site")
    for key in ("inode", "mtime"):
        assert found[url_of(lab, key)]["verdict"] == "churn"
    assert found[url_of(lab, "digest")]["verdict"] == "stable"
    with sqlite3.connect(partitioned) as conn:
        clients = {c for (c,) in conn.execute("SELECT DISTINCT client FROM exchanges")}
        versions = {v for (v,) in conn.execute(
            "SELECT DISTINCT http_version FROM exchanges WHERE host LIKE '%.test' AND status")}
        revalidated = conn.execute(
            "SELECT COUNT(DISTINCT client) FROM exchanges WHERE host = 'pixel.tracker.test' "
            "AND scheme = 'https' AND req_if_none_match IS NOT NULL AND status = 304").fetchone()
        outside = conn.execute(
            "SELECT COUNT(*) FROM exchanges WHERE host NOT LIKE '%.test' AND status > 0"
        ).fetchone()
    assert clients == CLIENTS  # one client id per profile
    assert versions == {"HTTP/2"}
    assert revalidated == (PROFILES,)  # If-None-Match -> 304 over HTTPS, in every profile
    assert outside == (0,)  # anything not in the lab was refused before connecting


def test_unpartitioned_cache_makes_identifiers_cross_site(crawl_sites, tmp_path):
    db = tmp_path / "unpartitioned.sqlite"
    crawl(crawl_sites, db, "--unpartitioned-cache", "--har-dir", str(tmp_path / "hars"))
    lab = crawl_sites["lab"]
    hars = sorted(p.name for p in (tmp_path / "hars").iterdir())
    assert hars == [f"{c}.har" for c in sorted(CLIENTS)]  # one HAR per profile, as well
    entries = json.loads((tmp_path / "hars" / "crawl-1.har").read_text())["log"]["entries"]
    assert {e["request"]["url"] for e in entries} >= {url_of(lab, "tracker"), lab.https_page_url}
    assert_identifiers(verdicts(db), lab, "cross-site")
    # a store holds one mode: the same store cannot be resumed as a partitioned crawl
    refused = subprocess.run(crawl_command(crawl_sites, db), cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2 and "other cache" in refused.stderr


def _done(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute(
                "SELECT COUNT(*) FROM crawl_visits WHERE state = 'done'").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def _interrupt(sites: dict[str, object], db: Path, sig: signal.Signals, after: int,
               recorder_after: int | None = None) -> None:
    """Start the crawl, send ``sig`` once ``after`` visits are done and the next is under way,
    and check nothing of it survives: no recorder, no browser. With ``recorder_after``, first
    SIGKILL the recorder of a profile in mid-visit once that many visits are done: that profile
    stops, the others go on."""
    proc = subprocess.Popen(crawl_command(sites, db), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    state = str(db) + "-crawl"
    try:
        victim = None
        if recorder_after is not None:
            _wait_done(db, recorder_after, proc)
            victim = _kill_a_busy_recorder(db, state, proc)
        _wait_done(db, after, proc)
        time.sleep(0.5)  # into the next visit
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        # the recorders' private folders (their logs): none may outlive the crawl either
        workdirs = set(re.findall(r"crawl_workdir=(\S+)", " ".join(_processes_mentioning(state))))
        assert workdirs, "no recorder running: the signal would test nothing"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        if victim is not None:
            assert f"{victim} stopped: its recorder exited" in err, err
        if sig == signal.SIGTERM:  # unwound as after Ctrl-C, saying how to go on
            assert "stopped by SIGTERM" in err and "run the same command again" in err, err
            assert proc.returncode == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 20
    while (left := _processes_mentioning(state)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"left running after {sig.name}: {left}"
    while (kept := [w for w in workdirs if Path(w).exists()]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not kept, f"recorder folders left after {sig.name}: {kept}"


def _kill_a_busy_recorder(db: Path, state: str, proc: subprocess.Popen[str]) -> str:
    """SIGKILL the recorder of a profile whose visit is under way, and name that profile. With
    --jobs 2 a given profile's recorder may not have started yet or may be done already, so
    the victim is whichever profile the journal shows mid-visit with its recorder running."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        with sqlite3.connect(db, timeout=5) as conn:
            busy = sorted(p for (p,) in conn.execute(
                "SELECT DISTINCT profile FROM crawl_visits WHERE state = 'started'"))
        for profile in busy:
            recorders = [p for p in _processes_mentioning(state)
                         if f"etagwatch_client={profile} " in p]
            if len(recorders) == 1:
                os.kill(int(recorders[0].split(":", 1)[0]), signal.SIGKILL)
                return profile
        time.sleep(0.1)
    raise AssertionError("no profile was mid-visit with its recorder running")


def _wait_done(db: Path, visits: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while _done(db) < visits and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            zombie = (entry / "stat").read_text().split(") ", 1)[1].startswith("Z")
        except OSError:
            continue
        if text in cmdline and not zombie and int(entry.name) != os.getpid():
            found.append(f"{entry.name}: {cmdline}")
    return found


def test_killed_and_resumed_crawl_equals_an_uninterrupted_one(crawl_sites, partitioned, tmp_path):
    """Stopped three ways (a profile's recorder killed, then the crawl by SIGTERM; resumed, then
    killed by SIGKILL) and resumed: the same store as the uninterrupted crawl."""
    db = tmp_path / "resumed.sqlite"
    total = PROFILES * 2 * VISITS
    _interrupt(crawl_sites, db, signal.SIGTERM, after=4, recorder_after=2)
    first = _done(db)
    _interrupt(crawl_sites, db, signal.SIGKILL, after=first + 2)
    assert first < _done(db) < total
    with Journal(db) as journal:
        cut = journal.interrupted()  # SIGKILL leaves the visit at hand half-done
    resumed = crawl(crawl_sites, db)
    assert f"{total} visits done, 0 failed" in resumed.stdout
    if cut:
        assert "interrupted visits redone" in resumed.stderr
    with Journal(db) as journal:
        assert journal.counts()["done"] == total
    # the same exchanges, visit by visit, and the same verdicts as the uninterrupted crawl
    assert lab_exchanges(db) == lab_exchanges(partitioned)
    theirs, ours = verdicts(partitioned), verdicts(db)
    assert {u: (r["verdict"], r.get("scope")) for u, r in ours.items() if ".test" in u} == {
        u: (r["verdict"], r.get("scope")) for u, r in theirs.items() if ".test" in u}
    with sqlite3.connect(db) as conn:  # each visit's page fetched once per visit, never twice
        pages = conn.execute(
            "SELECT client, COUNT(*) FROM exchanges WHERE host = 'news.lab.test' AND path = '/' "
            "GROUP BY client").fetchall()
    assert sorted(pages) == [(c, VISITS) for c in sorted(CLIENTS)]
    assert not (Path(str(db) + "-crawl") / "profiles" / "crawl-1").exists()  # cleaned when done


def test_failed_visits_are_recorded_and_the_crawl_goes_on(crawl_sites, tmp_path):
    """Sites that cannot be reached (a closed loopback port, over HTTPS: the proxy's tunnel
    fails; over HTTP: the proxy answers 502) fail their visits, recorded in the store with
    their error; the profile goes on to the next site in a fresh tab; exit status 1."""
    from analysis.lab.net import free_port

    lab = crawl_sites["lab"]
    port = free_port(lab.host)
    down = [f"https://down.lab.test:{port}/", f"http://down.lab.test:{port}/"]
    sites = tmp_path / "sites.txt"
    sites.write_text("\n".join([*down, lab.https_page_url]) + "\n")
    db = tmp_path / "failing.sqlite"
    run = subprocess.run(
        [sys.executable, "-m", "analysis", "crawl", str(sites), "--profiles", "1", "--visits",
         "2", "--db", str(db), "--lab-route", "--upstream-ca", str(crawl_sites["ca"]),
         "--settle", "0", "--timeout", "15", "--json", str(tmp_path / "crawl.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr + run.stdout
    assert "2 visits done, 4 failed" in run.stdout, run.stdout
    report = json.loads((tmp_path / "crawl.json").read_text())  # analyze's keys, plus crawl
    assert {"summary", "resources", "findings", "hosts"} <= set(report)
    assert (report["crawl"]["done"], report["crawl"]["failed"], report["crawl"]["pages"]) == (
        2, 4, 2) and len(report["crawl"]["failures"]) == 4
    assert f"failed: crawl-1 {down[1]} visit 1: HTTP 502" in run.stdout
    assert "visits:" not in run.stderr and "\r" not in run.stderr  # no bar in a log
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT site, visit, state, error FROM crawl_visits "
                            "ORDER BY site_index, visit").fetchall()
        pages = conn.execute("SELECT COUNT(*) FROM exchanges WHERE host = 'news.lab.test' "
                             "AND path = '/' AND status IN (200, 304)").fetchone()[0]
    assert [(s, v, st) for s, v, st, _ in rows] == [
        (down[0], 1, "failed"), (down[0], 2, "failed"), (down[1], 1, "failed"),
        (down[1], 2, "failed"), (lab.https_page_url, 1, "done"), (lab.https_page_url, 2, "done")]
    assert all("ERR_TUNNEL_CONNECTION_FAILED" in e for _, _, _, e in rows[:2])
    assert all(e.startswith("HTTP 502") for _, _, _, e in rows[2:4])
    assert pages == 2


def test_links_follows_the_first_k_same_site_links(nginx_factory, tmp_path):
    """--links 1: after the page, its first same-site link (not another site's, not the page
    itself) is loaded too, in a tab of its own."""
    need_program("chromium")
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text(
        '<a href="/#top">top</a> <a href="https://elsewhere.other.test/x">away</a> '
        '<a href="/a.html">a</a> <a href="/b.html">b</a>')
    for name in ("a.html", "b.html"):
        (root / name).write_text(f"<p>{name}</p>")
    origin = nginx_factory(root, name="links")
    db = tmp_path / "links.sqlite"
    leader, follower = pty.openpty()  # stderr a terminal: the progress bar is drawn
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 cols
    try:
        run = subprocess.run(
            [sys.executable, "-m", "analysis", "crawl", f"http://links.lab.test:{origin.port}/",
             "--profiles", "1", "--visits", "1", "--links", "1", "--db", str(db),
             "--lab-route", "--settle", "0"], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=follower, text=True, timeout=120)
        os.close(follower)
        terminal = _drain(leader)
    finally:
        os.close(leader)
    assert run.returncode == 0, terminal + run.stdout
    assert "1 visit done, 0 failed; 2 pages" in run.stdout
    assert "visits: 100%" in terminal and "1/1" in terminal  # sites x profiles x visits
    with sqlite3.connect(db) as conn:
        paths = {p for (p,) in conn.execute("SELECT path FROM exchanges WHERE host = "
                                            "'links.lab.test' AND path LIKE '%.html'")}
        away = conn.execute("SELECT COUNT(*) FROM exchanges WHERE host LIKE '%other.test'"
                            ).fetchone()[0]
    assert paths == {"/a.html"} and away == 0


def _drain(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")
