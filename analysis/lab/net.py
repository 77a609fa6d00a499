"""Loopback ports: pick a free one, and wait until a server answers on one."""

from __future__ import annotations

import socket
import subprocess
import time
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class LabError(RuntimeError):
    """A lab server could not start or stopped unexpectedly (the message says which, and why)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the caller binds it soon after)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """True when nobody listens on ``host:port`` (a server would only fail later, in its log)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_for_port(
    host: str,
    port: int,
    *,
    timeout: float = 10.0,
    process: subprocess.Popen | None = None,
    what: str = "server",
) -> None:
    """Block until ``host:port`` accepts TCP connections.

    Fails fast when ``process`` exits first, so a bad config reports at once, not after a timeout.
    """
    deadline = time.monotonic() + timeout
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while True:
        if process is not None and process.poll() is not None:
            raise LabError(f"{what} exited with status {process.returncode} before listening")
        with socket.socket(family) as s:
            s.settimeout(0.2)
            if s.connect_ex((host, port)) == 0:
                return
        if time.monotonic() > deadline:
            raise LabError(f"{what} did not listen on {host}:{port} within {timeout:.0f} s")
        time.sleep(0.03)


class StartStop(ABC):
    """``with thing:`` starts it and stops it on the way out, also on error or Ctrl-C."""

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
