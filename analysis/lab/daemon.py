"""A system server (nginx, Apache httpd, haproxy) run in the foreground from a private
temporary directory that holds its config, pid file and logs, and stopped by its owner.

Foreground mode keeps the process a child of ours, so stopping it never needs a pid file
hunt, and a crash while starting is seen at once with the tail of its log.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from abc import abstractmethod
from pathlib import Path
from typing import Self

from analysis.lab.net import LabError, StartStop, free_port, port_is_free, wait_for_port

#: Where Debian puts the programs when they are not on PATH (sbin is often missing for users).
_SEARCH = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")


def find_program(name: str) -> str:
    """Absolute path of a system program, or LabError naming the Debian package to install."""
    found = shutil.which(name) or next(
        (f"{d}/{name}" for d in _SEARCH if os.access(f"{d}/{name}", os.X_OK)), None
    )
    if not found:
        raise LabError(f"{name} not found (install the Debian package: apt-get install {name})")
    return found


def stopped_with_us(cmd: list[str]) -> list[str]:
    """``cmd`` run so that the kernel sends it SIGTERM when the thread that started it dies
    (Linux ``PR_SET_PDEATHSIG`` through util-linux ``setpriv``, kept across exec): a test run
    or `etagwatch lab` killed by a signal, which runs no ``atexit``, leaves no server listening
    behind it. Unchanged where ``setpriv`` is missing."""
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return [setpriv, "--pdeathsig", "TERM", "--", *cmd] if setpriv else cmd


class ManagedServer(StartStop):
    """Base for one foreground server process on a loopback port.

    Subclasses write their config in :meth:`write_config` and return the command line from
    :meth:`command`. Use as a context manager; :meth:`stop` is idempotent.
    """

    kind = "server"
    #: SIGTERM from the kernel when our starting thread dies (``stopped_with_us``); a server
    #: with its own way of noticing (the crawl's recorders: a clean shutdown) opts out.
    stop_with_parent = True

    def __init__(self, *, host: str = "127.0.0.1", port: int | None = None, name: str = "") -> None:
        self.host = host
        self.port = port or free_port(host)
        self.name = name or self.kind
        self.workdir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    # --- for subclasses
    @abstractmethod
    def write_config(self, workdir: Path) -> None:
        """Write the server's configuration files into ``workdir``."""

    @abstractmethod
    def command(self, workdir: Path) -> list[str]:
        """The command line that runs the server in the foreground."""

    def env(self) -> dict[str, str] | None:
        return None

    def ports(self) -> list[int]:
        """Every port the server listens on (checked free before, awaited after the start)."""
        return [self.port]

    # --- public
    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def log_path(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "output.log"

    def start(self) -> Self:
        for port in self.ports():
            if not port_is_free(self.host, port):
                raise LabError(f"{self.describe()}: port {port} is already in use")
        self.workdir = Path(tempfile.mkdtemp(prefix=f"etagwatch-{self.kind}-"))
        # Workers of a root-started server run as an unprivileged user and must read this.
        self.workdir.chmod(0o755)
        try:
            self.write_config(self.workdir)
            with open(self.log_path, "wb") as log:
                command = self.command(self.workdir)
                self.process = subprocess.Popen(
                    stopped_with_us(command) if self.stop_with_parent else command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    env=self.env(),
                    start_new_session=True,  # Ctrl-C in a terminal reaches us, not the server
                )
            atexit.register(self.stop)  # a test runner that exits early still stops us
            for port in self.ports():
                wait_for_port(self.host, port, process=self.process, what=self.describe())
        except BaseException as exc:
            tail = self.log_tail()
            self.stop()
            if isinstance(exc, LabError):
                raise LabError(f"{exc}{': ' + tail if tail else ''}") from None
            raise
        return self

    def stop(self) -> None:
        """Terminate the server and its workers, then remove its temporary directory."""
        atexit.unregister(self.stop)
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, AssertionError):
            return ""
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])

    def describe(self) -> str:
        return f"{self.kind} {self.name!r} on {self.host}:{self.port}"
