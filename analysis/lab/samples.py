"""Regenerating sample_captures/: one lab run, browsed by Chromium twice over — recording its
own HAR files, and through mitmdump with etagwatch's addon saving mitmproxy flow files — so
`make demo` has real captures in both formats showing every verdict."""

from __future__ import annotations

import shutil
from pathlib import Path

from analysis.lab.capture import browse_through_mitmdump, browse_to_hars
from analysis.lab.lab import Lab


def write_sample_captures(out: Path, *, profiles: int = 3, visits: int = 3) -> list[Path]:
    """Write ``out/har/profile-N.har`` and ``out/flows/live-N.flows``; returns the files.

    Old captures in those two folders are replaced; anything else in ``out`` is kept.
    """
    out = Path(out)
    har_dir, flow_dir = out / "har", out / "flows"
    for folder in (har_dir, flow_dir):
        if folder.exists():
            shutil.rmtree(folder)
    with Lab() as lab:
        hars = browse_to_hars(lab, har_dir, profiles=profiles, visits=visits)
        live = browse_through_mitmdump(
            lab, flow_dir, profiles=profiles, visits=visits, db=flow_dir / "live.sqlite"
        )
    for leftover in flow_dir.glob("live.sqlite*"):  # the store is rebuilt by `etagwatch analyze`
        leftover.unlink()
    return [*hars, *live["flows"]]  # type: ignore[list-item]
