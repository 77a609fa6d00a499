"""Privacy by default: no cookie, credential or body bytes in the store file, ever."""

from __future__ import annotations

import base64
import json
import sqlite3

from test_readers_har import make_entry, make_har, write_har

from analysis.etag import parse_etag, weak_match
from analysis.ingest import ingest_paths
from analysis.privacy import keyed_hash
from analysis.store import Store, load_exchanges

SECRETS = {
    "cookie": "sessionid=SECRETCOOKIEVALUE1; consent=SECRETCOOKIEVALUE2",
    "set-cookie": "track=SECRETSETCOOKIE3; Path=/; HttpOnly",
    "authorization": "Basic " + base64.b64encode(b"alice:SECRETPASSWORD4").decode(),
    "proxy-authorization": "Bearer SECRETPROXYTOKEN5",
}
BODY = "SECRETBODYTEXT6 " * 20


def _planted_har(tmp_path):
    entry = make_entry(
        "https://shop.test/cart",
        req_headers=[("Cookie", SECRETS["cookie"]), ("Authorization", SECRETS["authorization"]),
                     ("Proxy-Authorization", SECRETS["proxy-authorization"])],
        resp_headers=[("Set-Cookie", SECRETS["set-cookie"]), ("ETag", '"SECRETCOOKIEVALUE1"')],
        text=BODY,
    )
    # HAR cookie arrays carry the values in clear too
    entry["request"]["cookies"] = [{"name": "sessionid", "value": "SECRETCOOKIEVALUE1"}]
    entry["response"]["cookies"] = [{"name": "track", "value": "SECRETSETCOOKIE3"}]
    b64 = make_entry("https://shop.test/img", text=base64.b64encode(b"SECRETBINARY7").decode(),
                     encoding="base64")
    return write_har(tmp_path / "planted.har", make_har([entry, b64]))


def _all_store_bytes(path) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-shm"):
        p = path.with_name(path.name + suffix)
        if p.exists():
            data += p.read_bytes()
    return data


def test_planted_secrets_never_reach_the_sqlite_bytes(tmp_path):
    har = _planted_har(tmp_path)
    db = tmp_path / "s.sqlite"
    store = Store(db)
    report = ingest_paths([har], store)
    assert report.stored == 2
    mid_run = _all_store_bytes(db)  # WAL not yet checkpointed
    df = load_exchanges(store)
    store.close()
    final = _all_store_bytes(db)
    needles = ["SECRETCOOKIEVALUE2", "SECRETSETCOOKIE3", "SECRETPASSWORD4", "SECRETPROXYTOKEN5",
               "SECRETBODYTEXT6", "SECRETBINARY7", SECRETS["authorization"].split()[1]]
    for blob in (mid_run, final):
        for needle in needles:
            assert needle.encode() not in blob, needle
    # SECRETCOOKIEVALUE1 was also sent as the ETag: the validator is kept (the user's own
    # traffic), but never in a cookie or credential position
    row = df.iloc[0]
    assert "SECRETCOOKIEVALUE1" not in row.req_headers and "SECRETCOOKIEVALUE1" not in row.cookie_hashes
    assert json.loads(row.cookies_sent) == ["sessionid", "consent"]
    # ... and the detector can see that the ETag equals a cookie value, from hashes only
    assert row.etag_hash in json.loads(row.cookie_hashes)


def test_redact_validators_hides_etags_and_dates_but_keeps_them_comparable(tmp_path):
    e1 = make_entry("https://a.test/1", resp_headers=[("ETag", 'W/"USERID42"'),
                    ("Last-Modified", "Tue, 15 Nov 1994 12:45:26 GMT")])
    e2 = make_entry("https://a.test/1", status=304, req_headers=[("If-None-Match", 'W/"USERID42"'),
                    ("If-Modified-Since", "Tue, 15 Nov 1994 12:45:26 GMT")])
    har = write_har(tmp_path / "v.har", make_har([e1, e2]))
    db = tmp_path / "r.sqlite"
    store = Store(db)
    ingest_paths([har], store, redact_validators=True)
    df = load_exchanges(store)
    key = store.key
    store.close()
    blob = _all_store_bytes(db)
    assert b"USERID42" not in blob and b"15 Nov 1994" not in blob
    first, second = df.iloc[0], df.iloc[1]
    assert parse_etag(first.etag).tag.weak  # W/ kept
    assert weak_match(first.etag, second.req_if_none_match)  # still comparable
    assert first.last_modified == second.req_if_modified_since
    assert first.etag_hash == keyed_hash("USERID42", key)


def test_keyed_hash_depends_on_key_and_value():
    a, b = b"a" * 32, b"b" * 32
    assert keyed_hash("x", a) == keyed_hash(b"x", a)
    assert keyed_hash("x", a) != keyed_hash("x", b)
    assert keyed_hash("x", a) != keyed_hash("y", a)
    assert len(keyed_hash("x", a)) == 32


def test_store_bytes_hold_no_plain_sqlite_copy_of_secrets_after_vacuum(tmp_path):
    # freed pages could keep old rows; nothing secret is ever written, so even raw pages are clean
    har = _planted_har(tmp_path)
    db = tmp_path / "v.sqlite"
    with Store(db) as store:
        ingest_paths([har], store)
        store.connection.execute("DELETE FROM exchanges")
        store.connection.commit()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert b"SECRETSETCOOKIE3" not in _all_store_bytes(db)


def test_hashed_query_values_keep_resources_and_ignore_param_working(tmp_path, capsys):
    """The same URL is the same resource (the keyed hash is stable), --ignore-param still
    drops a cache-buster by name, and --keep-query is refused by a store that hashes."""
    from analysis.cli import main

    entries = [make_entry(f"https://a.test/app.js?v={i % 3}&id=SECRET42",
                          resp_headers=[("ETag", '"same"')]) for i in range(6)]
    path = write_har(tmp_path / "q.har", make_har(entries))
    db = tmp_path / "s.sqlite"
    out = tmp_path / "a.json"
    assert main(["analyze", str(path), "--db", str(db), "--json", str(out), "-q"]) == 0
    urls = {r["url"] for r in json.loads(out.read_text())["resources"]}
    assert len(urls) == 3 and not any("SECRET42" in u for u in urls)
    assert all("id=hmac:" in u for u in urls)
    assert main(["analyze", str(db), "--json", str(out), "--ignore-param", "v", "-q"]) == 0
    assert len(json.loads(out.read_text())["resources"]) == 1
    capsys.readouterr()
    assert main(["ingest", str(path), "--db", str(db), "--keep-query", "--force"]) == 2
    assert "keeps query values hashed" in capsys.readouterr().err
