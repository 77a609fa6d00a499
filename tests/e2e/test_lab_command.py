"""`etagwatch lab` starts every origin, prints where, serves until Ctrl-C, then stops all."""

from __future__ import annotations

import os
import re
import signal
import socket
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
        proc.send_signal(signum)
        assert proc.wait(timeout=20) == 128 + signum
        assert not any(_listening(p) for p in ports)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_lab_command_rejects_a_bad_visit_count():
    result = subprocess.run(
        [*ETAGWATCH, "lab", "--visits", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "etagwatch: error: --visits needs at least 1 visit"
