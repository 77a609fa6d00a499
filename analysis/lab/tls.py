"""The lab's certificate authority: made fresh at lab start, it signs one leaf certificate whose
subject alternative names cover every lab host name (plus localhost and the loopback address),
so nginx, Apache httpd, haproxy and the TLS fronts of the Python origins all serve HTTPS with it.

    ca = LabCA.create(folder)
    files = ca.issue(["news.lab.test", "pixel.tracker.test"], folder)
    files.cert, files.key, files.fullchain, files.combined  # PEM paths for the servers

ECDSA P-256 keys: generated in milliseconds, accepted by every server and by Chromium. The CA is
valid for a day and constrained to nothing but signing; it never leaves the lab's temp folder.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: How long the lab's certificates are valid (a lab runs for minutes; a day absorbs clock skew).
VALIDITY = dt.timedelta(days=1)
_SKEW = dt.timedelta(hours=1)


@dataclass(frozen=True)
class TLSFiles:
    """PEM files of one leaf certificate, in the shapes the servers want."""

    cert: Path  # leaf only
    key: Path  # private key (unencrypted, mode 0600)
    fullchain: Path  # leaf then CA: nginx ssl_certificate, Apache SSLCertificateFile
    combined: Path  # leaf, CA, key: haproxy's ``crt``


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    path.touch(mode=0o600)
    path.write_bytes(data)


class LabCA:
    """A throw-away CA: ``cert_path`` is what clients trust (mitmdump's
    ``ssl_verify_upstream_trusted_ca``, Chromium through :mod:`analysis.lab.trust`)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, cert_path: Path):
        self.key = key
        self.cert = cert
        self.cert_path = cert_path

    @classmethod
    def create(cls, folder: Path, *, name: str = "etagwatch lab CA") -> Self:
        """A new CA key and self-signed certificate, written to ``folder/lab-ca.pem``."""
        folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, name),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "etagwatch lab"),
            ]
        )
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SKEW)
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        path = folder / "lab-ca.pem"
        path.write_bytes(_pem(cert))
        return cls(key, cert, path)

    @property
    def pem(self) -> bytes:
        return _pem(self.cert)

    def issue(self, hostnames: Iterable[str], folder: Path, *, stem: str = "lab") -> TLSFiles:
        """A leaf certificate for ``hostnames`` (and localhost, 127.0.0.1, ::1), signed by this
        CA, written as ``stem.crt``, ``stem.key``, ``stem-fullchain.pem``, ``stem-combined.pem``."""
        names = list(dict.fromkeys([*hostnames, "localhost"]))
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        san = [x509.DNSName(n) for n in names] + [
            x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1")
        ]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SKEW)
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )
        folder.mkdir(parents=True, exist_ok=True)
        files = TLSFiles(
            cert=folder / f"{stem}.crt",
            key=folder / f"{stem}.key",
            fullchain=folder / f"{stem}-fullchain.pem",
            combined=folder / f"{stem}-combined.pem",
        )
        files.cert.write_bytes(_pem(cert))
        _write_private(files.key, _key_pem(key))
        files.fullchain.write_bytes(_pem(cert) + self.pem)
        _write_private(files.combined, _pem(cert) + self.pem + _key_pem(key))
        return files
