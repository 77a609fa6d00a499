"""`etagwatch analyze` on a store a live mitmdump is writing: every run reads the last
committed state (WAL) and exits 0, while the proxy goes on recording, and nothing recorded is
lost or stored twice."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from analysis.lab.mitm import ADDON, MitmDump
from analysis.store import load_exchanges

pytestmark = pytest.mark.e2e


class _Origin(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"GIF89a"
        self.send_response(304 if self.headers.get("If-None-Match") else 200)
        self.send_header("ETag", f'"{self.path.strip("/")}-v1"')
        self.send_header("Content-Length", "0" if self.headers.get("If-None-Match") else "6")
        self.end_headers()
        if not self.headers.get("If-None-Match"):
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.timeout(300)
def test_analyze_while_the_addon_records(tmp_path):
    origin = ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{origin.server_address[1]}"
    db = tmp_path / "live.sqlite"
    proxy = MitmDump(scripts=(ADDON,), db=db).start()
    sent = 0
    stop = threading.Event()

    def browse() -> None:
        nonlocal sent
        with httpx.Client(proxy=proxy.url, timeout=10, trust_env=False) as client:
            while not stop.is_set():
                client.get(f"{base}/r{sent % 20}", headers={"If-None-Match": '"x"'} if sent % 2 else {})
                sent += 1

    browser = threading.Thread(target=browse)
    browser.start()
    try:
        time.sleep(1.0)
        seen = []
        for i in range(3):
            out = tmp_path / f"a{i}.json"
            run = subprocess.run([sys.executable, "-m", "analysis", "analyze", str(db), "--json",
                                  str(out)], capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, run.stderr
            seen.append(json.loads(out.read_text())["summary"]["exchanges"])
        assert seen[-1] > 0
    finally:
        stop.set()
        browser.join()
        proxy.stop()
        origin.shutdown()
    assert len(load_exchanges(db)) == sent  # every exchange once, after a clean stop
