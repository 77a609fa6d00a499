"""Verdicts that come after a flow was saved (``mitmdump -w FILE``) reach the saved file too.

mitmproxy's Save addon writes each flow in its ``response`` hook. The verdicts a flow settles
on its own are on it by then (the annotator judges on the event loop while flows are streamed),
but those that later flows settle (an ETag that identifies clients once a second client shows
its own value, churn, a re-run of the detectors a second later) arrive when the flow is already
in the file: 9- and 24-flow runs saved no comment at all while the store said identifier.

mitmdump keeps no flow once its hooks have run, and the annotator keeps only a resource's last
few flows, so such a verdict often has no flow left to go on. This addon sits at the end of
mitmproxy's addon chain, after Save: it notes each file Save writes to; while flows are saved,
the annotator tells it each flow's resource (the id under the record's URL: about 100 bytes a
flow) and hands it each revision of a resource's verdict. In ``done``, after Save closed its
file, it rewrites each such file once, giving every saved flow of the resource its last verdict
(comment and marker replaced as the annotator replaces them). A
mitmdump killed with SIGKILL never gets there: its file keeps the verdicts known at write time,
and the store has them all.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime

from mitmproxy import ctx, exceptions, http, io

from addons.guard import never_raise
from addons.live_checks import Verdict

logger = logging.getLogger(__name__)

NAME = "etagwatch_saved_verdicts"


class SavedVerdicts:
    """Remembers late annotations of saved flows and writes them into the saved files."""

    name = NAME

    def __init__(self) -> None:
        self.paths: set[str] = set()  # files Save has written to (strftime rotation gives several)
        self.late: dict[str, tuple[Verdict, ...]] = {}  # resource URL -> its current verdicts
        self.flows: dict[str, list[str]] = {}  # resource URL -> ids of its flows
        self._spec: str | None = None  # save_stream_file, "+" (append) and ~ resolved
        self._dated = False  # the path holds strftime fields: resolve it per flow

    def configure(self, updated: set[str]) -> None:
        spec = getattr(ctx.options, "save_stream_file", None)
        if spec and spec.startswith("+"):
            spec = spec[1:]
        self._spec = os.path.expanduser(spec) if spec else None
        self._dated = bool(self._spec and "%" in self._spec)
        if self._spec and not self._dated:
            self.paths.add(self._spec)

    @never_raise("saved_verdicts.response")
    def response(self, f: http.HTTPFlow) -> None:
        if self._dated and self._spec:
            self.paths.add(datetime.today().strftime(self._spec))  # as Save names its file

    error = response

    @property
    def saving(self) -> bool:
        return self._spec is not None

    def seen(self, flow_id: str, url: str) -> None:
        """A flow of the resource ``url`` (its record's URL), which Save may write."""
        if self._spec is not None:
            self.flows.setdefault(url, []).append(flow_id)

    def revise(self, url: str, verdicts: tuple[Verdict, ...]) -> None:
        """The resource ``url``'s detector verdicts are now ``verdicts`` (found after some of
        its flows were saved; empty: withdrawn)."""
        if self._spec is not None:
            self.late[url] = verdicts

    def by_flow(self) -> dict[str, tuple[Verdict, ...]]:
        return {flow_id: verdicts for url, verdicts in self.late.items() for flow_id in self.flows.get(url, ())}

    def done(self) -> None:
        late = self.by_flow()
        self.late, self.flows = {}, {}
        if not late:
            return
        for path in sorted(self.paths):
            try:
                changed = rewrite(path, late)
            except (OSError, exceptions.FlowReadException) as exc:
                logger.warning(f"etagwatch: could not add late verdicts to {path}: {exc}")
                continue
            if changed:
                logger.info(f"etagwatch: {changed} flows in {path} got the verdicts found after they were saved")


def rewrite(path: str, late: dict[str, tuple[Verdict, ...]]) -> int:
    """Rewrite the flow file at ``path`` with the resource verdicts in ``late`` (by flow id)
    replacing those the flows were saved with; how many flows changed. The file is replaced whole, only when one changed."""
    from addons.annotator import annotate  # which imports this module

    if not os.path.exists(path):
        return 0
    tmp = f"{path}.etagwatch-tmp"
    changed = 0
    try:
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            writer = io.FlowWriter(dst)
            for f in io.FlowReader(src).stream():
                verdicts = late.get(f.id)
                if verdicts is not None and annotate(f, resource=verdicts):
                    changed += 1
                writer.add(f)
    except BaseException:
        os.unlink(tmp)
        raise
    if changed:
        os.replace(tmp, path)
    else:
        os.unlink(tmp)
    return changed
