"""Registrable domains (eTLD+1) from the Public Suffix List shipped with ``publicsuffix2``.

The list is bundled with the package, so no network is needed at run time. IP addresses and
single-label hosts are their own "site"; a TLD the list does not name (such as the lab's
``.test``) follows the list's default rule ``*``.
"""

from __future__ import annotations

import contextlib
import ipaddress
from functools import lru_cache
from urllib.parse import urlsplit

from publicsuffix2 import PublicSuffixList

_PSL = PublicSuffixList()


@lru_cache(maxsize=65536)
def registrable_domain(host: str | None) -> str | None:
    """``www.bbc.co.uk`` -> ``bbc.co.uk``; an IP or a single label is returned as is."""
    if not host:
        return None
    host = host.strip().strip("[]").rstrip(".").lower()
    if not host:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    if "." not in host:
        return host
    with contextlib.suppress(UnicodeError):
        host = host.encode("idna").decode("ascii")
    # publicsuffix2's get_sld answers just the TLD for a TLD the list does not name
    # ('news.lab.test' -> 'test'); the PSL algorithm's default rule '*' makes that TLD the public
    # suffix and 'lab.test' the registrable domain. So take the suffix and add one label.
    suffix = _PSL.get_tld(host, wildcard=True)
    if not suffix or host == suffix:
        return host
    labels = host.split(".")
    return ".".join(labels[-(suffix.count(".") + 2) :])


def url_host(url: str | None) -> str | None:
    """Lower-case host of an absolute URL, or None."""
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host or None


def site_of_url(url: str | None) -> str | None:
    """Registrable domain of an absolute http(s) URL, or None."""
    return registrable_domain(url_host(url))
