"""What one evidence format concludes about an image, and the merge of all formats' verdicts.

Every format answers the same question on material already fetched — which configured attestors
signed exactly this digest — as a `Verdict`: a signature fact per attestor it verified, otherwise
at most one failure per attestor, image-level problems, and the attestations it verified.

`merge` combines them:

1. An attestor verified by any format is verified (each format that verified it is listed).
2. Otherwise its reason is the most specific one any format gives, in `PRECEDENCE` order (and
   for a keyless attestor, the remediation speaks of identities): a valid signature over
   exactly this digest that the trust config's lifecycle refuses (KEY_REVOKED, KEY_EXPIRED,
   KEY_NOT_YET_VALID: the attestor did sign, with a key that no longer or not yet counts) says
   most, then a valid signature over another digest (DIGEST_MISMATCH), a corrupt or tampered
   signature (SIGNATURE_INVALID), a check given up (LIMIT_EXCEEDED), signatures by someone else
   (NOT_SIGNED_BY_ATTESTOR), evidence Signet cannot judge (UNSUPPORTED_FORMAT), and nothing at
   all (NO_SIGNATURE) says least. Between equals, the first format's detail is kept.
3. Image-level problems and attestations are listed once each, in format order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from signet.model.report import AttestationFact, Failure, Report, SignatureFact, remediation
from signet.reasons import DeterministicFailure, Reason
from signet.trust.model import TrustConfig

__all__ = [
    "PRECEDENCE",
    "Budget",
    "Verdict",
    "attestor_failure",
    "failure_report",
    "merge",
    "most_specific",
    "no_signature",
    "pinned",
    "problem",
]

PRECEDENCE = (
    Reason.KEY_REVOKED,
    Reason.KEY_EXPIRED,
    Reason.KEY_NOT_YET_VALID,
    Reason.DIGEST_MISMATCH,
    Reason.SIGNATURE_INVALID,
    Reason.LIMIT_EXCEEDED,
    Reason.NOT_SIGNED_BY_ATTESTOR,
    Reason.UNSUPPORTED_FORMAT,
    Reason.NO_SIGNATURE,
)
_RANK = {reason: rank for rank, reason in enumerate(PRECEDENCE)}


@dataclass(frozen=True, slots=True)
class Verdict:
    signatures: tuple[SignatureFact, ...] = ()
    failures: tuple[Failure, ...] = ()
    problems: tuple[Failure, ...] = ()
    attestations: tuple[AttestationFact, ...] = ()

    def __post_init__(self) -> None:
        signed = {s.attestor for s in self.signatures}
        failed = [f.attestor for f in self.failures]
        if None in failed or len(set(failed)) != len(failed) or signed & set(failed):
            raise ValueError("a verdict has at most one failure per attestor, and none for one")
        if any(p.attestor is not None for p in self.problems):
            raise ValueError("problems are about the image, not an attestor")


class Budget:
    """Signature checks one image may still cost, shared by every format (see `crypto.keys`)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def spend(self, cost: int) -> bool:
        if cost > self.left:
            self.left = 0
            return False
        self.left -= cost
        return True


def merge(image: str, digest: str, trust: TrustConfig, verdicts: Sequence[Verdict]) -> Report:
    signatures: list[SignatureFact] = []
    failures: list[Failure] = []
    for attestor in trust.attestors:
        facts = [s for v in verdicts for s in v.signatures if s.attestor == attestor.name]
        if facts:
            signatures.extend(dict.fromkeys(facts))
            continue
        candidates = [f for v in verdicts for f in v.failures if f.attestor == attestor.name]
        if candidates:
            failure = min(candidates, key=lambda f: _RANK.get(f.reason, len(_RANK)))
        else:
            failure = no_signature(image, digest, attestor.name)
        if attestor.keyless is not None:  # what to do is said in identities, not keys
            text = remediation(
                failure.reason, image=pinned(image, digest), attestor=attestor.name, keyless=True
            )
            failure = dataclasses.replace(failure, remediation=text)
        failures.append(failure)
    failures.extend(_distinct(p for v in verdicts for p in v.problems))
    return Report(
        image,
        digest,
        verified=tuple(dict.fromkeys(s.attestor for s in signatures)),
        signatures=tuple(signatures),
        failures=tuple(failures),
        attestations=tuple(dict.fromkeys(a for v in verdicts for a in v.attestations)),
    )


def most_specific(failures: Sequence[DeterministicFailure]) -> DeterministicFailure:
    """The failure whose reason says most (`PRECEDENCE`); the first of equals."""
    return min(failures, key=lambda f: _RANK.get(f.reason, len(_RANK)))


def _distinct(failures: Iterable[Failure]) -> list[Failure]:
    return list(dict.fromkeys(failures))


def no_signature(image: str, digest: str, attestor: str) -> Failure:
    return attestor_failure(
        Reason.NO_SIGNATURE, image, attestor, f"no signature found for {digest}", digest
    )


def attestor_failure(
    reason: Reason, image: str, attestor: str, detail: str, digest: str | None = None
) -> Failure:
    target = pinned(image, digest) if digest else image
    return Failure(attestor, reason, remediation(reason, image=target, attestor=attestor), detail)


def problem(image: str, digest: str, failure: DeterministicFailure) -> Failure:
    """An image-level failure: evidence that is there but unusable, whoever signed it."""
    target = pinned(image, digest)
    return Failure(None, failure.reason, remediation(failure.reason, image=target), failure.message)


def failure_report(image: str, digest: str | None, failure: DeterministicFailure) -> Report:
    """A report for an image that could not be judged at all (bad reference, not found, ...)."""
    target = pinned(image, digest) if digest else image
    return Report(
        image,
        digest,
        failures=(
            Failure(
                None, failure.reason, remediation(failure.reason, image=target), failure.message
            ),
        ),
    )


def pinned(image: str, digest: str) -> str:
    """`repo@digest` for remediation texts: sign what is admitted, not a moving tag."""
    if "@" in image:
        return image
    slash = image.rfind("/")
    colon = image.rfind(":")
    repo = image[:colon] if colon > slash else image
    return f"{repo}@{digest}"
