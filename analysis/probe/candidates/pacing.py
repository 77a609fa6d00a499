"""A per-host rate limit shared by every probe thread: polite to each origin whatever the
concurrency (requests to one host start at least 1 / rate seconds apart)."""

from __future__ import annotations

import threading
import time

#: Polite defaults: requests per second to one host, and resources probed at once.
DEFAULT_RATE = 2.0
DEFAULT_CONCURRENCY = 4


class HostPacer:
    """``wait(host)`` returns when the next request to ``host`` may start.

    Each caller reserves the next free slot of its host under a lock and then sleeps outside
    it, so threads bound for other hosts never wait for this one."""

    def __init__(self, rate: float) -> None:
        if not rate > 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, host: str) -> None:
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next.get(host, now))
            self._next[host] = at + self.interval
        if at > now:
            time.sleep(at - now)
