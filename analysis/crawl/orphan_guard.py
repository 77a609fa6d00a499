"""mitmproxy addon loaded by the crawl's recorders: shut mitmdump down cleanly (its store
writer flushes) as soon as the crawl that started it is gone, even after a SIGKILL, so no
recorder outlives its crawl; then remove the recorder's private folder (its log), which the
dead crawl can no longer remove.

    mitmdump -s analysis/crawl/orphan_guard.py --set crawl_parent=PID --set crawl_workdir=DIR
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

from mitmproxy import ctx
from mitmproxy.exceptions import OptionsError

#: Seconds between two looks at the parent.
POLL = 0.25


class OrphanGuard:
    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._orphaned = False

    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        loader.add_option("crawl_parent", int, 0, "Shut down when this process is gone (0: never).")
        loader.add_option("crawl_workdir", str, "",
                          "The recorder's private temporary folder, removed at shutdown when "
                          "the crawl is gone ('': none).")

    def configure(self, updated: set[str]) -> None:
        if "crawl_workdir" in updated and ctx.options.crawl_workdir:
            folder = Path(ctx.options.crawl_workdir)
            # only a folder of our own making: never a path an option could point elsewhere
            if folder.parent != Path(tempfile.gettempdir()) or \
                    not folder.name.startswith("etagwatch-recorder-"):
                raise OptionsError(f"crawl_workdir: not a recorder's temporary folder: {folder}")

    def done(self) -> None:
        if self._orphaned and ctx.options.crawl_workdir:
            shutil.rmtree(ctx.options.crawl_workdir, ignore_errors=True)

    def running(self) -> None:
        if ctx.options.crawl_parent and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        parent = ctx.options.crawl_parent
        while os.getppid() == parent:
            await asyncio.sleep(POLL)
        self._orphaned = True
        ctx.master.shutdown()


addons = [OrphanGuard()]
