"""The trust config's lifecycle, applied to a signature that verified (see `trust.lifecycle`).

Every format asks this after a signature verified over exactly the admitted digest, and before
it counts: a revoked key, certificate, identity or piece of evidence never counts, and a key or
identity counts only at a trusted signing time inside its validity window. Key-based evidence is
judged at the time of verification: the transparency-log entries and timestamps a key-based
bundle or `.sig` layer may carry are not verified (a key attestor names no trusted root to
verify them against), so their times are never used.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from signet.reasons import DeterministicFailure
from signet.trust.lifecycle import Revocations, SigningTime, TimeSource, rfc3339
from signet.trust.model import Attestor, KeylessIdentity, TrustedKey

__all__ = ["identity_refusal", "key_refusal", "stamp", "verification_time"]


def verification_time(now: datetime) -> SigningTime:
    return SigningTime(now, TimeSource.VERIFICATION_TIME)


def stamp(when: SigningTime) -> tuple[str, str]:
    """A fact's `signedAt` and `timeSource`."""
    return rfc3339(when.at), str(when.source)


def key_refusal(
    revocations: Revocations,
    attestor: Attestor,
    trusted: TrustedKey,
    evidence: str | None,
    when: SigningTime,
) -> DeterministicFailure | None:
    """Why a valid signature by `trusted` (found in `evidence`, a layer or referrer digest)
    does not count for `attestor`, or None when it does."""
    who = f"key {trusted.id} of {attestor.name}"
    revoked = revocations.key(trusted.key.fingerprint)
    if revoked is not None:
        return revoked.refusal(who)
    revoked = revocations.evidence(evidence)
    if revoked is not None:
        return revoked.refusal(f"the signature {evidence} (by {who})")
    return trusted.window.refusal(who, when)


def identity_refusal(
    revocations: Revocations,
    attestor: Attestor,
    matched: Sequence[KeylessIdentity],
    subject: str,
    issuer: str,
    certificate: tuple[int, str] | None,
    evidence: str,
    when: SigningTime,
) -> DeterministicFailure | None:
    """Why a valid keyless signature certified to (`subject`, `issuer`), which the attestor's
    identities `matched`, does not count, or None when it does (one matching identity whose
    window holds the trusted time is enough)."""
    who = f"identity {subject} (issuer {issuer}) of {attestor.name}"
    revoked = revocations.identity(subject, issuer)
    if revoked is not None:
        return revoked.refusal(who)
    if certificate is not None:
        serial, ca = certificate
        revoked = revocations.certificate(serial, ca)
        if revoked is not None:
            return revoked.refusal(f"certificate {serial:x} (issuer {ca}) of {who}")
    revoked = revocations.evidence(evidence)
    if revoked is not None:
        return revoked.refusal(f"the signature {evidence} (by {who})")
    refusals = [identity.window.refusal(who, when) for identity in matched]
    if not refusals or None in refusals:
        return None
    return next(r for r in refusals if r is not None)
