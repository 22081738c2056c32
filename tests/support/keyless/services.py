"""Fulcio (ephemeral CA) and a timestamp authority (memory signer), and a TrustedRoot for them.

Both servers open a metrics listener on all interfaces (the TSA's is hard-wired to `:2112`), so
start them only inside a private network namespace (see `sign.py`).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from tests.support.procs import stop, wait_for_http

ROOT = Path(__file__).resolve().parents[3]
FULCIO_VERSION = "v1.8.8"
TSA_VERSION = "v2.1.3"
FULCIO = ROOT / ".tools" / f"fulcio-{FULCIO_VERSION}" / "fulcio"
TIMESTAMP_SERVER = ROOT / ".tools" / f"timestamp-server-{TSA_VERSION}" / "timestamp-server"
TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"


def require_binaries() -> None:
    for binary in (FULCIO, TIMESTAMP_SERVER):
        if not binary.exists():
            raise RuntimeError(f"{binary} is not built: run `make tools`")


@dataclass(frozen=True)
class Authority:
    """A running CA or TSA: its URL (as a TrustedRoot `uri`) and its chain, leaf first."""

    url: str
    chain: tuple[x509.Certificate, ...]


def _leaf_first(chain: list[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    """Order a chain as TrustedRoot lists it: each certificate followed by its issuer."""
    if len(chain) > 1 and chain[0].issuer == chain[0].subject:
        chain = chain[::-1]
    for child, parent in itertools.pairwise(chain):
        if child.issuer != parent.subject:
            raise RuntimeError(f"not a chain: {child.subject} is not issued by {parent.subject}")
    return tuple(chain)


def _started(process: subprocess.Popen[bytes], log: Path, url: str) -> None:
    try:
        wait_for_http(url, ok=(200,))
    except RuntimeError:
        stop(process)
        raise RuntimeError(f"{url} did not come up:\n{log.read_text()}") from None


@contextlib.contextmanager
def run_fulcio(
    directory: Path,
    issuers: dict[str, str],
    *,
    port: int,
    grpc_port: int,
    metrics_port: int,
) -> Iterator[Authority]:
    """Fulcio with an ephemeral CA and no CT log, trusting `issuers` (URL → Fulcio type).

    HTTP and gRPC need distinct ports (equal ones make v1.8.8 panic: a duplicate metrics
    descriptor); the legacy unix socket is an abstract one, private to the network namespace.
    """
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "fulcio-config.json"
    config.write_text(
        json.dumps(
            {
                "OIDCIssuers": {
                    url: {"IssuerURL": url, "ClientID": "sigstore", "Type": kind}
                    for url, kind in issuers.items()
                }
            },
            indent=2,
        )
    )
    args = [str(FULCIO), "serve", "--ca", "ephemeralca", "--ct-log-url", ""]
    args += ["--config-path", str(config), "--host", "127.0.0.1", "--port", str(port)]
    args += ["--grpc-host", "127.0.0.1", "--grpc-port", str(grpc_port)]
    args += ["--metrics-port", str(metrics_port)]
    args += ["--legacy-unix-domain-socket", f"@signet-fulcio-{port}"]
    log = directory / "fulcio.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=directory, stdout=out, stderr=subprocess.STDOUT)
        try:
            _started(process, log, f"{url}/api/v2/trustBundle")
            bundle = httpx.get(f"{url}/api/v2/trustBundle", timeout=10).json()
            (chain,) = bundle["chains"]
            pem = "".join(chain["certificates"]).encode()
            yield Authority(url, _leaf_first(x509.load_pem_x509_certificates(pem)))
        finally:
            stop(process)


@contextlib.contextmanager
def run_timestamp_authority(directory: Path, *, port: int) -> Iterator[Authority]:
    """A timestamp authority with an in-memory signer (a fresh 3-certificate chain)."""
    directory.mkdir(parents=True, exist_ok=True)
    args = [str(TIMESTAMP_SERVER), "serve", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--timestamp-signer", "memory", "--disable-ntp-monitoring"]
    log = directory / "timestamp-server.log"
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=directory, stdout=out, stderr=subprocess.STDOUT)
        try:
            _started(process, log, f"{base}/api/v1/timestamp/certchain")
            pem = httpx.get(f"{base}/api/v1/timestamp/certchain", timeout=10).content
            yield Authority(
                f"{base}/api/v1/timestamp", _leaf_first(x509.load_pem_x509_certificates(pem))
            )
        finally:
            stop(process)


def _rfc3339(certificate: x509.Certificate) -> str:
    return certificate.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def _subject(certificate: x509.Certificate) -> dict[str, str]:
    # Fulcio's ephemeral CA is named C=USA, which `cryptography` warns about (two letters).
    subject: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for key, oid in (
            ("organization", NameOID.ORGANIZATION_NAME),
            ("commonName", NameOID.COMMON_NAME),
        ):
            values = certificate.subject.get_attributes_for_oid(oid)
            if values:
                subject[key] = str(values[0].value)
    return subject


def authority_entry(authority: Authority) -> dict[str, object]:
    """A TrustedRoot `certificateAuthorities` / `timestampAuthorities` entry (chain leaf first)."""
    root = authority.chain[-1]
    return {
        "subject": _subject(root),
        "uri": authority.url,
        "certChain": {
            "certificates": [
                {"rawBytes": base64.b64encode(cert.public_bytes(Encoding.DER)).decode()}
                for cert in authority.chain
            ]
        },
        "validFor": {"start": _rfc3339(root)},
    }


def write_trusted_root(path: Path, fulcio: list[Authority], tsa: list[Authority]) -> Path:
    """A Sigstore TrustedRoot: these CAs and TSAs, no transparency or CT logs."""
    document = {
        "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
        "tlogs": [],
        "certificateAuthorities": [authority_entry(ca) for ca in fulcio],
        "ctlogs": [],
        "timestampAuthorities": [authority_entry(ts) for ts in tsa],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
