"""The verification algorithm, on material already fetched. No I/O happens here.

For an image whose manifest digest D the registry resolved and we checked:

1. If there is no `sha256-<hex(D)>.sig` signature manifest, no attestor signed D.
2. Take the distinct signature layers of that manifest; each payload was fetched by its layer
   digest and its SHA-256 checked against it (a mismatch is a corrupt signature).
3. For each attestor and each of its keys, check each layer's signature over the *exact payload
   bytes*, under every scheme the key type allows, and record which scheme matched.
4. Only for a signature that verified: parse the payload, and require that its
   `critical.image.docker-manifest-digest` equals D. A valid signature over another digest is a
   copied or replayed signature (DIGEST_MISMATCH), never a pass.
5. An attestor is verified when at least one of its keys passed 3 and 4. Every other attestor gets
   the most specific reason the evidence supports, with a remediation.

Step 3 is the costly one, and an attacker chooses how many signatures an image carries, so each
image has a budget of signature checks (`MAX_SIGNATURE_CHECKS`); a check that the signature's
shape rules out (see `PublicKey.check_cost`) costs nothing. Attestors past the budget get
LIMIT_EXCEEDED. The order of checks is fixed, so the same evidence always gives the same report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from signet.formats.cosign_classic.manifest import SignatureManifest, parse_payload
from signet.model.report import Failure, Report, SignatureFact, remediation
from signet.reasons import DeterministicFailure, Reason
from signet.trust.model import Attestor, TrustConfig

__all__ = [
    "MAX_SIGNATURE_CHECKS",
    "ClassicEvidence",
    "estimated_checks",
    "failure_report",
    "verify",
]

CLASSIC_FORMAT = "cosign-classic"
# Verifications per image: 5 attestors x 2 keys x 25 signatures with room to spare. At ~1.8 ms
# for the costliest check (P-521) an image costs at most ~0.5 s of one core.
MAX_SIGNATURE_CHECKS: Final = 256


@dataclass(frozen=True, slots=True)
class ClassicEvidence:
    """What the registry held for one digest: the `.sig` manifest and each layer's payload."""

    manifest: SignatureManifest
    # Layer digest -> payload bytes (already checked against the digest), or why it is unusable.
    payloads: Mapping[str, bytes | DeterministicFailure]


def estimated_checks(evidence: ClassicEvidence | None, trust: TrustConfig) -> int:
    """The most verifications `verify` can spend on this evidence (to order the work queue)."""
    if evidence is None:
        return 0
    total = 0
    for attestor in trust.attestors:
        for trusted in attestor.keys:
            for layer in evidence.manifest.layers:
                total += trusted.key.check_cost(layer.signature)
                if total >= MAX_SIGNATURE_CHECKS:
                    return MAX_SIGNATURE_CHECKS
    return total


class _Budget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def spend(self, cost: int) -> bool:
        if cost > self.left:
            self.left = 0
            return False
        self.left -= cost
        return True


def verify(
    image: str,
    digest: str,
    evidence: ClassicEvidence | None,
    trust: TrustConfig,
    *,
    max_checks: int = MAX_SIGNATURE_CHECKS,
) -> Report:
    """Judge the evidence for `digest` (the exact digest being admitted) against `trust`."""
    # Step 1: no signature manifest at all.
    if evidence is None or (not evidence.manifest.layers and not evidence.manifest.problems):
        return Report(
            image,
            digest,
            failures=tuple(
                _failure(
                    Reason.NO_SIGNATURE, image, a.name, f"no signature found for {digest}", digest
                )
                for a in trust.attestors
            ),
        )

    # Step 2: usable layers, and what was wrong with the rest.
    problems = list(evidence.manifest.problems)
    usable: list[tuple[bytes, bytes]] = []
    for layer in evidence.manifest.layers:
        payload = evidence.payloads.get(layer.digest)
        if payload is None:
            payload = DeterministicFailure(
                Reason.SIGNATURE_INVALID, f"payload {layer.digest} was not fetched"
            )
        if isinstance(payload, DeterministicFailure):
            problems.append(payload)
        else:
            usable.append((payload, layer.signature))

    signatures: list[SignatureFact] = []
    failures: list[Failure] = []
    budget = _Budget(max_checks)
    for attestor in trust.attestors:
        fact, failure = _judge_attestor(image, digest, attestor, usable, bool(problems), budget)
        if fact is not None:
            signatures.append(fact)
        if failure is not None:
            failures.append(failure)

    keyless = sum(layer.has_certificate for layer in evidence.manifest.layers)
    if keyless and len(signatures) == 0:
        problems.append(
            DeterministicFailure(
                Reason.UNSUPPORTED_FORMAT,
                f"{keyless} signature(s) carry a certificate; keyless verification is not "
                "configured, so they cannot count",
            )
        )
    failures.extend(
        Failure(None, p.reason, remediation(p.reason, image=_pinned(image, digest)), p.message)
        for p in problems
    )
    return Report(
        image,
        digest,
        verified=tuple(s.attestor for s in signatures),
        signatures=tuple(signatures),
        failures=tuple(failures),
    )


