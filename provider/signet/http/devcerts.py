"""Development certificates: a CA, a server certificate and a client certificate.

For `make run`, tests and the benchmark only. In a cluster the client CA is Gatekeeper's own
(`gatekeeper-webhook-server-cert`, key `ca.crt`) and the server certificate comes from the
platform's issuer.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["DevCerts", "renew_server_cert", "write_dev_certs"]


@dataclass(frozen=True, slots=True)
class DevCerts:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def write_dev_certs(
    directory: Path, *, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")
) -> DevCerts:
    """A new CA (its key kept beside it, for renew_server_cert), a server and a client cert."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signet-dev-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    certs = DevCerts(
        directory / "ca.crt",
        directory / "tls.crt",
        directory / "tls.key",
        directory / "client.crt",
        directory / "client.key",
    )
    certs.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    ca_key_path = directory / "ca.key"
    ca_key_path.write_bytes(_pem(ca_key))
    ca_key_path.chmod(0o600)
    _issue(
        certs.ca,
        ca_key_path,
        "signet",
        ExtendedKeyUsageOID.SERVER_AUTH,
        hosts,
        certs.server_cert,
        certs.server_key,
    )
    _issue(
        certs.ca,
        ca_key_path,
        "gatekeeper-webhook-service",
        ExtendedKeyUsageOID.CLIENT_AUTH,
        hosts,
        certs.client_cert,
        certs.client_key,
    )
    return certs


def renew_server_cert(
    certs: DevCerts, *, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")
) -> None:
    """Issue a new server certificate and key from the same CA (what a rotation looks like)."""
    _issue(
        certs.ca,
        certs.ca.with_name("ca.key"),
        "signet",
        ExtendedKeyUsageOID.SERVER_AUTH,
        hosts,
        certs.server_cert,
        certs.server_key,
    )


def _issue(
    ca_path: Path,
    ca_key_path: Path,
    name: str,
    usage: x509.ObjectIdentifier,
    hosts: tuple[str, ...],
    cert_path: Path,
    key_path: Path,
) -> None:
    ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{ca_key_path} is not the ECDSA key write_dev_certs made")
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key_path.write_bytes(_pem(key))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
