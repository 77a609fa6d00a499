"""The sites a crawl visits: URLs, files of URLs, Tranco-style CSVs; bad entries named."""

from __future__ import annotations

import pytest

from analysis.crawl.sitelist import SiteListError, read_sites


def test_urls_files_and_tranco_csv_mix_in_order_without_duplicates(tmp_path):
    urls = tmp_path / "sites.txt"
    urls.write_text("# mine\nhttps://a.example/x\n\nhttp://b.example:8080\nc.example\n")
    tranco = tmp_path / "top.csv"
    tranco.write_text("rank,domain\n1,google.com\n2,a.example\n3,bbc.co.uk\n")
    got = read_sites(["https://z.example/", str(urls), str(tranco), "https://z.example/"])
    assert got == ["https://z.example/", "https://a.example/x", "http://b.example:8080/",
                   "https://c.example/", "https://google.com/", "https://a.example/",
                   "https://bbc.co.uk/"]


def test_top_keeps_the_first_n(tmp_path):
    tranco = tmp_path / "top.csv"
    tranco.write_text("".join(f"{n},site{n}.example\n" for n in range(1, 1001)))
    assert read_sites([str(tranco)], limit=3) == [
        "https://site1.example/", "https://site2.example/", "https://site3.example/"]


@pytest.mark.parametrize(("text", "where", "why"), [
    ("1,a.example\nx,b.example\n", ":2", "rank 'x' is not a number"),
    ("1,a.example\n2\n", ":2", "expected 'rank,domain'"),
    ("https://a.example/\nftp://b.example/\n", ":2", "not an http(s) URL"),
    ("https://a.example:99999/\n", ":1", "is not a URL"),
])
def test_a_bad_entry_is_named_by_file_and_line(tmp_path, text, where, why):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(SiteListError) as caught:
        read_sites([str(path)])
    assert str(caught.value).startswith(f"{path}{where}: ") and why in str(caught.value)


def test_a_missing_file_is_not_taken_for_a_url(tmp_path):
    with pytest.raises(SiteListError, match="no such file"):
        read_sites([str(tmp_path / "nope.txt")])
