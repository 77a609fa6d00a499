"""mitmproxy addon loaded by the crawl's recorders: shut mitmdump down cleanly (its store
writer flushes) as soon as the crawl that started it is gone, even after a SIGKILL, so no
recorder outlives its crawl.

    mitmdump -s analysis/crawl/orphan_guard.py --set crawl_parent=PID
"""

from __future__ import annotations

import asyncio
import os

from mitmproxy import ctx

#: Seconds between two looks at the parent.
POLL = 0.25


class OrphanGuard:
    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        loader.add_option("crawl_parent", int, 0, "Shut down when this process is gone (0: never).")

    def running(self) -> None:
        if ctx.options.crawl_parent and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        parent = ctx.options.crawl_parent
        while os.getppid() == parent:
            await asyncio.sleep(POLL)
        ctx.master.shutdown()


addons = [OrphanGuard()]
