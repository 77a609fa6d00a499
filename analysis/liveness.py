"""Whether the process that began an ingest is still running, so a later run can tell an
interrupted ingest (its rows are replaced) from one still under way (left alone).

A pid alone is not enough: after a crash or a reboot the number may belong to another program.
On Linux the token also holds the boot id and the process's start time (``/proc``), which no
later process shares; elsewhere it falls back to the pid.
"""

from __future__ import annotations

import os
from pathlib import Path


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "-"


def _stat(pid: int) -> list[str] | None:
    """Fields 3... of /proc/PID/stat (after the command name, which may hold spaces)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def _start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat (clock ticks since boot), or '-' where there is no /proc."""
    fields = _stat(pid)
    return fields[19] if fields else "-"


def token(pid: int | None = None) -> str:
    """``boot:pid:start`` of this process (or ``pid``)."""
    pid = os.getpid() if pid is None else pid
    return f"{_boot_id()}:{pid}:{_start_time(pid)}"


def alive(owner: str | None) -> bool:
    """Whether the process a token names is running and is not this process."""
    if not owner:
        return False
    boot, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    pid = int(pid_text)
    if boot != _boot_id():
        return False  # began before a reboot
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process of that number: it exists
    fields = _stat(pid)
    if fields is None:
        return start == "-"  # no /proc: the pid exists, which is all that can be known
    return fields[0] != "Z" and fields[19] == start  # a zombie has ended
