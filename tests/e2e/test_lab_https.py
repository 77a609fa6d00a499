"""The lab over HTTPS and HTTP/2: every site answers over TLS with a certificate from the lab CA
(names checked), negotiates h2, and behaves as over HTTP; mitmdump trusts the lab CA upstream
and records the HTTP/2 exchanges into the store with HTTP/2's header rules applied."""

from __future__ import annotations

import json
import shutil
import ssl
import tempfile
from pathlib import Path

import httpx
import pytest
from support import ingest_into, need_program

from analysis.lab.mitm import MitmDump
from analysis.lab.servers import ApacheOrigin
from analysis.lab.tls import LabCA
from analysis.store import load_exchanges

pytestmark = pytest.mark.e2e

#: Sites whose validators are stable: a revalidation with the ETag just received is a 304.
REVALIDATED = ("nginx", "tracker", "echo", "digest")


def trusting(ca: Path) -> ssl.SSLContext:
    """A client context that trusts only ``ca`` and checks host names."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


def get(client: httpx.Client, site, headers: dict[str, str] | None = None) -> httpx.Response:  # type: ignore[no-untyped-def]
    """GET a lab site's HTTPS resource on loopback, with its own name as SNI and checked name."""
    url = f"https://127.0.0.1:{site.tls_port}{site.path}"
    return client.get(url, headers=headers, extensions={"sni_hostname": site.hostname})


def test_every_lab_site_answers_https_over_http2_with_the_lab_certificate(lab):
    sites = [lab.first_party, *lab.sites.values()]
    with (
        httpx.Client(verify=trusting(lab.ca.cert_path), http2=True) as tls,
        httpx.Client() as plain,
    ):
        for site in sites:
            first = get(tls, site)
            assert first.status_code == 200, site.key
            assert first.http_version == "HTTP/2", site.key
            assert site.https_url.startswith(f"https://{site.hostname}:{site.tls_port}/")
            if site.key in REVALIDATED:
                again = get(tls, site, {"If-None-Match": first.headers["etag"]})
                assert (again.status_code, again.headers["etag"]) == (304, first.headers["etag"])
        # the same bytes and validators as over HTTP where they are deterministic
        for key in ("nginx", "digest"):
            site = lab.sites[key]
            a, b = get(tls, site), plain.get(site.loopback_url)
            assert (a.content, a.headers["etag"]) == (b.content, b.headers["etag"]), key
        # churn pairs: haproxy over TLS still alternates the same two backends
        backends = {get(tls, lab.sites["inode"]).headers["x-backend"] for _ in range(4)}
        assert backends == set(lab.sites["inode"].backends)


def test_the_https_page_embeds_every_site_over_https(lab):
    with httpx.Client(verify=trusting(lab.ca.cert_path), http2=True) as tls:
        page = get(tls, lab.first_party).text
    for site in lab.sites.values():
        assert site.https_url in page and site.url not in page, site.key


