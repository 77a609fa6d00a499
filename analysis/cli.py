"""The `etagwatch` command line: a thin dispatcher over ``analysis.commands.*``.

Exit status, for every sub-command: 0 success (and, for analyze, nothing in --fail-on found),
1 something was found or some input entries were skipped (the command's help says which),
2 usage or input errors (missing file, unreadable store, bad option).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence

from analysis import __version__
from analysis.commands import COMMANDS

EXIT_USAGE = 2
#: As a process killed by SIGPIPE reports itself to the shell (128 + 13), without a traceback.
EXIT_PIPE = 141


class CliError(Exception):
    """A one-line error for the user; printed as ``etagwatch: error: <message>``, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="etagwatch",
        description=(
            "See how HTTP validators (ETag, Last-Modified) are used, wasted and abused: "
            "ETag tracking identifiers, load-balancer churn, and RFC 9110 conformance."
        ),
        epilog="Run 'etagwatch COMMAND --help' for each command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"etagwatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"analysis.commands.{name}")
        except ModuleNotFoundError as exc:  # a command still being built
            if exc.name == f"analysis.commands.{name}":
                continue
            raise
        module.add_parser(sub)
    for command in sub.choices.values():
        _add_common(command)
    return parser


def _add_common(command: argparse.ArgumentParser) -> None:
    """-q and -v, the same on every command."""
    have = {s for a in command._actions for s in a.option_strings}
    if "-q" not in have:
        command.add_argument("-q", "--quiet", action="store_true",
                             help="no progress bars and no informational lines (warnings and "
                             "errors still go to stderr)")
    if "-v" not in have:
        command.add_argument("-v", "--verbose", action="count", default=0,
                             help="more detail on stderr (every skipped entry, every note)")


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``low`` (``--limit``, ``--profiles``, ...)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {low} or more")
        return value

    return parse


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars on stderr only when it is a terminal, never with --quiet (or ingest's
    --no-progress): a log file gets no carriage-return bars."""
    if getattr(args, "quiet", False) or getattr(args, "no_progress", False):
        return False
    return sys.stderr.isatty()


def info(args: argparse.Namespace, message: str) -> None:
    """An informational line on stderr, unless --quiet."""
    if not getattr(args, "quiet", False):
        print(f"etagwatch: {message}", file=sys.stderr)


def warn(message: str) -> None:
    print(f"etagwatch: warning: {message}", file=sys.stderr)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the command is so that it unwinds as after Ctrl-C:
    every ``with`` block closes (servers stopped, stores closed, temporary files removed)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, _frame: object) -> None:
    raise Stopped(signum)


@contextlib.contextmanager
def _stopping_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP handled like SIGINT while a command runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = [n for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]
    old = {n: signal.signal(getattr(signal, n), _stop) for n in names}
    try:
        yield
    finally:
        for n, handler in old.items():
            signal.signal(getattr(signal, n), handler)


def _quiet_stdout() -> None:
    """After EPIPE (``etagwatch analyze | head``): nothing more reaches the closed pipe, not
    even the interpreter's flush at exit."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _stopping_on_signals():
            status = int(args.run(args) or 0)
            sys.stdout.flush()
            return status
    except CliError as exc:
        print(f"etagwatch: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_PIPE
    except Stopped as exc:
        print(f"etagwatch: stopped by {signal.Signals(exc.signum).name}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("etagwatch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())


def ingest_inputs(args: argparse.Namespace, captures: list, db: os.PathLike[str]) -> None:
    """analyze's and report's ingest of their capture inputs (``analysis.inputs``), with the
    command's --client, -q and -v; a CliError when nothing could be read."""
    from analysis.inputs import InputError, ingest_captures

    try:
        ingest_captures(captures, db, client=args.client, progress=show_progress(args),
                        quiet=args.quiet, verbose=args.verbose)
    except InputError as exc:
        raise CliError(str(exc)) from None
