"""Registrable domains decide first- versus third-party context, so they must follow the PSL."""

import pytest

from analysis.sites import registrable_domain, site_of_url


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("www.bbc.co.uk", "bbc.co.uk"),  # a listed two-label suffix
        ("a.b.example.com", "example.com"),
        ("foo.blogspot.com", "foo.blogspot.com"),  # private-section suffix blogspot.com
        ("a.b.c.kawasaki.jp", "b.c.kawasaki.jp"),  # wildcard rule *.kawasaki.jp
        ("news.lab.test", "lab.test"),  # unlisted TLD: the default rule '*'
        ("pixel.tracker.test", "tracker.test"),
        ("WWW.Example.COM.", "example.com"),  # case and trailing dot
        ("co.uk", "co.uk"),  # a bare public suffix is its own site
        ("localhost", "localhost"),
        ("127.0.0.1", "127.0.0.1"),  # addresses are not split into labels
        ("[::1]", "::1"),
        ("", None),
    ],
)
def test_registrable_domain_follows_the_public_suffix_list(host: str, expected: str | None) -> None:
    assert registrable_domain(host) == expected


def test_lab_sites_are_third_party_to_each_other() -> None:
    assert site_of_url("http://news.lab.test:8080/") != site_of_url("http://pixel.tracker.test/p.gif")
    assert site_of_url("https://static.example.com/a.js") == site_of_url("https://www.example.com/")
