"""Addons that must run after mitmproxy's own (server replay, Save) join the end of its chain.

A script's addons run before mitmproxy's server replay and Save in every hook (the script
loader sits before them in mitmproxy's default addons). The few hooks that must see what those
did are put on an addon appended to the master's chain, once per master: a reloaded script finds
the one already there.
"""

from __future__ import annotations

from typing import TypeVar

from mitmproxy import ctx

A = TypeVar("A")


def append_once(addon: A) -> A:
    """``addon`` appended to the end of the chain, or the one of its name already there."""
    existing = ctx.master.addons.get(addon.name)  # type: ignore[attr-defined]
    if existing is not None:
        return existing
    ctx.master.addons.add(addon)
    configure = getattr(addon, "configure", None)
    if configure is not None:
        configure(set(ctx.options.keys()))
    return addon
