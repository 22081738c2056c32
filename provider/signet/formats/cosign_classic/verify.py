"""The verification algorithm, on material already fetched. No I/O happens here.

For an image whose manifest digest D the registry resolved and we checked:

1. If there is no `sha256-<hex(D)>.sig` signature manifest, no attestor signed D.
2. Take the distinct signature layers of that manifest; each payload was fetched by its layer
   digest and its SHA-256 checked against it (a mismatch is a corrupt signature).
3. For each key attestor and each of its keys, check each layer's signature over the *exact
   payload bytes*, under every scheme the key type allows, and record which scheme matched. For
   a keyless attestor, only layers carrying a certificate count: the keyless checks of
   `signet.keyless.verify` (the Rekor bundle annotation and/or RFC 3161 timestamp annotation give
   the signing time), then the certified identity must be one of the attestor's.
4. Only for a signature that verified: parse the payload, and require that its
   `critical.image.docker-manifest-digest` equals D. A valid signature over another digest is a
   copied or replayed signature (DIGEST_MISMATCH), never a pass.
5. The trust config's lifecycle (`formats.lifecycle`): a signature that passed 3 and 4 does not
   count when its key, certificate, identity or layer is revoked, or when its trusted signing
   time (keyless: the log or timestamp time; a key: the time of verification) lies outside the
   key's or identity's validity window.
6. An attestor is verified when at least one of its keys passed 3 to 5. Every other attestor gets
   the most specific reason the evidence supports, with a remediation.

Step 3 is the costly one, and an attacker chooses how many signatures an image carries, so each
image has a budget of signature checks shared by all formats (see `formats.judge`); a check that
the signature's shape rules out (see `PublicKey.check_cost`) costs nothing. Attestors past the
budget get LIMIT_EXCEEDED. The order of checks is fixed, so the same evidence always gives the
same verdict.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from signet.formats.cosign_classic.attestations import FetchedEnvelope, verify_attestations
from signet.formats.cosign_classic.manifest import (
    SignatureLayer,
    SignatureManifest,
    parse_payload,
)
from signet.formats.envelopes import OutOfBudget
from signet.formats.keyless import KEYLESS_CHECK_COST, KeylessChecks, KeylessSigner
from signet.formats.lifecycle import key_refusal, stamp, verification_time
from signet.formats.verdict import Budget, Verdict, attestor_failure, most_specific, problem
from signet.keyless.tlog import SignedContent
from signet.keyless.verify import KeylessEvidence
from signet.model.report import Failure, SignatureFact
from signet.reasons import DeterministicFailure, Reason
from signet.trust.lifecycle import Revocations
from signet.trust.model import Attestor, TrustConfig

__all__ = ["FORMAT", "ClassicEvidence", "estimated_checks", "verify"]

FORMAT: Final = "cosign-classic"


@dataclass(frozen=True, slots=True)
class ClassicEvidence:
    """What the registry held for one digest: the `.sig` manifest and each layer's payload."""

    manifest: SignatureManifest
    # Layer digest -> payload bytes (already checked against the digest), or why it is unusable.
    payloads: Mapping[str, bytes | DeterministicFailure]
    # The DSSE envelopes of the `.att` manifest (see `attestations`).
    attestations: tuple[FetchedEnvelope, ...] = ()
    attestation_problems: tuple[DeterministicFailure, ...] = ()


def estimated_checks(evidence: ClassicEvidence | None, trust: TrustConfig, limit: int) -> int:
    """The most verifications `verify` can spend on this evidence (to order the work queue)."""
    if evidence is None:
        return 0
    # An envelope has one signature, checked under at most two schemes per key.
    total = 2 * sum(len(a.keys) for a in trust.attestors) * len(evidence.attestations)
    roots = len({a.keyless.policy_key() for a in trust.attestors if a.keyless})
    keyless_layers = sum(layer.has_certificate for layer in evidence.manifest.layers)
    total += KEYLESS_CHECK_COST * roots * keyless_layers
    for attestor in trust.attestors:
        for trusted in attestor.keys:
            for layer in evidence.manifest.layers:
                total += trusted.key.check_cost(layer.signature)
                if total >= limit:
                    return limit
    return total


