"""`etagwatch probe --candidates STORE` on the command line: checks, progress bar, output."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.cli import CliError, show_progress
from analysis.probe.context import ProbeOptions
from analysis.store import Store, StoreError, open_for_reading


def _store(path: str) -> Store:
    """The store to probe: it must exist and be one (probing never creates a store)."""
    if Path(path).is_dir():
        raise CliError(f"{path}: a folder; --candidates needs a store file (a Parquet dataset "
                       "holds no probe outcomes: probe the store it was exported from)")
    try:
        open_for_reading(Path(path)).close()
        return Store(path)
    except (StoreError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}") from None


def run_candidates(args: argparse.Namespace, options: ProbeOptions) -> int:
    from tqdm import tqdm

    from analysis.probe.candidates.render import run_json, run_text
    from analysis.probe.candidates.run import Settings
    from analysis.probe.candidates.run import run_candidates as probe_all
    from analysis.report_json import write_json

    if args.concurrency < 1:
        raise CliError("--concurrency must be at least 1")
    if not args.rate > 0:
        raise CliError("--rate must be a positive number of requests per second")
    settings = Settings(options, concurrency=args.concurrency, rate=args.rate, again=args.again)
    store = _store(args.candidates)
    bar = tqdm(total=0, desc="probing", unit="resource", file=sys.stderr, leave=False,
               disable=not show_progress(args))

    def started(n: int) -> None:
        bar.total = n
        bar.refresh()

    warned: set[str] = set()

    def done(probed) -> None:  # type: ignore[no-untyped-def]
        """One warning line per failing server (-v: per resource); never with -q."""
        bar.update()
        server = probed.target.server
        if probed.outcome == "error" and not args.quiet and (
                args.verbose or server not in warned):
            warned.add(server)
            bar.write(f"etagwatch: warning: {probed.reason}", file=sys.stderr)

    try:
        run = probe_all(store, settings, on_result=done, on_targets=started)
    finally:
        bar.close()
        store.close()
    text_out = sys.stderr if args.json == "-" else sys.stdout
    print(run_text(run, args.candidates), file=text_out)
    if args.json:
        try:
            write_json(run_json(run, args.candidates), args.json)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise CliError(f"--json {args.json}: {exc.strerror}") from None
    return run.exit_status
