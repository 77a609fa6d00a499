"""Keep the proxy running whatever an etagwatch hook does.

A hook that raises must never disturb traffic: the flow passes untouched and the failure is
logged once per kind (addon, hook and exception type), so a bug that hits every flow does not
flood the event log.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

logger = logging.getLogger("etagwatch")

F = TypeVar("F", bound=Callable[..., Any])

#: How often each kind of failure happened, for tests and the report command.
FAILURES: Counter[str] = Counter()


def never_raise(where: str) -> Callable[[F], F]:
    """Decorate a hook: exceptions are counted, logged on first occurrence, and swallowed."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                report(where, exc)
                return None

        return guarded  # type: ignore[return-value]

    return wrap


def report(where: str, exc: BaseException) -> None:
    kind = f"{where}: {type(exc).__name__}"
    FAILURES[kind] += 1
    if FAILURES[kind] == 1:
        logger.warning(
            f"etagwatch: {kind}: {exc} (flow passed untouched; further {type(exc).__name__} "
            f"errors in {where} are counted, not logged)"
        )
