"""Make Chromium trust a CA (the lab's, or mitmproxy's) without touching the system's trust store.

Chromium's ``--ignore-certificate-errors-spki-list`` takes base64 SHA-256 hashes of
SubjectPublicKeyInfo; a server whose chain contains one of them is accepted as if its certificate
verified, with no certificate error on the connection. That matters here: Chromium does not keep
responses in its HTTP disk cache after a certificate error, which is what
``--ignore-certificate-errors`` gives. Measured with Debian's Chromium (tests/e2e/
test_browser_lab_https.py): in one running browser both flags show If-None-Match on reloads
(Blink's memory cache revalidates by itself), but after a relaunch on the same profile only the
SPKI list revalidates anything. The flag is honoured only with a ``--user-data-dir``, which
Playwright's persistent contexts always pass. No NSS database, so no libnss3-tools either.

    args = chromium_trust_args(lab.ca.cert_path, proxy.ca_cert)
    browse(url, extra_args=args)

The hash must be in the chain the server sends: the lab's servers send leaf + CA, and mitmproxy
sends its CA after the leaf it forges.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography import x509
from cryptography.hazmat.primitives import serialization


def spki_sha256(pem: bytes | str | os.PathLike[str]) -> str:
    """Base64 SHA-256 of the certificate's SubjectPublicKeyInfo (Chromium's and HPKP's form).

    ``pem`` is the certificate's PEM bytes or the path of a PEM file (its first certificate)."""
    data = pem if isinstance(pem, bytes) else open(pem, "rb").read()  # noqa: SIM115
    cert = x509.load_pem_x509_certificate(data)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def chromium_trust_args(*cas: bytes | str | os.PathLike[str]) -> list[str]:
    """Chromium command-line arguments that make it trust every CA in ``cas`` (PEM bytes or
    paths); an empty list when none is given."""
    hashes = list(dict.fromkeys(spki_sha256(ca) for ca in cas))
    return [f"--ignore-certificate-errors-spki-list={','.join(hashes)}"] if hashes else []

