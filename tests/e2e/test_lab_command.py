"""`etagwatch lab` starts every origin, prints where, serves until Ctrl-C, then stops all."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time

import httpx
import pytest
from support import ROOT, need_program

pytestmark = pytest.mark.e2e

#: The installed `etagwatch` entry point, also without `pip install -e .` (``python -m
#: analysis.cli`` would run cli.py as __main__, with a CliError class of its own).
ETAGWATCH = [sys.executable, "-c", "import sys; from analysis.cli import main; sys.exit(main())"]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_lab_command_serves_until_ctrl_c_then_stops_everything(signum):
    """Ctrl-C, a service manager's SIGTERM and a closed terminal's SIGHUP all stop every server
    (SIGTERM left nginx, apache2 and haproxy running)."""
    need_program("nginx", "apache2", "haproxy")
    proc = subprocess.Popen(
        [*ETAGWATCH, "lab"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(lines)
        urls = dict(re.findall(r"http://([a-z.-]+\.test):(\d+)/", text))
        assert {"pixel.tracker.test", "inode.apache-farm.test", "news.lab.test"} <= set(urls), text
        ports = [int(p) for p in urls.values()]
        r = httpx.get(f"http://127.0.0.1:{urls['pixel.tracker.test']}/pixel.gif")
        assert r.status_code == 200 and r.headers["etag"]
        # the same sites over HTTPS, with the printed lab CA and Chromium's trust flag
        tls_urls = dict(re.findall(r"https://([a-z.-]+\.test):(\d+)/", text))
        assert set(tls_urls) == set(urls) and not set(tls_urls.values()) & set(urls.values())
        ca = re.search(r"^lab CA: (\S+)$", text, re.M).group(1)
        assert "--ignore-certificate-errors-spki-list=" in text
        assert f"ssl_verify_upstream_trusted_ca={ca}" in text
        ctx = ssl.create_default_context(cafile=ca)
        with httpx.Client(verify=ctx, http2=True) as client:
            r = client.get(
                f"https://127.0.0.1:{tls_urls['pixel.tracker.test']}/pixel.gif",
                extensions={"sni_hostname": "pixel.tracker.test"},
            )
        assert (r.status_code, r.http_version) == (200, "HTTP/2") and r.headers["etag"]
        ports += [int(p) for p in tls_urls.values()]
        proc.send_signal(signum)
        assert proc.wait(timeout=20) == 128 + signum
        assert not any(_listening(p) for p in ports)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--visits", "0"], "--visits needs at least 1 visit"),
        (["--https"], "--https goes with --browse N (the lab always serves both schemes)"),
    ],
)
def test_lab_command_rejects_bad_options(args, message):
    result = subprocess.run(
        [*ETAGWATCH, "lab", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"etagwatch: error: {message}"


def test_lab_command_browses_over_https(tmp_path):
    """`etagwatch lab --browse 1 --https`: Chromium on the HTTPS page, HTTP/2, revalidating."""
    need_program("nginx", "apache2", "haproxy", "chromium")
    result = subprocess.run(
        [*ETAGWATCH, "lab", "--browse", "1", "--visits", "2", "--https", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    har = tmp_path / "profile-1.har"
    assert str(har) in result.stdout.splitlines()
    entries = json.loads(har.read_text())["log"]["entries"]
    css = [e for e in entries if e["request"]["url"].endswith("/app.css")]
    assert [e["request"]["url"].split(":")[0] for e in css] == ["https", "https"]
    assert {e["response"]["httpVersion"] for e in css} == {"HTTP/2.0"}
    assert [e["response"]["status"] for e in css] == [200, 304]
