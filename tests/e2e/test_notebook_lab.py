"""End to end: `make notebook`'s launcher starts JupyterLab on loopback with a token, headless
Chromium opens the printed URL, runs every cell through the Run menu as a user would, and finds
the third-party verdict table in the page; the server is then shut down through its API.

The browser may only reach 127.0.0.1: every other request is aborted and counted, and the test
fails on any. Set ETAGWATCH_NOTEBOOK_SCREENSHOT=path.png to keep a screenshot after Run All.
"""

from __future__ import annotations

import os
import queue
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
from support import ROOT, SAMPLE_CAPTURES, free_port, need_program

from analysis import notebook_server
from analysis.ingest import ingest_paths
from analysis.store import Store

pytestmark = pytest.mark.e2e

URL = re.compile(r"http://127\.0\.0\.1:\d+/lab/tree/\S+\?token=\S+")
START_TIMEOUT_S = 120
RUN_TIMEOUT_MS = 180_000


def jupyter_env(tmp: Path, token: str) -> dict[str, str]:
    """Private Jupyter folders (no user config, settings or kernels leak in), the token."""
    env = dict(os.environ, JUPYTER_TOKEN=token)
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR",
                "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR", "IPYTHONDIR"):
        (tmp / var.lower()).mkdir()
        env[var] = str(tmp / var.lower())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def printed_url(proc: subprocess.Popen, timeout: float) -> str:
    """The URL the launcher prints once the server answers."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout], daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if proc.poll() is not None:
                pytest.fail(f"the launcher exited with {proc.returncode} before printing a URL")
            continue
        if found := URL.search(line):
            return found.group(0)
    pytest.fail(f"no URL printed within {timeout:.0f} s")


@pytest.fixture
def lab_server(tmp_path: Path):
    """The launcher on a free loopback port, serving a copy of explore.ipynb (the UI's
    autosave must not write outputs into the committed notebook) on the sample store."""
    db = tmp_path / "sample.sqlite"
    with Store(db) as store:
        ingest_paths([SAMPLE_CAPTURES / "har", SAMPLE_CAPTURES / "flows"], store)
    work = tmp_path / "nb"
    work.mkdir()
    shutil.copy(notebook_server.EXPLORE_NOTEBOOK, work / "explore.ipynb")
    token = secrets.token_hex(16)
    port = free_port()
    log = (tmp_path / "jupyter.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "analysis.notebook_server", "explore.ipynb", "--db", str(db),
         "--port", str(port), "--no-browser"],
        cwd=work, env=jupyter_env(tmp_path, token), stdout=subprocess.PIPE, stderr=log,
        text=True)
    try:
        url = printed_url(proc, START_TIMEOUT_S)
        yield {"url": url, "port": port, "token": token, "proc": proc, "work": work,
               "log": tmp_path / "jupyter.log"}
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def shut_down(port: int, token: str, proc: subprocess.Popen) -> int:
    """Ask the server to stop (it shuts its kernels down too) and wait for the launcher."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/shutdown", method="POST",
                                     headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10):
        pass
    return proc.wait(timeout=60)


def test_run_all_in_jupyterlab_shows_the_verdict_table(lab_server) -> None:
    need_program("chromium")
    from playwright.sync_api import expect, sync_playwright

    url, port = lab_server["url"], lab_server["port"]
    assert urlsplit(url).port == port and lab_server["token"] in url
    outside: list[str] = []
    code_cells = sum(c.cell_type == "code" for c in
                     nbformat.read(lab_server["work"] / "explore.ipynb", as_version=4).cells)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                     args=["--no-sandbox", "--headless", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})

            def only_loopback(route) -> None:
                if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_loopback)
            page.goto(url, timeout=60_000)
            # the notebook's own kernel, started and idle
            expect(page.locator(".jp-NotebookPanel-toolbar .jp-KernelName").first).to_have_text(
                notebook_server.KERNEL_DISPLAY_NAME, timeout=60_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                   timeout=60_000)

            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()

            # done: every code cell has an execution count and the kernel is idle again
            page.wait_for_function(
                """n => {
                    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
                    return prompts.length === n && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
                }""", arg=code_cells, timeout=RUN_TIMEOUT_MS)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                   timeout=60_000)

            # the verdict table of the third-party question: verdicts with sites and scope
            table = page.locator("table.etagwatch-table").filter(
                has=page.locator("th", has_text="first party sites")).filter(
                has=page.locator("th", has_text="scope basis")).first
            table.scroll_into_view_if_needed(timeout=30_000)
            expect(table).to_be_visible()
            for expected in ("identifier", "tracker.test", "evercookie.test", "lab.test",
                             "per-site"):
                # JupyterLab renders outputs out of view lazily: wait for the text
                expect(table).to_contain_text(expected, timeout=30_000)
            news = page.get_by_text("Would you like to get notified about official Jupyter news")
            assert news.count() == 0
            assert page.locator("text=Third parties that identify clients, by first-party site"
                                ).count() >= 1
            errors = page.locator("[data-mime-type='application/vnd.jupyter.error'], "
                                  ".jp-OutputArea-output:has-text('Traceback')")
            assert errors.count() == 0, errors.first.inner_text()
            shot = os.environ.get("ETAGWATCH_NOTEBOOK_SCREENSHOT")
            if shot:
                page.screenshot(path=shot)
        finally:
            browser.close()

    assert outside == [], f"the page reached beyond loopback: {outside[:5]}"
    assert shut_down(port, lab_server["token"], lab_server["proc"]) == 0
    log = lab_server["log"].read_text()
    assert "Failed to get announcements" not in log and "Traceback" not in log, log[-2000:]
