"""HAR reader: the real corpus, exporter quirks, streaming across chunk boundaries."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import msgspec
import pytest

from analysis.exchange import Exchange
from analysis.readers import HarReader, Note, ReadError, Skip, jsonstream, open_capture
from analysis.store import Store

KEY = b"k" * 32


# --- builders shared with the other reader / store / privacy tests ---------------------------
def make_entry(
    url: str = "https://example.com/a.js",
    *,
    method: str = "GET",
    status: int = 200,
    req_headers: list[tuple[str, str]] = (),
    resp_headers: list[tuple[str, str]] = (),
    text: str | None = None,
    encoding: str | None = None,
    **extra: object,
) -> dict:
    """One HAR 1.2 entry as a dict."""
    content: dict = {"size": len(text) if text else 0, "mimeType": "text/plain"}
    if text is not None:
        content["text"] = text
    if encoding:
        content["encoding"] = encoding
    entry = {
        "startedDateTime": "2024-05-01T10:00:00.000Z",
        "time": 1,
        "request": {
            "method": method,
            "url": url,
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": n, "value": v} for n, v in req_headers],
            "cookies": [],
            "queryString": [],
            "headersSize": -1,
            "bodySize": 0,
        },
        "response": {
            "status": status,
            "statusText": "",
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": n, "value": v} for n, v in resp_headers],
            "cookies": [],
            "content": content,
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(text) if text else 0,
        },
        "cache": {},
        "timings": {"send": 0, "wait": 1, "receive": 0},
    }
    entry.update(extra)
    return entry


def make_har(entries: list[dict], pages: list[dict] | None = None) -> dict:
    log: dict = {"version": "1.2", "creator": {"name": "test", "version": "1"}}
    if pages is not None:
        log["pages"] = pages
    log["entries"] = entries
    return {"log": log}


def write_har(path: Path, har: dict | bytes) -> Path:
    data = har if isinstance(har, bytes) else json.dumps(har).encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def read_all(path: Path, **kw) -> list:
    return list(open_capture(path, client="c", key=KEY, **kw))


def exchanges(items: list) -> list[Exchange]:
    return [i for i in items if isinstance(i, Exchange)]


# --- the real corpus -------------------------------------------------------------------------
def _independent_counts(path: Path) -> dict[str, int] | None:
    """Counts by a plain JSON scan, following SOURCES.md, restricted to entries that are HTTP
    exchanges (an http(s) request.url); None when the file is not JSON."""
    raw = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except ValueError:
        return None
    log = doc.get("log") if isinstance(doc, dict) else None
    if isinstance(log, dict) and isinstance(log.get("entries"), list):
        entries = log["entries"]
    elif isinstance(doc, dict) and "request" in doc and "response" in doc:
        entries = [doc]  # a bare entry, which the reader reads as one entry
    else:
        return None

    def has(headers: object, name: str) -> bool:
        return isinstance(headers, list) and any(
            isinstance(h, dict) and str(h.get("name", "")).strip().lower() == name for h in headers
        )

    counts = {"exchanges": 0, "etag": 0, "inm": 0, "s304": 0}
    for e in entries:
        url = e.get("request", {}).get("url", "")
        if not (isinstance(url, str) and url.lower().startswith(("http://", "https://"))):
            continue
        counts["exchanges"] += 1
        counts["etag"] += has(e["response"].get("headers"), "etag")
        counts["inm"] += has(e["request"].get("headers"), "if-none-match")
        counts["s304"] += e["response"].get("status") == 304
    return counts


@pytest.fixture(scope="module")
def corpus_store(real_hars: Path, tmp_path_factory) -> Store:
    from analysis.ingest import ingest_paths

    store = Store(tmp_path_factory.mktemp("corpus") / "corpus.sqlite")
    report = ingest_paths([real_hars], store)
    store.report = report  # type: ignore[attr-defined]
    yield store
    store.close()


def test_every_real_file_is_read_and_counts_match_a_plain_json_scan(real_hars, corpus_store):
    report = corpus_store.report
    files = sorted(p for p in real_hars.rglob("*.har"))
    assert report.files == len(files) == 291
    conn = corpus_store.connection
    checked = 0
    for path in files:
        expected = _independent_counts(path)
        if expected is None:
            continue
        row = conn.execute(
            "SELECT count(*), count(etag), count(req_if_none_match),"
            " coalesce(sum(status = 304), 0) FROM exchanges WHERE source = ?",
            (str(path),),
        ).fetchone()
        got = dict(zip(("exchanges", "etag", "inm", "s304"), row, strict=True))
        assert got == expected, path
        checked += 1
    assert checked == 289  # every file but bad.har and brokenfile.har
    totals = conn.execute(
        "SELECT count(etag), count(req_if_none_match), sum(status = 304) FROM exchanges"
    ).fetchone()
    # SOURCES.md totals plus the bare entry's ETag, minus what the skipped entries held
    assert totals[0] >= 1228 - 40 and totals[1] == 47 and totals[2] == 65


def test_broken_real_files_give_one_clear_line_each(corpus_store, real_hars):
    errors = {Path(e.file).relative_to(real_hars).as_posix(): e.message for e in corpus_store.report.errors}
    assert set(errors) == {"mitmproxy/corrupted_har/brokenfile.har", "httpolice/misc_data/bad.har"}
    assert errors["mitmproxy/corrupted_har/brokenfile.har"].startswith("not valid JSON")
    assert "byte 22" in errors["mitmproxy/corrupted_har/brokenfile.har"]
    assert "no 'log' object" in errors["httpolice/misc_data/bad.har"]
    assert all("\n" not in m for m in errors.values())


def test_real_skips_name_file_entry_and_reason(corpus_store, real_hars):
    skipped = corpus_store.table("skipped")
    by_reason = skipped.groupby("reason").size().to_dict()
    assert by_reason["data: URL, no HTTP exchange"] == 36
    assert by_reason["request.url is empty"] == 1
    nested = skipped[skipped.reason.str.contains("postData")]
    assert sorted(Path(f).name for f in nested.file) == [
        "missing_page.har", "missing_pageref.har", "missing_pageref.har"
    ]
    empty = skipped[skipped.reason == "request.url is empty"].iloc[0]
    assert empty.file.endswith("lalibre/001.har")
    entries = json.loads(Path(empty.file).read_text())["log"]["entries"]
    assert entries[int(empty.entry_index)]["request"]["url"] == ""


def test_bare_single_entry_is_read_with_a_note(real_hars):
    items = read_all(real_hars / "haralyzer" / "single_entry.har")
    notes = [i for i in items if isinstance(i, Note)]
    (ex,) = exchanges(items)
    assert notes and "bare HAR entry" in notes[0].message
    assert ex.entry_index == 0 and ex.etag is not None and ex.last_modified_ts is not None


def test_chrome_quirks(real_hars):
    items = exchanges(read_all(real_hars / "mitmproxy" / "chrome.har"))
    first = items[0]
    names = [n for n, _ in json.loads(first.req_headers)]
    assert not any(n.startswith(":") for n in names)  # pseudo-headers split off
    assert "host" in names  # from :authority
    assert first.status == 304 and first.body_size == 0  # cached body is not wire bytes
    assert first.content_hash is not None and first.content_size == 23866
    assert first.http_version == "HTTP/2" and first.page_url == "https://mitmproxy.org/"
    failed = items[1]
    assert failed.status is None and failed.error


def test_firefox_and_safari_cache_entries_are_kept_and_marked(real_hars):
    ff = exchanges(read_all(real_hars / "mitmproxy" / "firefox.har"))
    hits = [e for e in ff if e.from_cache]
    kinds = [e.cache_kind for e in hits]
    # 5 without headers; 4 more listed with headers but 0 ms and no send / wait / receive
    assert kinds.count("firefox-cache") == 5 and kinds.count("no-network") == 4
    assert all(e.body_size == 0 for e in hits)
    assert sum(e.status == 304 for e in ff) == 4
    safari = exchanges(read_all(real_hars / "mitmproxy" / "safari.har"))
    mem = [e for e in safari if e.from_cache]
    assert mem and {e.cache_kind for e in mem} == {"memory"}
    assert any(e.etag for e in mem)


def test_bom_file_is_read(real_hars):
    items = exchanges(read_all(real_hars / "httpolice" / "fiddler+ie11_connect.har"))
    assert items and items[0].method == "CONNECT" and items[0].host == "httpbin.org"


def test_unquoted_etag_is_kept_with_its_violation(real_hars):
    items = exchanges(read_all(real_hars / "haralyzer" / "cnn.har"))
    bad = [e for e in items if e.etag and e.etag_violations]
    assert bad
    assert all(e.etag_opaque and "quote" in e.etag_violations for e in bad)


# --- synthetic files -------------------------------------------------------------------------
def test_repeated_headers_case_and_backend_hints(tmp_path):
    entry = make_entry(
        req_headers=[("If-None-Match", '"a"'), ("IF-NONE-MATCH", '"b"'), (":authority", "x.test")],
        resp_headers=[
            ("ETag", '"v1"'), ("X-Backend-Server", "web-3"), ("X-Cache", "HIT"),
            ("Date", "Wed, 01 May 2024 10:00:00 GMT"), ("Last-Modified", "garbage"),
        ],
        text="aGVsbG8=", encoding="base64",
    )
    (ex,) = exchanges(read_all(write_har(tmp_path / "a.har", make_har([entry]))))
    assert ex.req_if_none_match == '"a", "b"'
    assert json.loads(ex.backend) == {"x-backend-server": "web-3", "x-cache": "HIT"}
    assert ex.date_ts == 1714557600.0 and ex.last_modified == "garbage"
    assert ex.last_modified_ts is None
    import hashlib

    assert ex.content_hash == hashlib.sha256(b"hello").hexdigest() and ex.content_size == 5


def test_page_context_and_third_party(tmp_path):
    pages = [{"id": "p1", "title": "https://www.news.co.uk/story", "startedDateTime": "x"}]
    entries = [
        make_entry("https://static.news.co.uk/a.css", pageref="p1"),
        make_entry("https://tracker.example.net/p.gif", pageref="p1"),
        make_entry("https://cdn.other.org/x.js", req_headers=[("Referer", "https://blog.org/")]),
        make_entry("https://cdn.other.org/y.js"),
    ]
    items = exchanges(read_all(write_har(tmp_path / "p.har", make_har(entries, pages))))
    assert [e.first_party for e in items] == ["news.co.uk", "news.co.uk", "blog.org", None]
    assert [e.third_party for e in items] == [False, True, True, None]


def test_gz_and_folders(tmp_path):
    har = make_har([make_entry(resp_headers=[("ETag", '"z"')])])
    write_har(tmp_path / "x.har.gz", har)
    (ex,) = exchanges(read_all(tmp_path / "x.har.gz"))
    assert ex.etag_opaque == "z"


def test_bad_entry_never_aborts_the_file(tmp_path):
    entries = [
        make_entry("https://a.test/1"),
        {"request": "not an object", "response": 3},
        make_entry("data:image/png;base64,AAAA"),
        [1, 2, 3],
        {**make_entry("https://a.test/2"), "response": {"status": "304", "headers": None}},
        make_entry("https://a.test/3", status=0),
    ]
    items = read_all(write_har(tmp_path / "b.har", make_har(entries)))
    skips = [i for i in items if isinstance(i, Skip)]
    exs = exchanges(items)
    assert [s.entry_index for s in skips] == [1, 2, 3]
    assert skips[1].reason == "data: URL, no HTTP exchange"
    assert [e.entry_index for e in exs] == [0, 4, 5]
    assert exs[1].status == 304  # "304" as a string, recovered by the lenient path
    assert exs[2].status is None and "status 0" in exs[2].error


def test_truncated_file_keeps_entries_before_the_damage(tmp_path):
    data = json.dumps(make_har([make_entry(f"https://a.test/{i}") for i in range(5)])).encode()
    path = write_har(tmp_path / "t.har", data[: len(data) * 3 // 4])
    got = []
    with pytest.raises(ReadError) as err:
        got.extend(open_capture(path, client="c", key=KEY))
    assert 2 <= len(got) < 5
    assert "t.har" in str(err.value) and "file ends inside" in err.value.message


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty file"), (b"\x00\x01binary", "not a HAR"), (b"[1, 2]", "not a HAR file")],
)
def test_files_that_are_not_hars(tmp_path, data, message):
    path = tmp_path / "n.har"
    path.write_bytes(data)
    with pytest.raises(ReadError) as err:
        read_all(path)
    assert message in err.value.message


def test_streaming_across_chunk_boundaries_gives_identical_records(real_hars, monkeypatch):
    path = real_hars / "har2tree" / "lemonde.har"
    whole = read_all(path)
    monkeypatch.setattr(jsonstream, "CHUNK", 1000)
    reader = HarReader(path, client="c", key=KEY)
    original = jsonstream.JSONStream.__init__

    def small_chunks(self, fileobj, chunk=1000):
        original(self, fileobj, chunk=997)

    monkeypatch.setattr(jsonstream.JSONStream, "__init__", small_chunks)
    chunked = list(reader)
    assert len(whole) > 50
    assert [msgspec.to_builtins(i) for i in chunked] == [msgspec.to_builtins(i) for i in whole]


def test_worker_processes_give_identical_records_in_order(real_hars, monkeypatch):
    from analysis.readers import har as har_module

    monkeypatch.setattr(har_module, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(har_module, "BATCH_ENTRIES", 7)
    path = real_hars / "har2tree" / "libe.har"
    serial = list(HarReader(path, client="c", key=KEY))
    parallel = list(HarReader(path, client="c", key=KEY, workers=2))
    assert len(serial) > 20 and any(isinstance(i, Skip) for i in serial)
    assert [msgspec.to_builtins(i) for i in parallel] == [msgspec.to_builtins(i) for i in serial]


def test_stream_buffer_stays_bounded_by_chunk_and_entry(tmp_path):
    entries = [make_entry(f"https://a.test/{i}", text="x" * 3000) for i in range(400)]
    path = write_har(tmp_path / "big.har", make_har(entries))
    biggest = 0
    keys = []
    with path.open("rb") as fh:
        stream = jsonstream.JSONStream(fh, chunk=10_000)
        for key in stream.object_keys():
            keys.append(key)
            for inner in stream.object_keys():
                if inner != "entries":
                    stream.skip()
                    continue
                for _ in stream.array_items():
                    stream.value()
                    biggest = max(biggest, len(stream._buf))
    assert keys == ["log"]
    assert path.stat().st_size > 1_000_000
    assert biggest < 3 * 10_000 + 2 * 4000  # chunk-sized, not file-sized
