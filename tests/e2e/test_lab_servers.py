"""The lab's servers behave as each demonstration needs: real nginx, Apache httpd and haproxy
from the system, and the Python origins, on loopback ports, stopped by their owners."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

import httpx
import pytest
from support import NGINX_FILES, need_program

from analysis.lab.net import LabError, free_port
from analysis.lab.origins.digest import DigestOrigin
from analysis.lab.origins.echo_tracker import EchoTrackerOrigin
from analysis.lab.origins.random_etag import RandomETagOrigin
from analysis.lab.origins.tracker import TrackerOrigin
from analysis.lab.servers import ApacheOrigin, HAProxy, NginxOrigin

pytestmark = pytest.mark.e2e


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_nginx_serves_mtime_size_etag_and_answers_304(nginx_origin, nginx_docroot):
    st = (nginx_docroot / "app.css").stat()
    first = httpx.get(nginx_origin.url + "/app.css")
    assert first.status_code == 200
    assert first.content == NGINX_FILES["app.css"]
    assert first.headers["etag"] == f'"{int(st.st_mtime):x}-{st.st_size:x}"'
    assert first.headers["cache-control"] == "no-cache"
    assert first.headers["x-backend"] == "nginx"
    again = httpx.get(
        nginx_origin.url + "/app.css", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.headers["etag"] == first.headers["etag"]


def test_nginx_stops_on_error_and_frees_its_port(nginx_docroot):
    need_program("nginx")
    origin = NginxOrigin(nginx_docroot)
    with pytest.raises(RuntimeError, match="boom"), origin:
        assert _listening(origin.port)
        workdir = origin.workdir
        raise RuntimeError("boom")
    assert not _listening(origin.port)
    assert workdir is not None and not workdir.exists()


def test_a_killed_owner_leaves_no_server_running(nginx_docroot, tmp_path):
    """The process that started a server dies by SIGKILL (no atexit, no stop): the kernel
    stops the server too (PR_SET_PDEATHSIG), so a killed test run or `etagwatch lab` leaves
    nothing listening."""
    import signal
    import subprocess
    import sys
    import time

    need_program("nginx")
    owner = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from analysis.lab.servers import NginxOrigin\n"
         f"o = NginxOrigin({str(nginx_docroot)!r}).start()\n"
         "print(o.process.pid, o.port, o.workdir, flush=True)\n"
         "time.sleep(120)\n"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    pid, port, workdir = owner.stdout.readline().split()
    pid, port = int(pid), int(port)
    assert _listening(port)
    assert Path(f"/proc/{pid}/exe").resolve().name == "nginx"  # the server itself, exec'd
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    deadline = time.monotonic() + 10
    while _listening(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    shutil.rmtree(workdir, ignore_errors=True)  # the dead owner could not
    assert not _listening(port)


def test_start_failure_names_the_server_and_why(nginx_docroot):
    need_program("nginx")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LabError, match=rf"nginx .*port {port} is already in use"):
            NginxOrigin(nginx_docroot, port=port).start()


def test_apache_pair_behind_haproxy_churns_by_inode():
    need_program("apache2", "haproxy")
    # Apache's workers run unprivileged when we are root: serve from a world-searchable dir
    root = Path(tempfile.mkdtemp(prefix="etagwatch-test-apache-"))
    root.chmod(0o755)
    a, b = root / "a", root / "b"
    for d in (a, b):
        d.mkdir()
        (d / "lib.js").write_bytes(b"window.x = 1;\n")
        os.utime(d / "lib.js", (1_700_000_000, 1_700_000_000))
    try:
        _check_inode_churn(a, b)
    finally:
        shutil.rmtree(root)


def _check_inode_churn(a: Path, b: Path) -> None:
    with (
        ApacheOrigin(a, name="apache-1") as ap1,
        ApacheOrigin(b, name="apache-2") as ap2,
        HAProxy([("apache-1", ap1.host, ap1.port), ("apache-2", ap2.host, ap2.port)]) as lb,
        httpx.Client() as client,
    ):
        seen = {}
        for _ in range(4):
            r = client.get(lb.url + "/lib.js")
            assert r.status_code == 200 and r.content == b"window.x = 1;\n"
            seen[r.headers["x-backend"]] = r.headers["etag"]
        assert set(seen) == {"apache-1", "apache-2"}
        inode = {name: int(seen[name].strip('"').split("-")[0], 16) for name in seen}
        assert inode == {
            "apache-1": (a / "lib.js").stat().st_ino,
            "apache-2": (b / "lib.js").stat().st_ino,
        }
        # only the inode part differs: same size, same mtime
        assert len({seen[n].split("-", 1)[1] for n in seen}) == 1


def test_lab_mtime_pair_differs_only_in_mtime(lab):
    site = lab.sites["mtime"]
    seen = {}
    with httpx.Client() as client:
        for _ in range(4):
            r = client.get(site.loopback_url)
            seen[r.headers["x-backend"]] = (
                r.headers["etag"],
                r.headers["last-modified"],
                r.content,
            )
    assert set(seen) == set(site.backends)
    (e1, lm1, body1), (e2, lm2, body2) = seen.values()
    assert body1 == body2 and lm1 != lm2
    m1, m2 = (re.fullmatch(r'"([0-9a-f]+)-([0-9a-f]+)"', e).groups() for e in (e1, e2))
    assert m1[1] == m2[1] and m1[0] != m2[0]  # same size, different mtime


def test_tracker_issues_one_identifier_per_client_and_keeps_it():
    with TrackerOrigin() as origin:
        url = origin.url + "/pixel.gif"
        a, b = httpx.get(url), httpx.get(url)
        assert a.status_code == b.status_code == 200
        assert a.headers["etag"] != b.headers["etag"]
        assert len(a.headers["etag"].strip('"')) == 32
        again = httpx.get(url, headers={"If-None-Match": a.headers["etag"]})
        assert again.status_code == 304 and again.headers["etag"] == a.headers["etag"]
        forged = httpx.get(url, headers={"If-None-Match": '"never-issued"'})
        assert forged.status_code == 200 and forged.headers["etag"] != '"never-issued"'


def test_echo_tracker_reflects_any_value():
    with EchoTrackerOrigin() as origin:
        url = origin.url + "/e.gif"
        forged = httpx.get(url, headers={"If-None-Match": '"chosen-by-client"'})
        assert forged.status_code == 304
        assert forged.headers["etag"] == '"chosen-by-client"'
        fresh = httpx.get(url)
        assert fresh.status_code == 200 and fresh.headers["etag"].startswith('"')
        assert origin.echoed == 1


def test_digest_origin_etag_is_the_body_sha256():
    with DigestOrigin() as origin:
        r = httpx.get(origin.url + "/widget.js")
        assert r.headers["etag"] == f'"{hashlib.sha256(r.content).hexdigest()}"'
        again = httpx.get(origin.url + "/widget.js", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304


def test_random_origin_changes_etag_every_time_and_never_304():
    with RandomETagOrigin() as origin:
        url = origin.url + "/ticker.js"
        first = httpx.get(url)
        second = httpx.get(url, headers={"If-None-Match": first.headers["etag"]})
        assert second.status_code == 200
        assert second.content == first.content
        assert second.headers["etag"] != first.headers["etag"]


def test_python_origin_port_is_free_after_stop():
    origin = TrackerOrigin(port=free_port())
    with origin:
        assert _listening(origin.port)
    assert not _listening(origin.port)
