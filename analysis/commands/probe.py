"""`etagwatch probe URL`: fetch one URL as several fresh clients and test its validators;
`etagwatch probe --candidates STORE`: settle a store's open verdicts the same way."""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.cli import CliError
from analysis.probe.candidates.command import run_candidates
from analysis.probe.candidates.pacing import DEFAULT_CONCURRENCY, DEFAULT_RATE
from analysis.probe.context import ProbeOptions
from analysis.probe.errors import ProbeError
from analysis.store import Store, StoreError

if TYPE_CHECKING:  # the runner pulls in pandas: keep it out of every `etagwatch` start-up
    from analysis.probe.runner import ProbeRun

EPILOG = """\
The probe sends its own requests to URL and nowhere else (no redirects followed, no proxy from
the environment). First 2 or more fresh clients (own connections, no cookies, no cache) each
fetch it and revalidate twice; the detectors of 'analyze' judge the ETags they got (stable,
churn, identifier, unstable). Then, on the first client's validators:
  revalidate-etag       If-None-Match: <its ETag>            expect 304 (with the ETag)
  revalidate-weak-etag  If-None-Match: W/<its strong ETag>   expect 304 (weak comparison)
  forged-etag           If-None-Match: <a tag never issued>  expect 200; 304 or an echo = tracker
  if-modified-since     If-Modified-Since: <Last-Modified>    expect 304
  if-match-wrong        If-Match: <another tag>               expect 412
  if-match-weak         If-Match: W/<its ETag>                expect 412 (strong comparison)
  head-vs-get           HEAD                                  same ETag and Last-Modified
  gzip-vs-identity      Accept-Encoding gzip vs identity      different bytes, different strong ETags
  if-range-current/-stale  Range with If-Range                206 when current, 200 when stale
Expectations come from the RFC 9110 evaluator (analysis.conditional), not from a table.

Every request is stored as an exchange (clients probe-1..N, probe-forged; source probe:<URL>):
in a temporary store deleted afterwards, or appended to --db FILE (only this run is judged).

Exit status: 0 every test passed; 1 a test failed or an ETag tracking mechanism / identifier
was found; 2 usage or connection error (timeout, DNS, TLS, refused, not HTTP, redirect, non-2xx).

--candidates STORE re-probes every resource of STORE whose verdict is identifier,
likely-identifier or undetermined, and records each outcome in STORE; 'etagwatch analyze STORE'
then shows the settled verdict and what settled it. Per resource: N fresh clients (a new
connection per request, no cookies) each GET it, then revalidate twice with the ETag they hold,
round by round; then a client sends If-None-Match with a tag never issued.
  confirms identifier   the forged tag is echoed, or answered 304 while each client has its
                        own value; or each client kept its own value (304s) for identical bytes
  clears -> stable      every fresh client got the same value, the forged tag refused
  clears -> unstable    a new value on every response, never a 304
  inconclusive          anything else (what was seen is recorded)
At most --concurrency resources at once and --rate requests per second to one host; a host
that fails is recorded (twice: its other resources are not tried) and never stops the run.
Resources already settled by a probe are skipped unless --again. Exit status: 0 the run
finished; 1 an identifier was confirmed; 2 usage error or an unusable store.

examples:
  etagwatch probe https://example.org/pixel.gif
  etagwatch probe --candidates capture.sqlite --rate 1 --json probe.json
  etagwatch probe --candidates crawl.sqlite --cacert lab-ca.pem --concurrency 8
  etagwatch probe http://127.0.0.1:8080/app.js --clients 5 --json report.json
  etagwatch probe https://staging.test/ --insecure --header 'Authorization: Bearer x' --json -
"""

