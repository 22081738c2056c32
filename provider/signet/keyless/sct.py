"""Embedded signed certificate timestamps (SCTs, RFC 6962) of a Fulcio certificate.

`verify_embedded_sct(leaf, issuer, ctlogs)` returns when at least one SCT embedded in `leaf`
was signed by a certificate-transparency log of the trusted root, and otherwise raises
`DeterministicFailure(SIGNATURE_INVALID)` saying why. An SCT is the log's promise to publish the
certificate: without a trusted one, Fulcio may have issued the certificate unseen.

1. Read the SCT list extension (`PrecertificateSignedCertificateTimestamps`): there must be one,
   with at least one and at most `MAX_SCTS` SCTs. (cryptography parses v1 SCTs only, and an SCT
   embedded in a certificate is by definition for its precertificate.)
2. For each SCT: the log is a CT log of the trusted root whose log id is the SCT's (SCTs from
   unknown logs are passed over, as sigstore-go does); the SCT declares SHA-256 and the signature
   algorithm of the log's key; its timestamp lies within the log key's validity, both ends
   included.
3. Rebuild what the log signed, the RFC 6962 §3.2 `digitally-signed` struct:
   version (1 octet) ‖ signature_type = certificate_timestamp (1) ‖ timestamp in ms (8) ‖
   entry_type = precert_entry (2) ‖ issuer_key_hash (32: SHA-256 of the issuer's
   SubjectPublicKeyInfo, as encoded in the issuer) ‖ the TBSCertificate without the SCT list
   extension (24-bit length, then its DER) ‖ the SCT's extensions (16-bit length, then them).
   The extensions are signed as they are: Static CT logs put a leaf index there.
4. The SCT's signature over that struct verifies under the log's key. The first SCT that passes
   settles it; if none does, the failure names each SCT's problem.

`issuer` is the certificate that issued `leaf` (the trusted root's Fulcio `chain[0]`): Fulcio
signs precertificates itself, never with a separate precertificate-signing certificate.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.certificate_transparency import (
    LogEntryType,
    SignatureAlgorithm,
    SignedCertificateTimestamp,
)

from signet.keyless import der
from signet.keyless.root import LogKey
from signet.reasons import DeterministicFailure, Reason

__all__ = ["MAX_SCTS", "verify_embedded_sct"]

MAX_SCTS: Final = 32
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_CERTIFICATE_TIMESTAMP: Final = 0  # RFC 6962 SignatureType.certificate_timestamp
_PRECERT: Final = LogEntryType.PRE_CERTIFICATE.value  # LogEntryType.precert_entry (1)
_MAX_UINT24: Final = (1 << 24) - 1


def verify_embedded_sct(
    leaf: x509.Certificate, issuer: x509.Certificate, ctlogs: Sequence[LogKey]
) -> None:
    """Accept `leaf` when one of its embedded SCTs is from a trusted CT log and verifies."""
    try:
        scts = list(
            leaf.extensions.get_extension_for_class(
                x509.PrecertificateSignedCertificateTimestamps
            ).value
        )
    except x509.ExtensionNotFound:
        raise _invalid("the certificate has no embedded SCT (no CT log vouches for it)") from None
    except ValueError as exc:
        raise _invalid(f"the certificate's extensions cannot be read: {exc}") from None
    if not scts:
        raise _invalid("the certificate's SCT list is empty (no CT log vouches for it)")
    if len(scts) > MAX_SCTS:
        raise _invalid(f"the certificate embeds {len(scts)} SCTs; the limit is {MAX_SCTS}")
    try:
        precertificate = leaf.tbs_precertificate_bytes
        issuer_key_hash = hashlib.sha256(
            der.tbs_certificate(issuer.public_bytes(Encoding.DER)).subject_public_key_info
        ).digest()
    except ValueError as exc:
        raise _invalid(f"the certificate's precertificate cannot be rebuilt: {exc}") from None
    problems = []
    for number, sct in enumerate(scts, start=1):
        logs = [log for log in ctlogs if log.log_id == sct.log_id]
        if not logs:
            log_id = sct.log_id.hex()
            problems.append(f"SCT {number} is from log {log_id}, not a CT log of the trusted root")
        for log in logs:
            problem = _problem(sct, log, precertificate, issuer_key_hash)
            if problem is None:
                return
            problems.append(f"SCT {number} {problem}")
    raise _invalid(f"no embedded SCT verifies under a trusted CT log: {'; '.join(problems)}")


def _problem(
    sct: SignedCertificateTimestamp, log: LogKey, precertificate: bytes, issuer_key_hash: bytes
) -> str | None:
    """Why this SCT does not vouch for the certificate under `log` (steps 2 to 4), or None."""
    if not isinstance(sct.signature_hash_algorithm, hashes.SHA256):
        return f"declares hash {sct.signature_hash_algorithm.name}; RFC 6962 requires SHA-256"
    if _declared_algorithm(log) != sct.signature_algorithm:
        return f"declares {sct.signature_algorithm.name}, but {log.base_url} signs otherwise"
    moment = _aware(sct.timestamp)
    if not log.validity.contains(moment):
        end = log.validity.end.isoformat() if log.validity.end else "open"
        return (
            f"is dated {moment.isoformat()}, outside the validity of {log.base_url}'s key "
            f"({log.validity.start.isoformat()} to {end})"
        )
    if len(precertificate) > _MAX_UINT24:
        return "is for a precertificate too long for RFC 6962"
    milliseconds = (moment - _EPOCH) // timedelta(milliseconds=1)
    signed = b"".join(
        (
            struct.pack(">BBQH", sct.version.value, _CERTIFICATE_TIMESTAMP, milliseconds, _PRECERT),
            issuer_key_hash,
            len(precertificate).to_bytes(3, "big"),
            precertificate,
            struct.pack(">H", len(sct.extension_bytes)),
            sct.extension_bytes,
        )
    )
    if not log.verify(signed, sct.signature):
        return f"does not verify under {log.base_url}'s key"
    return None


def _declared_algorithm(log: LogKey) -> SignatureAlgorithm | None:
    if isinstance(log.key, ec.EllipticCurvePublicKey):
        return SignatureAlgorithm.ECDSA
    if isinstance(log.key, rsa.RSAPublicKey):
        return SignatureAlgorithm.RSA
    return None  # RFC 6962 has no other signature algorithm


def _aware(moment: datetime) -> datetime:
    # cryptography gives SCT timestamps as naive datetimes in UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _invalid(message: str) -> DeterministicFailure:
    return DeterministicFailure(Reason.SIGNATURE_INVALID, message)
