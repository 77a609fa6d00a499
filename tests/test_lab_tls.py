"""The lab CA and the trust helper, without servers: the leaf verifies for every lab name under
the CA (cryptography's own X.509 path validation), the key files stay private, and the SPKI hash
Chromium is given equals what openssl computes from the same certificate."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from support import need_program

from analysis.lab.lab import HOSTNAMES, LabSite
from analysis.lab.tls import LabCA
from analysis.lab.trust import chromium_trust_args, spki_sha256


@pytest.fixture(scope="module")
def issued(tmp_path_factory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("tls")
    ca = LabCA.create(folder)
    return ca, ca.issue(HOSTNAMES, folder)


def _verify(leaf_pem: bytes, ca: LabCA, name: str) -> None:
    leaf = x509.load_pem_x509_certificate(leaf_pem)
    verifier = (
        PolicyBuilder()
        .store(Store([ca.cert]))
        .time(dt.datetime.now(dt.UTC))
        .build_server_verifier(x509.DNSName(name))
    )
    verifier.verify(leaf, [])


def test_the_leaf_verifies_under_the_lab_ca_for_every_lab_name(issued):
    ca, files = issued
    for name in (*HOSTNAMES, "localhost"):
        _verify(files.cert.read_bytes(), ca, name)
    with pytest.raises(VerificationError):
        _verify(files.cert.read_bytes(), ca, "example.com")


def test_a_leaf_of_another_ca_does_not_verify(issued, tmp_path):
    ca, _ = issued
    other = LabCA.create(tmp_path)
    with pytest.raises(VerificationError):
        _verify(other.issue(["news.lab.test"], tmp_path).cert.read_bytes(), ca, "news.lab.test")


def test_files_hold_what_each_server_wants_and_keys_stay_private(issued):
    ca, files = issued
    leaf = files.cert.read_bytes()
    assert files.fullchain.read_bytes() == leaf + ca.pem
    combined = files.combined.read_bytes()
    assert combined.startswith(leaf + ca.pem) and b"PRIVATE KEY" in combined
    for private in (files.key, files.combined):
        assert private.stat().st_mode & 0o077 == 0, private
    assert b"PRIVATE KEY" not in ca.cert_path.read_bytes()
    constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0


def test_spki_hash_equals_openssls(issued):
    openssl = need_program("openssl")["openssl"]
    ca, _ = issued
    pubkey = subprocess.run(
        [openssl, "x509", "-in", str(ca.cert_path), "-pubkey", "-noout"],
        capture_output=True,
        check=True,
    ).stdout
    der = subprocess.run(
        [openssl, "pkey", "-pubin", "-outform", "der"], input=pubkey, capture_output=True, check=True
    ).stdout
    digest = subprocess.run(
        [openssl, "dgst", "-sha256", "-binary"], input=der, capture_output=True, check=True
    ).stdout
    b64 = subprocess.run(
        [openssl, "base64", "-A"], input=digest, capture_output=True, check=True
    ).stdout.decode()
    assert spki_sha256(ca.cert_path) == spki_sha256(ca.pem) == b64


def test_chromium_trust_args_list_each_ca_once(issued, tmp_path):
    ca, _ = issued
    other = LabCA.create(tmp_path)
    (arg,) = chromium_trust_args(ca.cert_path, other.pem, ca.pem)
    name, value = arg.split("=", 1)
    assert name == "--ignore-certificate-errors-spki-list"
    assert value.split(",") == [spki_sha256(ca.pem), spki_sha256(other.pem)]
    assert chromium_trust_args() == []


def test_lab_site_urls_by_scheme():
    site = LabSite("t", "pixel.tracker.test", 8080, "/p.gif", "demo", "identifier", tls_port=8443)
    assert site.url_for("http") == "http://pixel.tracker.test:8080/p.gif"
    assert site.url_for("https") == site.https_url == "https://pixel.tracker.test:8443/p.gif"
    plain = LabSite("t", "pixel.tracker.test", 8080, "/p.gif", "demo", "identifier")
    with pytest.raises(ValueError, match="not served over HTTPS"):
        _ = plain.https_url
