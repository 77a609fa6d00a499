"""Bad etagwatch options stop the proxy with one clear line, or are refused while it runs.

mitmproxy parses ``--set`` values of a script's options only when the script registers them,
all at once: one bad boolean (``etagwatch_annotate=maybe``) made that update fail and mitmproxy
dropped the whole script without a word, so the proxy ran on recording nothing. So each addon
applies its own options' ``--set`` values in ``load`` (:func:`apply_set_values`), one option
at a time, and says which one is wrong.

What a bad value does (:func:`refuse`): at startup, one error line, which makes mitmdump and
mitmweb exit with status 1 as for their own bad options (their ErrorCheck stops on any error
logged during startup); raising ``OptionsError`` there would print a traceback instead. Once
running (``:set`` in mitmproxy's console, mitmweb's options), ``OptionsError``: mitmproxy keeps
the old value and shows the reason.
"""

from __future__ import annotations

import logging
import os
import re
import weakref
from collections.abc import Iterable

from mitmproxy import ctx, exceptions

logger = logging.getLogger("etagwatch")

#: A header field name (RFC 9110 5.1 token).
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


#: Masters whose ``running`` hook has fired (see :func:`started`).
_RUNNING: weakref.WeakSet = weakref.WeakSet()


def started() -> None:
    """Called from an addon's ``running`` hook: from now on bad options raise."""
    _RUNNING.add(ctx.master)


def refuse(message: str) -> None:
    """Report a bad option: raise while running, one error line while starting (the caller
    then leaves the feature off; the proxy exits before it serves anything)."""
    if ctx.master in _RUNNING:
        raise exceptions.OptionsError(message)
    logger.error(message)


def apply_set_values(loader, names: Iterable[str]) -> None:
    """Apply the ``--set`` values of the options just added, one option at a time; a value
    that does not parse is refused with the option's name and dropped, so the others apply."""
    options = loader.master.options
    deferred = getattr(options, "deferred", {})
    for name in names:
        raw = getattr(deferred.get(name), "val", None)  # mitmproxy keeps --set strings unparsed
        if raw is None:
            continue
        specs = [f"{name}={value}" for value in raw] or [name]
        try:
            options.set(*specs)
        except exceptions.OptionsError as exc:
            shown = " ".join(f"--set {spec}" for spec in specs)
            logger.error(f"etagwatch: {shown}: {exc}")
        deferred.pop(name, None)


def header_names(option: str, values: Iterable[str], *, prefix_star: bool = False) -> None:
    """Each value a header field name (a trailing * allowed where it matches a prefix)."""
    for value in values:
        name = value[:-1] if prefix_star and value.endswith("*") else value
        if not _TOKEN.match(name):
            what = "a header name or a name prefix ending in *" if prefix_star else "a header name part"
            refuse(f"etagwatch: {option}: {value!r} is not {what}")
            return


def store_path_problem(path: str) -> str | None:
    """Why a store cannot be created or opened at ``path`` (checked before the writer process
    starts, so the message names the folder or file at fault), or None."""
    if os.path.isdir(path):
        return "is a folder, not a store file"
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        return f"folder {folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"folder {folder} is not writable (SQLite writes its journal next to the store)"
    if os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        return "is not readable and writable"
    return None