def verify(
    image: str,
    digest: str,
    evidence: ClassicEvidence | None,
    trust: TrustConfig,
    budget: Budget,
    now: datetime,
) -> Verdict:
    """Judge the evidence for `digest` (the exact digest being admitted) against `trust` at
    `now` (the time of verification): signatures first, then (with what is left of the budget)
    attestations."""
    if evidence is None:
        return Verdict()
    verdict = _verify_signatures(image, digest, evidence, trust, budget, now)
    attested, unusable = verify_attestations(digest, evidence.attestations, trust, budget, now)
    problems = (*evidence.attestation_problems, *unusable)
    return dataclasses.replace(
        verdict,
        problems=(*verdict.problems, *(problem(image, digest, p) for p in problems)),
        attestations=attested,
    )


def _verify_signatures(
    image: str,
    digest: str,
    evidence: ClassicEvidence,
    trust: TrustConfig,
    budget: Budget,
    now: datetime,
) -> Verdict:
    # Step 1: no signature manifest at all (`merge` says NO_SIGNATURE unless another format
    # has more to say).
    if not evidence.manifest.layers and not evidence.manifest.problems:
        return Verdict()

    # Step 2: usable layers, and what was wrong with the rest.
    problems = list(evidence.manifest.problems)
    usable: list[tuple[bytes, SignatureLayer]] = []
    for layer in evidence.manifest.layers:
        payload = evidence.payloads.get(layer.digest)
        if payload is None:
            payload = DeterministicFailure(
                Reason.SIGNATURE_INVALID, f"payload {layer.digest} was not fetched"
            )
        if isinstance(payload, DeterministicFailure):
            problems.append(payload)
        else:
            usable.append((payload, layer))

    signatures: list[SignatureFact] = []
    failures: list[Failure] = []
    checks = KeylessChecks(budget, trust.revocations)
    for attestor in trust.attestors:
        if attestor.keyless is not None:
            fact, failure = _judge_keyless(image, digest, attestor, usable, problems, checks)
        else:
            fact, failure = _judge_attestor(
                image, digest, attestor, usable, problems, budget, trust.revocations, now
            )
        if fact is not None:
            signatures.append(fact)
        if failure is not None:
            failures.append(failure)

    keyless = sum(layer.has_certificate for layer in evidence.manifest.layers)
    if keyless and not signatures and not any(a.keyless for a in trust.attestors):
        problems.append(
            DeterministicFailure(
                Reason.UNSUPPORTED_FORMAT,
                f"{keyless} signature(s) carry a certificate; keyless verification is not "
                "configured, so they cannot count",
            )
        )
    return Verdict(
        signatures=tuple(signatures),
        failures=tuple(failures),
        problems=tuple(problem(image, digest, p) for p in problems),
    )


def _judge_keyless(
    image: str,
    digest: str,
    attestor: Attestor,
    layers: list[tuple[bytes, SignatureLayer]],
    problems: list[DeterministicFailure],
    checks: KeylessChecks,
) -> tuple[SignatureFact | None, Failure | None]:
    """Steps 3 to 5 for a keyless attestor: only layers that carry a certificate can be its."""
    failed: list[DeterministicFailure] = []
    for payload_bytes, layer in layers:
        if layer.keyless is None:
            continue
        signer = checks.signer(layer.digest, keyless_evidence(layer, payload_bytes), attestor)
        if isinstance(signer, OutOfBudget):
            detail = f"gave up after {checks.budget.limit} signature checks"
            return None, attestor_failure(
                Reason.LIMIT_EXCEEDED, image, attestor.name, detail, digest
            )
        if isinstance(signer, DeterministicFailure):
            failed.append(signer)
            continue
        assert isinstance(signer, KeylessSigner)  # the attestor is keyless
        try:
            payload = parse_payload(payload_bytes)
        except DeterministicFailure as unusable:
            failed.append(unusable)
            continue
        if payload.digest != digest:
            failed.append(
                DeterministicFailure(
                    Reason.DIGEST_MISMATCH,
                    f"a {attestor.name} signature names {payload.digest}, not {digest}",
                )
            )
            continue
        fact = SignatureFact(
            attestor.name,
            signer.key_id,
            FORMAT,
            signer.signature.scheme,
            signer.fact,
            *signer.stamp,
        )
        return fact, None
    if failed:
        worst = most_specific(failed)
        return None, attestor_failure(worst.reason, image, attestor.name, worst.message, digest)
    if not layers and problems:
        return None, attestor_failure(
            problems[0].reason, image, attestor.name, problems[0].message, digest
        )
    if not layers:
        return None, None
    detail = f"{len(layers)} signature(s) found, none keyless; {attestor.name} signs keyless"
    return None, attestor_failure(
        Reason.NOT_SIGNED_BY_ATTESTOR, image, attestor.name, detail, digest
    )