def test_a_client_that_does_not_trust_the_lab_ca_is_refused(lab, tmp_path):
    other = LabCA.create(tmp_path / "other")
    with (
        httpx.Client(verify=trusting(other.cert_path)) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        get(client, lab.sites["tracker"])
    # and the lab's certificate names the lab's sites only
    ctx = trusting(lab.ca.cert_path)
    with httpx.Client(verify=ctx) as client, pytest.raises(httpx.ConnectError, match="mismatch"):
        site = lab.sites["tracker"]
        client.get(
            f"https://127.0.0.1:{site.tls_port}/", extensions={"sni_hostname": "elsewhere.test"}
        )


def test_apache_serves_https_over_http2_with_mod_ssl_and_mod_http2(tmp_path):
    need_program("apache2")
    # Apache's workers run unprivileged when we are root: serve from a world-searchable dir
    root = Path(tempfile.mkdtemp(prefix="etagwatch-test-apache-tls-"))
    root.chmod(0o755)
    try:
        (root / "lib.js").write_bytes(b"window.x = 1;\n")
        ca = LabCA.create(tmp_path / "tls")
        tls = ca.issue(["apache.lab.test"], tmp_path / "tls")
        with (
            ApacheOrigin(root, name="apache-tls", tls=tls) as origin,
            httpx.Client(verify=trusting(ca.cert_path), http2=True) as client,
        ):
            url = f"https://127.0.0.1:{origin.tls_port}/lib.js"
            sni = {"sni_hostname": "apache.lab.test"}
            first = client.get(url, extensions=sni)
            again = client.get(url, headers={"If-None-Match": first.headers["etag"]}, extensions=sni)
            plain = httpx.get(origin.url + "/lib.js")
        assert (first.status_code, first.http_version) == (200, "HTTP/2")
        assert first.headers["x-backend"] == "apache-tls"
        assert (again.status_code, again.http_version) == (304, "HTTP/2")
        assert plain.http_version == "HTTP/1.1" and plain.headers["etag"] == first.headers["etag"]
    finally:
        shutil.rmtree(root)


def load_exchanges_of(capture: Path, db: Path):  # type: ignore[no-untyped-def]
    report = ingest_into(db, [capture])
    assert not report.errors and not report.skipped
    return load_exchanges(db)


def _through(proxy: MitmDump) -> httpx.Client:
    return httpx.Client(
        proxy=proxy.url, verify=trusting(proxy.ca_cert), http2=True, timeout=10, trust_env=False
    )


def test_https_through_mitmdump_is_stored_as_http2_with_http2_header_rules(lab, tmp_path):
    db, flows = tmp_path / "tls.sqlite", tmp_path / "tls.flows"
    tracker, static = lab.sites["tracker"], lab.sites["nginx"]
    sent = []
    with (
        MitmDump(db=db, client="tls-client", flows=flows, upstream_ca=lab.ca.cert_path) as proxy,
        _through(proxy) as http,
    ):
        for site in (tracker, static):
            first = http.get(site.https_url)
            again = http.get(site.https_url, headers={"If-None-Match": first.headers["etag"]})
            sent.append((first.http_version, first.status_code, again.status_code))
    assert sent == [("HTTP/2", 200, 304)] * 2
    df = load_exchanges(db)
    assert list(df["url"]) == [tracker.https_url] * 2 + [static.https_url] * 2
    assert set(df["http_version"]) == {"HTTP/2"}
    assert set(df["scheme"]) == {"https"} and set(df["client"]) == {"tls-client"}
    assert list(df["status"]) == [200, 304, 200, 304]
    assert df["req_if_none_match"].tolist()[1::2] == df["etag"].tolist()[0::2]
    for req, resp, url in zip(df["req_headers"], df["resp_headers"], df["url"], strict=True):
        req_names = [n for n, _ in json.loads(req)]
        resp_names = [n for n, _ in json.loads(resp)]
        # HTTP/2 pseudo-headers are request-line data, not fields: never stored as headers;
        # :authority stands in for Host, which HTTP/2 clients do not send
        assert not [n for n in req_names + resp_names if n.startswith(":")]
        assert req_names == [n.lower() for n in req_names]
        assert resp_names == [n.lower() for n in resp_names]
        assert dict(json.loads(req))["host"] == url.split("/")[2]
    # what the origin sent comes through: nginx's Server, the tracker's own (past its TLS front)
    servers = dict(zip(df["host"], df["server"], strict=True))
    assert servers[static.hostname].startswith("nginx") and servers[tracker.hostname] == (
        "pixel-tracker"
    )
    # the saved HTTP/2 flows read back into the same records as the live addon stored
    from_flows = load_exchanges_of(flows, tmp_path / "from-flows.sqlite")
    same = ["url", "http_version", "status", "etag", "req_if_none_match", "req_headers", "resp_headers"]
    assert from_flows[same].to_dict("records") == df[same].to_dict("records")


def test_mitmdump_refuses_a_lab_server_it_cannot_verify(lab, tmp_path):
    """Without the lab CA, mitmdump's upstream check fails: the trust is real, not switched off."""
    with MitmDump(db=tmp_path / "refused.sqlite", client="c") as proxy, _through(proxy) as http:
        response = http.get(lab.sites["tracker"].https_url)
    assert response.status_code == 502
    assert "certificate verify failed" in response.text.lower()


def test_mitmdump_keeps_its_ca_in_a_given_confdir_across_runs(tmp_path):
    """A kept confdir keeps mitmproxy's CA (profiles resumed later still trust it); without
    one, every start makes a new CA."""
    kept = tmp_path / "mitm-conf"
    cas = []
    for confdir in (kept, kept, None):
        with MitmDump(client="c", confdir=confdir) as proxy:
            cas.append(proxy.ca_cert.read_bytes())
    assert cas[0] == cas[1] != cas[2]
    assert (kept / "mitmproxy-ca-cert.pem").read_bytes() == cas[0]
