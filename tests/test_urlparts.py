"""The fast URL split agrees with urllib.parse.urlsplit on every input, valid or not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.urlparts import split_url, split_url_slow


def _outcome(fn, url):
    try:
        return fn(url)
    except ValueError as exc:
        return ("ValueError", type(exc).__name__)


ALPHABET = st.sampled_from([*"aZ09.-_~:/?#[]@!$&'()*+,;=% \t\r\nHTPSWhtpsw", "é", "İ", "\x00"])
PIECES = st.sampled_from(
    ["http", "HTTPS", "https", "ws", "wss", "ftp", "data", "://", ":", "//", "/", "?", "#", "@",
     "[::1]", "[", "]", "example.com", "EXAMPLE.com", ":8080", ":0", ":99999", ":x", "%20",
     "é", "\t", "\n", " ", "a=b&c", "user:pw@", "xn--bcher-kva.example"]
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(PIECES, max_size=9).map("".join) | st.text(ALPHABET, max_size=40))
def test_fast_split_equals_urlsplit(url):
    assert _outcome(split_url, url) == _outcome(split_url_slow, url)


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("https://Www.Example.COM/a/b?x=1#frag", ("https", "www.example.com", 443, "/a/b", "x=1")),
        ("HTTP://h.test:8080", ("http", "h.test", 8080, None, None)),
        ("wss://h.test:0/s", ("wss", "h.test", 443, "/s", None)),  # port 0 -> the default
        ("https://h.test:x/", ("https", "h.test", None, "/", None)),  # unreadable port
        ("https://user:pw@h.test/#?q", ("https", "h.test", 443, "/", None)),
        ("https://[::1]:8443/p", ("https", "::1", 8443, "/p", None)),  # via urlsplit
        ("h.test/x", (None, None, None, "h.test/x", None)),
    ],
)
def test_examples(url, parts):
    assert split_url(url) == parts


def test_invalid_ipv6_raises_like_urlsplit():
    with pytest.raises(ValueError):
        split_url("https://[::1/x")
