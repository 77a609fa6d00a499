"""JupyterLab for the explore notebook, as `make notebook` starts it: on loopback only, with the
project's own kernel, and with nothing that reaches outside this machine (no news feed, no
update check, no extension index).

    python -m analysis.notebook_server [NOTEBOOK] [--db STORE] [--port N] [--no-browser]
    python -m analysis.notebook_server --register-kernel

The kernel is this interpreter registered under ``etagwatch`` in its own prefix (the venv's
share/jupyter/kernels, like ``ipykernel install --sys-prefix``), and the notebooks name that
kernel in their metadata, so they never run against another Python. The store the notebook
reads is passed in ``ETAGWATCH_DB``; the token in ``JUPYTER_TOKEN`` (generated unless set), so
it is not visible in the process list. The URL printed once the server answers carries it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

KERNEL_NAME = "etagwatch"
KERNEL_DISPLAY_NAME = "etagwatch (project .venv)"
HOST = "127.0.0.1"
DEFAULT_PORT = 8888
PROJECT = Path(__file__).resolve().parents[1]
EXPLORE_NOTEBOOK = PROJECT / "notebooks" / "explore.ipynb"
READY_TIMEOUT_S = 120.0

#: JupyterLab 4 settings that keep it on this machine: no Atom news feed, no PyPI version
#: check, an extension manager that does not query PyPI, no browser of its own in tests.
OFFLINE_ARGS = (
    "--LabApp.news_url=None",
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    "--LabApp.extension_manager=readonly",
    "--ServerApp.allow_remote_access=False",
    "--ServerApp.port_retries=0",
)


#: Defaults for this venv's JupyterLab (a user's own settings still win): do not ask to fetch
#: the news feed, do not check for updates. The server side is off by OFFLINE_ARGS already.
OFFLINE_SETTINGS = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false",
                                                     "checkForUpdates": False},
}
OVERRIDES_NAME = "etagwatch-offline.json"


class NotebookServerError(Exception):
    """JupyterLab could not be started; one line for the user."""


def kernel_spec_dir() -> Path:
    """Where this interpreter's prefix keeps the project kernel."""
    return Path(sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME


def register_kernel() -> Path:
    """Install (or refresh) the ``etagwatch`` kernelspec for this interpreter in its own prefix."""
    from ipykernel.kernelspec import install

    return Path(install(kernel_name=KERNEL_NAME, display_name=KERNEL_DISPLAY_NAME,
                        prefix=sys.prefix))


def kernel_is_registered() -> bool:
    """True when the kernelspec in this prefix launches this very interpreter."""
    import json

    try:
        spec = json.loads((kernel_spec_dir() / "kernel.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(spec.get("argv")) and is_this_interpreter(spec["argv"][0])


def is_this_interpreter(path: str) -> bool:
    """``path`` is this venv's Python (``python`` or ``python3`` in the same bin folder)."""
    exe, other = Path(sys.executable), Path(path)
    return other.parent == exe.parent and other.resolve() == exe.resolve()


def write_offline_settings() -> Path:
    """Put OFFLINE_SETTINGS in the overrides.d of this environment's JupyterLab app folder."""
    import json

    from jupyterlab.commands import get_app_dir

    path = Path(get_app_dir()) / "settings" / "overrides.d" / OVERRIDES_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(OFFLINE_SETTINGS, indent=2) + "\n", encoding="utf-8")
    return path


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(wanted: int | None) -> int:
    """``wanted`` if given (it must be free), else 8888 when free, else any free port."""
    if wanted is not None:
        if not port_is_free(wanted):
            raise NotebookServerError(f"port {wanted} on {HOST} is in use; pick another with --port")
        return wanted
    if port_is_free(DEFAULT_PORT):
        return DEFAULT_PORT
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def root_for(notebook: Path) -> Path:
    """The file browser's root: the current folder when it holds the notebook, else the
    notebook's own folder."""
    cwd = Path.cwd().resolve()
    return cwd if notebook.is_relative_to(cwd) else notebook.parent


def server_command(notebook: Path, root: Path, port: int, *, browser: bool) -> list[str]:
    """The ``jupyter lab`` command line (this interpreter's). As root (containers, CI) Jupyter
    needs an explicit allow: the server stays on loopback behind its token either way."""
    as_root = ["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []
    return [
        sys.executable, "-m", "jupyterlab", str(notebook.relative_to(root)),
        f"--ServerApp.ip={HOST}", f"--ServerApp.port={port}", f"--ServerApp.root_dir={root}",
        f"--ServerApp.open_browser={browser}", *OFFLINE_ARGS, *as_root,
    ]


def notebook_url(notebook: Path, root: Path, port: int, token: str) -> str:
    path = quote(notebook.relative_to(root).as_posix())
    return f"http://{HOST}:{port}/lab/tree/{path}?token={token}"


def wait_until_ready(proc: subprocess.Popen, port: int, token: str,
                     timeout: float = READY_TIMEOUT_S) -> None:
    """Poll the server's status API until it answers (or the server exits, or time runs out)."""
    deadline = time.monotonic() + timeout
    url = f"http://{HOST}:{port}/api/status"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise NotebookServerError(f"JupyterLab exited with status {proc.returncode} before "
                                      "it served; see its log above")
        try:
            request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise NotebookServerError(f"JupyterLab did not answer on {HOST}:{port} within {timeout:.0f} s")


def serve(notebook: Path, *, db: Path | None, port: int | None, browser: bool) -> int:
    """Start JupyterLab on ``notebook``, print its URL with the token, wait until it stops."""
    try:
        import jupyterlab  # noqa: F401
    except ImportError as exc:
        raise NotebookServerError(
            "JupyterLab is not installed in this environment: pip install -e '.[notebook]' "
            "(make does it)") from exc
    notebook = notebook.resolve()
    if not notebook.is_file():
        raise NotebookServerError(f"{notebook}: no such notebook")
    if db is not None and not db.exists():
        raise NotebookServerError(f"{db}: no such store (make demo builds demo.sqlite)")
    if not kernel_is_registered():
        register_kernel()
    write_offline_settings()
    root = root_for(notebook)
    port = choose_port(port)
    token = os.environ.get("JUPYTER_TOKEN") or secrets.token_hex(24)
    env = dict(os.environ, JUPYTER_TOKEN=token, JUPYTER_PREFER_ENV_PATH="1")
    if db is not None:
        env["ETAGWATCH_DB"] = str(db.resolve())
    proc = subprocess.Popen(server_command(notebook, root, port, browser=browser), env=env)
    # Ctrl-C belongs to JupyterLab (it asks before shutting down); TERM is passed on to it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        wait_until_ready(proc, port, token)
    except NotebookServerError:
        proc.terminate()
        proc.wait(timeout=30)
        raise
    store = env.get("ETAGWATCH_DB", "the notebook's default (demo.sqlite)")
    print(f"\netagwatch: JupyterLab serves {notebook.name} on store {store}\n"
          f"    {notebook_url(notebook, root, port, token)}\n"
          f"kernel: {KERNEL_DISPLAY_NAME} ({sys.executable}); Ctrl-C twice to stop\n",
          flush=True)
    return proc.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.notebook_server",
        description="Open an etagwatch notebook in JupyterLab on 127.0.0.1 with the project's "
                    "kernel; prints the URL with its access token.",
        epilog="example: python -m analysis.notebook_server --db demo.sqlite "
               "(what `make notebook` runs)")
    parser.add_argument("notebook", nargs="?", type=Path, default=EXPLORE_NOTEBOOK,
                        help="the notebook to open (default: notebooks/explore.ipynb)")
    parser.add_argument("--db", type=Path, help="the store the notebook reads (ETAGWATCH_DB)")
    parser.add_argument("--port", type=int, help=f"port on {HOST} (default {DEFAULT_PORT}, or "
                                                 "a free one when it is taken)")
    parser.add_argument("--no-browser", dest="browser", action="store_false",
                        help="do not open a web browser; just print the URL")
    parser.add_argument("--register-kernel", action="store_true",
                        help=f"only register the '{KERNEL_NAME}' kernel (and JupyterLab's offline defaults) "
             f"in {sys.prefix}, then exit")
    args = parser.parse_args(argv)
    try:
        if args.register_kernel:
            print(f"kernel '{KERNEL_NAME}' ({KERNEL_DISPLAY_NAME}) in {register_kernel()}")
            with contextlib.suppress(ImportError):  # JupyterLab is an extra
                print(f"JupyterLab offline defaults in {write_offline_settings()}")
            return 0
        return serve(args.notebook, db=args.db, port=args.port, browser=args.browser)
    except NotebookServerError as exc:
        print(f"etagwatch: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
