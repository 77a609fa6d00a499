"""`etagwatch lab`: start the lab (real nginx, Apache httpd, haproxy and Python origins on
loopback), print what each origin demonstrates, and run until Ctrl-C; or browse it with
headless Chromium (--browse N) or regenerate the sample captures (--capture DIR)."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from analysis.cli import CliError

DESCRIPTION = """\
Start every lab origin on free loopback ports under .test site names:
  a plain nginx origin (stable), a tracking pixel and an echo tracker (identifiers),
  two Apache httpd behind haproxy (inode churn), two nginx behind haproxy (mtime churn),
  a digest-ETag origin (benign), a random-ETag origin (unstable), and a first-party page
  embedding them all. Everything started is stopped on exit, error or Ctrl-C.

Every site is served over HTTP and over HTTPS (HTTP/2 where the client offers it), each on a
port of its own, with certificates from a CA made at start (printed: the path of its PEM file).

Browsers need the names mapped to loopback: the printed --host-resolver-rules value does it
for Chromium; the printed --ignore-certificate-errors-spki-list value makes it trust the lab CA
(and keep HTTPS responses in its cache, so it revalidates them). Through mitmdump, add
-s analysis/lab/mitm_route.py --set ssl_verify_upstream_trusted_ca=<the lab CA>."""

EPILOG = """\
examples:
  etagwatch lab                         # run until Ctrl-C
  etagwatch lab --browse 3 --out hars   # 3 fresh Chromium profiles, one HAR each
  etagwatch lab --browse 3 --https      # the same over HTTPS and HTTP/2
  etagwatch lab --capture sample_captures
exit status: 0 success, 2 a server or Chromium could not start (the message says which)."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "lab",
        help="run real origins that show each validator behaviour (needs nginx, apache2, haproxy)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--browse",
        type=int,
        metavar="N",
        help="browse the lab with N fresh headless Chromium profiles, then stop",
    )
    group.add_argument(
        "--capture",
        type=Path,
        metavar="DIR",
        help="regenerate sample captures (HAR and flow files) into DIR, then stop",
    )
    p.add_argument(
        "--visits",
        type=int,
        default=3,
        metavar="V",
        help="visits per profile (default 3; each revisit revalidates)",
    )
    p.add_argument(
        "--https",
        action="store_true",
        help="--browse the HTTPS page (HTTP/2, Chromium trusting the lab CA) instead of HTTP",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("lab-hars"),
        metavar="DIR",
        help="where --browse writes profile-N.har (default ./lab-hars)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from analysis.lab.lab import Lab
    from analysis.lab.net import LabError

    if args.browse is not None and args.browse < 1:
        raise CliError("--browse needs at least 1 profile")
    if args.visits < 1:
        raise CliError("--visits needs at least 1 visit")
    if args.https and args.browse is None:
        raise CliError("--https goes with --browse N (the lab always serves both schemes)")
    try:
        if args.capture is not None:
            from analysis.lab.samples import write_sample_captures

            files = write_sample_captures(args.capture, visits=args.visits)
            for path in files:
                print(path)
            return 0
        with Lab() as lab:
            print("\n".join(lab.describe()))
            print(f"\nchromium --host-resolver-rules='{lab.resolver_rules()}' {lab.page_url}")
            _print_https(lab)
            if args.browse is not None:
                from analysis.lab.capture import browse_to_hars

                scheme = "https" if args.https else "http"
                for har in browse_to_hars(
                    lab, args.out, profiles=args.browse, visits=args.visits, scheme=scheme
                ):
                    print(har)
                return 0
            print("\nlab running; Ctrl-C stops it", flush=True)
            threading.Event().wait()
    except LabError as exc:
        raise CliError(str(exc)) from None
    return 0


def _print_https(lab) -> None:  # type: ignore[no-untyped-def]
    """The HTTPS URLs, the lab CA, and how Chromium and mitmdump trust it."""
    from analysis.lab.trust import chromium_trust_args

    print("\nover HTTPS (HTTP/2):")
    print("\n".join(lab.describe("https")))
    print(f"\nlab CA: {lab.ca.cert_path}")
    print(
        f"chromium --host-resolver-rules='{lab.resolver_rules()}' "
        f"{chromium_trust_args(lab.ca.cert_path)[0]} {lab.https_page_url}"
    )
    print(
        "mitmdump -s addons/etagwatch.py -s analysis/lab/mitm_route.py "
        f"--set ssl_verify_upstream_trusted_ca={lab.ca.cert_path}"
    )
