"""Report v1: the facts Signet states about one image, and what a person can do about each failure.

A report states facts, not the policy decision: which configured attestors produced a valid
signature over the exact digest, and for every attestor that did not, a stable reason code and a
one-line remediation; and the attestations (in-toto statements about the digest) each attestor
verifiably made, with the facts the policy may require of them. The Rego pack decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from signet.reasons import Reason

__all__ = [
    "REPORT_VERSION",
    "AttestationFact",
    "Failure",
    "KeylessFact",
    "Report",
    "SignatureFact",
    "remediation",
]

REPORT_VERSION = 1


@dataclass(frozen=True, slots=True)
class KeylessFact:
    """Who Fulcio certified for a keyless signature, and the trusted time it signed at."""

    subject: str
    issuer: str
    claims: tuple[tuple[str, str], ...]
    signed_at: str  # RFC 3339, UTC
    time_source: str  # "timestamp-authority <uri>" or "transparency-log <url>"
    log_index: int | None = None
    log_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "claims": dict(self.claims),
            "signedAt": self.signed_at,
            "timeSource": self.time_source,
            "logIndex": self.log_index,
            "logURL": self.log_url,
        }


@dataclass(frozen=True, slots=True)
class SignatureFact:
    """A verified signature. `key` is the key's id, or for a keyless signature the certified
    subject (the details are in `keyless`)."""

    attestor: str
    key: str
    format: str
    scheme: str
    keyless: KeylessFact | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attestor": self.attestor,
            "key": self.key,
            "format": self.format,
            "scheme": self.scheme,
        }
        if self.keyless is not None:
            out["keyless"] = self.keyless.to_json()
        return out


@dataclass(frozen=True, slots=True)
class AttestationFact:
    """A verified attestation: who signed which predicate about the digest, and what it says.

    `facts` are flat strings taken from the predicate (e.g. SLSA provenance's builder id and
    source repository); the rest of the predicate is not kept."""

    attestor: str
    key: str
    format: str
    predicate_type: str
    facts: tuple[tuple[str, str], ...] = ()
    keyless: KeylessFact | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attestor": self.attestor,
            "key": self.key,
            "format": self.format,
            "predicateType": self.predicate_type,
            "facts": dict(self.facts),
        }
        if self.keyless is not None:
            out["keyless"] = self.keyless.to_json()
        return out


@dataclass(frozen=True, slots=True)
class Failure:
    attestor: str | None
    reason: Reason
    remediation: str
    detail: str = ""

    def __post_init__(self) -> None:
        if self.reason.transient:
            raise ValueError(f"a report cannot hold the transient reason {self.reason}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attestor": self.attestor,
            "reason": str(self.reason),
            "remediation": self.remediation,
        }
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass(frozen=True, slots=True)
class Report:
    image: str
    digest: str | None
    verified: tuple[str, ...] = ()
    signatures: tuple[SignatureFact, ...] = ()
    failures: tuple[Failure, ...] = ()
    attestations: tuple[AttestationFact, ...] = ()
    version: int = field(default=REPORT_VERSION)

    def __post_init__(self) -> None:
        named = {s.attestor for s in self.signatures}
        if set(self.verified) != named:
            raise ValueError("verified must list exactly the attestors that have signatures")
        if any(f.attestor in self.verified for f in self.failures):
            raise ValueError("a verified attestor cannot also have a failure")
        if self.digest is None and self.attestations:
            raise ValueError("an attestation is always about a digest")

    @property
    def reasons(self) -> tuple[Reason, ...]:
        return tuple(dict.fromkeys(f.reason for f in self.failures))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "image": self.image,
            "digest": self.digest,
            "verified": list(self.verified),
            "signatures": [s.to_json() for s in self.signatures],
            "failures": [f.to_json() for f in self.failures],
            "attestations": [a.to_json() for a in self.attestations],
        }


def remediation(
    reason: Reason, *, image: str, attestor: str | None = None, keyless: bool = False
) -> str:
    """A one-line instruction for the person who reads the denial (`keyless`: the attestor is
    identities Fulcio certifies, not keys)."""
    if keyless and attestor:
        as_identity = f"keyless as an identity of {attestor}"
        keyless_texts = {
            Reason.NO_SIGNATURE: (
                f"sign {image} {as_identity} (cosign sign, with that identity's OIDC token)"
            ),
            Reason.NOT_SIGNED_BY_ATTESTOR: (
                f"sign {image} {as_identity}, or add the signer's identity to {attestor}"
            ),
            Reason.SIGNATURE_INVALID: (
                f"re-sign {image} {as_identity}; the stored signature does not verify"
            ),
            Reason.DIGEST_MISMATCH: (
                f"sign {image} itself {as_identity}; the signature found names another digest"
            ),
            Reason.UNSUPPORTED_FORMAT: (
                f"sign {image} {as_identity} as cosign does (a .sig tag or a Sigstore bundle)"
            ),
        }
        if reason in keyless_texts:
            return keyless_texts[reason]
    who = f"a {attestor} key" if attestor else "a trusted key"
    texts = {
        Reason.INVALID_REFERENCE: f"fix the image reference {image!r} in the pod spec",
        Reason.IMAGE_NOT_FOUND: f"push {image} to its registry, or correct the reference",
        Reason.NO_SIGNATURE: f"sign {image} with {who} (signet sign / cosign sign)",
        Reason.NOT_SIGNED_BY_ATTESTOR: f"sign {image} with {who}",
        Reason.SIGNATURE_INVALID: f"re-sign {image} with {who}; its stored signature is corrupt",
        Reason.DIGEST_MISMATCH: (
            f"sign {image} itself with {who}; the signature found names another digest"
        ),
        Reason.LIMIT_EXCEEDED: f"remove surplus signatures and referrers from {image}",
        Reason.UNSUPPORTED_FORMAT: (
            f"sign {image} with {who} as cosign does (a .sig tag or a Sigstore bundle)"
        ),
    }
    return texts.get(reason, f"retry later; {reason} is not about the image itself")
