"""Verifying one keyless signature, in the order of the Sigstore client specification. No I/O.

The evidence of one signature — the Fulcio certificate, the exact bytes signed, and the
transparency-log entries and RFC 3161 timestamps that came with it — is judged against one
`Keyless` policy (a trusted root; whether a log entry and an SCT are required):

1. The evidence may carry certificates beyond the leaf, but none of them is trusted, and a
   self-signed (root) certificate among them is refused: only the trusted root names CAs.
2. The signature verifies over the signed bytes under the certificate's public key.
3. Each RFC 3161 timestamp covers exactly this signature and was issued by a timestamp
   authority of the trusted root, trusted at its time (`keyless.timestamp`). Its time is a
   trusted signing time.
4. Each transparency-log entry describes exactly this signature, certificate and content, and
   is proven by a log of the trusted root (signed entry timestamp and/or inclusion proof with a
   signed checkpoint, `keyless.tlog`). A signed integration time is a trusted signing time; it
   may not lie in the future, and the log's key must have been trusted then. A policy that
   requires a log entry fails without one.
5. There is at least one trusted signing time, and at *every* one of them the certificate
   chains to a Fulcio CA of the trusted root with the whole chain valid (`keyless.certificate`):
   a certificate that had expired, or was not yet valid, when it signed does not count.
6. Unless the policy waives it, the certificate carries an SCT from a CT log of the trusted root.
7. The certified identity (subject, OIDC issuer, CI claims) is read and returned; matching it
   against an attestor's identities is the caller's step, after all of the above.

Every failure is a DeterministicFailure naming what was wrong; a certificate no trusted CA
issued is NOT_SIGNED_BY_ATTESTOR (someone else's signature), anything else SIGNATURE_INVALID.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from signet.crypto.keys import UnusableKey, load_public_key_der
from signet.keyless.certificate import (
    Identity,
    load_certificate,
    signing_identity,
    verify_chain,
)
from signet.keyless.root import Authority
from signet.keyless.sct import verify_embedded_sct
from signet.keyless.timestamp import verify_timestamp
from signet.keyless.tlog import LogEntry, SignedContent, verify_log_entry
from signet.reasons import DeterministicFailure, Reason
from signet.trust.model import Keyless

__all__ = ["MAX_LOG_ENTRIES", "MAX_TIMESTAMPS", "KeylessEvidence", "KeylessSignature", "verify"]

MAX_TIMESTAMPS: Final = 8
MAX_LOG_ENTRIES: Final = 8
# How far a log's integration time may run ahead of this machine's clock.
_CLOCK_SKEW: Final = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class KeylessEvidence:
    certificate: bytes  # the leaf, DER
    chain: tuple[bytes, ...]  # what the evidence carried beyond the leaf (never trusted)
    signature: bytes
    signed: bytes  # exactly what the signature is over
    content: SignedContent  # what a log entry must describe
    log_entries: tuple[LogEntry, ...] = ()
    timestamps: tuple[bytes, ...] = ()
    # Bundles v0.2 and later must prove inclusion; v0.1 and cosign's classic layers promise it.
    require_inclusion_proof: bool = True


@dataclass(frozen=True, slots=True)
class KeylessSignature:
    identity: Identity
    scheme: str
    signed_at: datetime  # the earliest trusted signing time
    time_source: str  # "timestamp-authority <uri>" or "transparency-log <url>"
    log_index: int | None = None
    log_url: str | None = None
    # The leaf certificate's serial number and issuer (RFC 4514), which a revocation may name.
    certificate: tuple[int, str] | None = None


def verify(
    evidence: KeylessEvidence, policy: Keyless, now: datetime | None = None
) -> KeylessSignature:
    now = now or datetime.now(UTC)
    root = policy.trusted_root
    # Step 1.
    leaf = load_certificate(evidence.certificate)
    for index, der in enumerate(evidence.chain):
        extra = load_certificate(der, f"certificate {index + 1} of the bundle's chain")
        if extra.issuer == extra.subject:
            raise _invalid(
                "the evidence carries a root certificate; only the trusted root says which "
                "certificate authorities are trusted"
            )
    # Step 2.
    try:
        public_key = load_public_key_der(
            leaf.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    except (UnusableKey, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise _invalid(f"the signing certificate's key is unusable: {exc}") from None
    scheme = public_key.verify(evidence.signed, evidence.signature)
    if scheme is None:
        raise _invalid("the signature does not verify under the signing certificate's key")
    # Step 3.
    if len(evidence.timestamps) > MAX_TIMESTAMPS:
        raise _limit(f"{len(evidence.timestamps)} timestamps; the limit is {MAX_TIMESTAMPS}")
    times: list[tuple[datetime, str]] = []
    for token in evidence.timestamps:
        at = verify_timestamp(token, evidence.signature, root.timestamp_authorities)
        times.append((at, "timestamp-authority"))
    # Step 4.
    if len(evidence.log_entries) > MAX_LOG_ENTRIES:
        raise _limit(f"{len(evidence.log_entries)} log entries; the limit is {MAX_LOG_ENTRIES}")
    if policy.transparency_log and not evidence.log_entries:
        raise _invalid(
            "the signature has no transparency-log entry, and this trusted root requires one"
        )
    log_index = log_url = None
    for entry in evidence.log_entries if policy.transparency_log else ():
        logged = verify_log_entry(
            entry,
            evidence.content,
            root,
            require_inclusion_proof=evidence.require_inclusion_proof,
        )
        log_index, log_url = logged.log_index, logged.log_url
        key_times = [logged.integrated_time] if logged.integrated_time else [t for t, _ in times]
        for moment in key_times:
            if not logged.log_key.validity.contains(moment):
                raise _invalid(
                    f"the log key of {logged.log_url} was not trusted at {moment.isoformat()}"
                )
        if logged.integrated_time is not None:
            if logged.integrated_time > now + _CLOCK_SKEW:
                raise _invalid(
                    f"the log entry's integration time {logged.integrated_time.isoformat()} "
                    "lies in the future"
                )
            times.append((logged.integrated_time, "transparency-log"))
    # Step 5.
    if not times:
        raise _invalid(
            "no trusted signing time: the signature has neither a verified timestamp nor a "
            "signed transparency-log time, so its short-lived certificate cannot be judged"
        )
    authority = None
    for moment, _ in times:
        authority = verify_chain(leaf, root.certificate_authorities, moment)
    assert authority is not None
    # Step 6.
    if policy.certificate_transparency:
        verify_embedded_sct(leaf, authority.chain[0], root.ctlogs)
    # Step 7.
    identity = signing_identity(leaf)
    signed_at, source = min(times)
    source_name = (
        f"timestamp-authority {_authority_uri(root.timestamp_authorities)}"
        if source == "timestamp-authority"
        else f"transparency-log {log_url}"
    )
    with warnings.catch_warnings():  # a CA's odd attribute (a 3-letter country) is not ours
        warnings.simplefilter("ignore", UserWarning)
        certificate = (leaf.serial_number, leaf.issuer.rfc4514_string())
    return KeylessSignature(
        identity, scheme, signed_at, source_name, log_index, log_url, certificate
    )


def _authority_uri(authorities: tuple[Authority, ...]) -> str:
    uris = [a.uri for a in authorities]
    return uris[0] if len(uris) == 1 and uris[0] else "of the trusted root"


def _invalid(message: str) -> DeterministicFailure:
    return DeterministicFailure(Reason.SIGNATURE_INVALID, message)


def _limit(message: str) -> DeterministicFailure:
    return DeterministicFailure(Reason.LIMIT_EXCEEDED, message)