def _judge_attestor(
    image: str,
    digest: str,
    attestor: Attestor,
    layers: list[tuple[bytes, bytes]],
    had_problems: bool,
    budget: _Budget,
) -> tuple[SignatureFact | None, Failure | None]:
    other_digests: list[str] = []
    bad_payloads: list[str] = []
    # Step 3: signature over the exact payload bytes, by each key of this attestor.
    for trusted in attestor.keys:
        for payload_bytes, signature in layers:
            cost = trusted.key.check_cost(signature)
            if cost == 0:
                continue
            if not budget.spend(cost):
                detail = (
                    f"gave up after {budget.limit} signature checks; the image carries "
                    f"{len(layers)} signatures"
                )
                return None, _failure(Reason.LIMIT_EXCEEDED, image, attestor.name, detail, digest)
            scheme = trusted.key.verify(payload_bytes, signature)
            if scheme is None:
                continue
            # Step 4: the verified payload must name exactly the digest being admitted.
            try:
                payload = parse_payload(payload_bytes)
            except DeterministicFailure as problem:
                bad_payloads.append(problem.message)
                continue
            if payload.digest != digest:
                other_digests.append(payload.digest)
                continue
            # Step 5: one valid signature by one of the attestor's keys is enough.
            return SignatureFact(attestor.name, trusted.id, CLASSIC_FORMAT, scheme), None

    if other_digests:
        detail = f"a {attestor.name} signature names {other_digests[0]}, not {digest}"
        return None, _failure(Reason.DIGEST_MISMATCH, image, attestor.name, detail, digest)
    if bad_payloads:
        detail = f"a {attestor.name} signature covers an unusable payload: {bad_payloads[0]}"
        return None, _failure(Reason.SIGNATURE_INVALID, image, attestor.name, detail, digest)
    if not layers and not had_problems:
        detail = f"no signature found for {digest}"
        return None, _failure(Reason.NO_SIGNATURE, image, attestor.name, detail, digest)
    count = len(layers)
    detail = f"{count} usable signature(s) found; none verifies under a {attestor.name} key"
    return None, _failure(Reason.NOT_SIGNED_BY_ATTESTOR, image, attestor.name, detail, digest)


def failure_report(image: str, digest: str | None, failure: DeterministicFailure) -> Report:
    """A report for an image that could not be judged at all (bad reference, not found, ...)."""
    target = _pinned(image, digest) if digest else image
    return Report(
        image,
        digest,
        failures=(
            Failure(
                None, failure.reason, remediation(failure.reason, image=target), failure.message
            ),
        ),
    )


def _failure(
    reason: Reason, image: str, attestor: str, detail: str, digest: str | None = None
) -> Failure:
    target = _pinned(image, digest) if digest else image
    return Failure(attestor, reason, remediation(reason, image=target, attestor=attestor), detail)


def _pinned(image: str, digest: str) -> str:
    """`repo@digest` for remediation texts: sign what is admitted, not a moving tag."""
    if "@" in image:
        return image
    slash = image.rfind("/")
    colon = image.rfind(":")
    repo = image[:colon] if colon > slash else image
    return f"{repo}@{digest}"