#: Request fields the checks set themselves; a --header with one of them would falsify them.
RESERVED = frozenset(
    {"if-none-match", "if-match", "if-modified-since", "if-unmodified-since", "if-range", "range"}
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` -> (name, value); a one-line error for anything else."""
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon or not _TOKEN.match(name):
        raise CliError(f"--header {text!r}: expected 'Name: value'")
    if name.lower() in RESERVED:
        raise CliError(f"--header {name}: the probe sets this field itself in its tests")
    return name, value.strip()


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "probe",
        help="test one URL's validators: tracking, churn and RFC 9110 conformance; or settle "
        "a store's open verdicts (--candidates)",
        description="Fetch URL as fresh clients and test how it handles ETag and Last-Modified;\n"
        "or, with --candidates STORE, re-probe every open verdict of a store and record what\n"
        "settles it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", metavar="URL", nargs="?",
                   help="http:// or https:// URL of one resource (or --candidates STORE)")
    p.add_argument("--candidates", metavar="STORE",
                   help="probe every identifier, likely-identifier and undetermined resource "
                   "of STORE and record the outcomes there (see below)")
    p.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
                   help=f"with --candidates: resources probed at once (default "
                   f"{DEFAULT_CONCURRENCY})")
    p.add_argument("--rate", type=float, default=DEFAULT_RATE, metavar="PER_SECOND",
                   help=f"with --candidates: requests per second to one host at most (default "
                   f"{DEFAULT_RATE:g})")
    p.add_argument("--again", action="store_true",
                   help="with --candidates: also probe resources an earlier probe settled")
    p.add_argument(
        "--clients", type=int, default=3, metavar="N", help="fresh clients, at least 2 (default 3)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="per-request connect/read timeout (default 10)",
    )
    p.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra request field on every request (repeatable); stored keyed-hashed if secret",
    )
    p.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    p.add_argument("--cacert", metavar="PEM",
                   help="also trust this CA certificate (a staging server's or the lab's)")
    p.add_argument("--json", metavar="FILE|-", help="write the JSON report to FILE, or stdout")
    p.add_argument(
        "--db", metavar="FILE", help="append the exchanges to this store (default: a temporary one)"
    )
    p.set_defaults(run=run)


def _probe(url: str, options: ProbeOptions, db: str | None) -> ProbeRun:
    from analysis.probe.runner import run_probe

    if db:
        try:
            store = Store(db)
        except (StoreError, OSError) as exc:
            raise CliError(str(exc)) from None
        try:
            return run_probe(url, options, store)
        finally:
            store.close()
    with tempfile.TemporaryDirectory(prefix="etagwatch-probe-") as tmp:
        store = Store(Path(tmp) / "probe.sqlite")
        try:
            return run_probe(url, options, store)
        finally:
            store.close()


def _options(args: argparse.Namespace) -> ProbeOptions:
    if args.clients < 2:
        raise CliError("--clients must be at least 2 (one client cannot tell an identifier)")
    if not args.timeout > 0:
        raise CliError("--timeout must be a positive number of seconds")
    if args.cacert:
        from analysis.probe.client import tls_context

        try:
            tls_context(ca_file=args.cacert)
        except ProbeError as exc:
            raise CliError(str(exc)) from None
    return ProbeOptions(
        clients=args.clients,
        timeout=args.timeout,
        insecure=args.insecure,
        ca_file=args.cacert,
        headers=tuple(parse_header(h) for h in args.header),
    )


def run(args: argparse.Namespace) -> int:
    from analysis.probe.render import probe_json, probe_text

    if args.candidates is not None:
        if args.url:
            raise CliError("give a URL or --candidates STORE, not both")
        if args.db:
            raise CliError("--db: with --candidates the outcomes go into STORE itself")
        return run_candidates(args, _options(args))
    if not args.url:
        raise CliError("give the URL to probe, or --candidates STORE")
    options = _options(args)
    try:
        result = _probe(args.url, options, args.db)
    except ProbeError as exc:
        raise CliError(str(exc)) from None

    from analysis.report_json import analysis_to_json, write_json
    from analysis.report_text import render

    # as analyze does: with --json -, stdout carries the JSON alone and the text goes to stderr
    text_out = sys.stderr if args.json == "-" else sys.stdout
    print(render(result.analysis).rstrip("\n") + "\n", file=text_out)
    print(probe_text(result), file=text_out)
    if args.json:
        report = analysis_to_json(result.analysis)
        report["probe"] = probe_json(result)
        try:
            write_json(report, args.json)
        except BrokenPipeError:
            raise  # a closed pipe on stdout: quiet (analysis.cli)
        except OSError as exc:
            raise CliError(f"--json {args.json}: {exc.strerror}") from None
    return result.exit_status
