"""The per-host rate limit of `probe --candidates` (analysis.probe.candidates.pacing): requests
to one host are spaced, other hosts do not wait for it."""

from __future__ import annotations

import threading
import time

import pytest

from analysis.probe.candidates.pacing import HostPacer


def test_one_host_is_spaced_at_the_rate() -> None:
    pacer = HostPacer(rate=20.0)
    started = time.monotonic()
    for _ in range(6):
        pacer.wait("a.example")
    assert time.monotonic() - started >= 5 / 20.0 - 0.001  # five intervals after the first


def test_other_hosts_do_not_wait_for_a_busy_one() -> None:
    pacer = HostPacer(rate=10.0)
    busy = threading.Thread(target=lambda: [pacer.wait("a.example") for _ in range(8)])
    busy.start()
    time.sleep(0.05)  # a.example now holds reservations for the next 0.7 s
    started = time.monotonic()
    pacer.wait("b.example")
    waited = time.monotonic() - started
    busy.join()
    assert waited < 0.3, waited


def test_threads_share_one_host_s_slots() -> None:
    """Four threads asking for one host at once get slots 1 / rate apart, not four at once."""
    pacer = HostPacer(rate=20.0)
    times: list[float] = []
    lock = threading.Lock()

    def ask() -> None:
        pacer.wait("a.example")
        with lock:
            times.append(time.monotonic())

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times.sort()
    assert times[-1] - times[0] >= 3 / 20.0 - 0.01


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        HostPacer(0)
