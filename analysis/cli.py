"""The `etagwatch` command line: a thin dispatcher over ``analysis.commands.*``.

Exit status, for every sub-command: 0 success (and, for analyze, nothing in --fail-on found),
1 something was found or some input entries were skipped (the command's help says which),
2 usage or input errors (missing file, unreadable store, bad option).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from analysis import __version__
from analysis.commands import COMMANDS

EXIT_USAGE = 2


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except CliError as exc:
        print(f"etagwatch: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("etagwatch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