def keyless_evidence(layer: SignatureLayer, payload: bytes) -> KeylessEvidence:
    """A keyless `.sig` layer signs the payload's bytes; Rekor logs it as a hashedrekord of the
    payload's SHA-256, and the timestamp covers the signature. The chain annotation is left
    out: cosign writes Fulcio's whole chain there, root included, and it is never trusted
    (the bundle rule against a root in the chain is for bundles, which must not carry one)."""
    material = layer.keyless
    assert material is not None
    content = SignedContent(
        layer.signature, material.certificate, ("sha256", hashlib.sha256(payload).digest()), None
    )
    return KeylessEvidence(
        material.certificate,
        (),
        layer.signature,
        payload,
        content,
        (material.log_entry,) if material.log_entry else (),
        (material.timestamp,) if material.timestamp else (),
        require_inclusion_proof=False,
    )


def _judge_attestor(
    image: str,
    digest: str,
    attestor: Attestor,
    layers: list[tuple[bytes, SignatureLayer]],
    problems: list[DeterministicFailure],
    budget: Budget,
    revocations: Revocations,
    now: datetime,
) -> tuple[SignatureFact | None, Failure | None]:
    def failed(reason: Reason, detail: str) -> tuple[None, Failure]:
        return None, attestor_failure(reason, image, attestor.name, detail, digest)

    other_digests: list[str] = []
    bad_payloads: list[str] = []
    refused: list[DeterministicFailure] = []
    when = verification_time(now)
    # Step 3: signature over the exact payload bytes, by each key of this attestor.
    for trusted in attestor.keys:
        for payload_bytes, layer in layers:
            signature = layer.signature
            cost = trusted.key.check_cost(signature)
            if cost == 0:
                continue
            if not budget.spend(cost):
                detail = (
                    f"gave up after {budget.limit} signature checks; the image carries "
                    f"{len(layers)} signatures"
                )
                return None, attestor_failure(
                    Reason.LIMIT_EXCEEDED, image, attestor.name, detail, digest
                )
            scheme = trusted.key.verify(payload_bytes, signature)
            if scheme is None:
                continue
            # Step 4: the verified payload must name exactly the digest being admitted.
            try:
                payload = parse_payload(payload_bytes)
            except DeterministicFailure as unusable:
                bad_payloads.append(unusable.message)
                continue
            if payload.digest != digest:
                other_digests.append(payload.digest)
                continue
            # Step 5: the key's lifecycle, at the time of verification.
            refusal = key_refusal(revocations, attestor, trusted, layer.digest, when)
            if refusal is not None:
                refused.append(refusal)
                continue
            # Step 6: one valid signature by one of the attestor's keys is enough.
            return SignatureFact(
                attestor.name, trusted.id, FORMAT, scheme, None, *stamp(when)
            ), None

    if refused:
        worst = most_specific(refused)
        return failed(worst.reason, worst.message)
    if other_digests:
        detail = f"a {attestor.name} signature names {other_digests[0]}, not {digest}"
        return failed(Reason.DIGEST_MISMATCH, detail)
    if bad_payloads:
        detail = f"a {attestor.name} signature covers an unusable payload: {bad_payloads[0]}"
        return None, attestor_failure(
            Reason.SIGNATURE_INVALID, image, attestor.name, detail, digest
        )
    if not layers and problems:  # nothing usable: the attestor's reason is why
        return failed(problems[0].reason, problems[0].message)
    if not layers:
        return failed(Reason.NO_SIGNATURE, f"no signature found for {digest}")
    count = len(layers)
    detail = f"{count} usable signature(s) found; none verifies under a {attestor.name} key"
    return None, attestor_failure(
        Reason.NOT_SIGNED_BY_ATTESTOR, image, attestor.name, detail, digest
    )
