"""Verifying Sigstore bundles found as referrers of digest D. No I/O happens here.

1. Discovery kept only referrer manifests whose `subject` is D (a referrer naming another
   digest, as in a `sha256-<hex>` index copied from another image, is remembered as such) and
   fetched each one's bundle layer by digest.
2. Parse each bundle. A message signature (which names no image) is evidence Signet cannot
   count here; anything malformed is SIGNATURE_INVALID.
3. For each attestor: a key-based bundle counts only for key attestors — check the DSSE
   signature over the envelope's PAE under each of its keys, under every scheme the key type
   allows (`formats.envelopes`); a certificate bundle counts only for keyless attestors — the
   keyless checks of `signet.keyless.verify` (certificate chain at the trusted signing time,
   timestamps, log entry, SCT), then its identity must be one of the attestor's
   (`formats.keyless`).
4. Only for an envelope that verified: parse the in-toto statement and require that one of its
   subjects is exactly D; a valid envelope about another digest is DIGEST_MISMATCH.
5. The trust config's lifecycle (`formats.lifecycle`): a signature or attestation whose key,
   certificate, identity or referrer is revoked, or whose trusted signing time (keyless: the
   log or timestamp time; a key: the time of verification) lies outside the key's or
   identity's validity window, does not count.
6. A statement whose predicate type is cosign's signature type
   (`https://sigstore.dev/cosign/sign/v1`) is a signature by that attestor. Any other predicate
   is an attestation, reported with its facts and **never** a signature: an image that carries
   only attestations is NO_SIGNATURE.
7. An attestor without a signature gets the most specific reason: a lifecycle refusal
   (KEY_REVOKED, KEY_EXPIRED, KEY_NOT_YET_VALID), then DIGEST_MISMATCH, then
   SIGNATURE_INVALID (an unusable statement, or an envelope whose key hint names one of the
   attestor's keys but does not verify under it: tampered), NO_SIGNATURE when every bundle is an
   attestation, then why a keyless check failed, else NOT_SIGNED_BY_ATTESTOR.

A bundle's key hint is used only for that diagnosis, never to choose a key. Transparency-log
entries and timestamps in a key-based bundle are not checked (the key is the trust; a key
attestor names no trusted root to check them against), so a key's window is judged at the time
of verification, and the report says so (`timeSource: verification-time`).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from signet.attest.dsse import IN_TOTO_PAYLOAD_TYPE
from signet.attest.provenance import provenance_facts
from signet.attest.statement import COSIGN_SIGN_PREDICATE as SIGN
from signet.attest.statement import parse_statement
from signet.formats.envelopes import OutOfBudget, Signer, check_envelope
from signet.formats.keyless import KEYLESS_CHECK_COST, KeylessChecks, KeylessSigner
from signet.formats.lifecycle import key_refusal, stamp, verification_time
from signet.formats.sigstore_bundle.bundle import Bundle, parse_bundle
from signet.formats.verdict import Budget, Verdict, attestor_failure, most_specific, problem
from signet.keyless.tlog import SignedContent
from signet.keyless.verify import KeylessEvidence
from signet.model.report import AttestationFact, Failure, KeylessFact, SignatureFact
from signet.reasons import DeterministicFailure, Reason
from signet.trust.model import Attestor, TrustConfig

__all__ = [
    "FORMAT",
    "BundleEvidence",
    "FetchedBundle",
    "estimated_checks",
    "keyless_evidence",
    "verify",
]

FORMAT: Final = "sigstore-bundle"


@dataclass(frozen=True, slots=True)
class FetchedBundle:
    referrer: str  # the digest of the referrer manifest that holds it
    content: bytes | DeterministicFailure
    # The referrer manifest's `dev.sigstore.bundle.predicateType` annotation (unsigned: used
    # only to tell "only attestations" from "signatures by someone else" in a denial).
    predicate_hint: str | None = None


@dataclass(frozen=True, slots=True)
class BundleEvidence:
    bundles: tuple[FetchedBundle, ...] = ()
    # Subject digests of referrers listed for D that name another image.
    foreign_subjects: tuple[str, ...] = ()
    problems: tuple[DeterministicFailure, ...] = field(default=())


def estimated_checks(evidence: BundleEvidence | None, trust: TrustConfig, limit: int) -> int:
    """At most two schemes per key per bundle (one signature each), and one keyless check per
    bundle and trusted root, capped at `limit`."""
    if evidence is None:
        return 0
    keys = sum(len(a.keys) for a in trust.attestors)
    roots = len({a.keyless.policy_key() for a in trust.attestors if a.keyless})
    per_bundle = 2 * keys + KEYLESS_CHECK_COST * roots
    return min(limit, per_bundle * len(evidence.bundles))


def verify(
    image: str,
    digest: str,
    evidence: BundleEvidence | None,
    trust: TrustConfig,
    budget: Budget,
    now: datetime,
) -> Verdict:
    """Judge the bundles for `digest` against `trust` at `now` (the time of verification)."""
    if evidence is None or not (evidence.bundles or evidence.foreign_subjects or evidence.problems):
        return Verdict()
    # Step 2: parse, and set aside what cannot count.
    problems = list(evidence.problems)
    envelopes: list[tuple[FetchedBundle, Bundle]] = []
    keyless = 0
    checks = KeylessChecks(budget, trust.revocations)
    for fetched in evidence.bundles:
        try:
            if isinstance(fetched.content, DeterministicFailure):
                raise fetched.content
            bundle = parse_bundle(fetched.content)
        except DeterministicFailure as failure:
            problems.append(
                DeterministicFailure(
                    failure.reason, f"referrer {fetched.referrer}: {failure.message}"
                )
            )
            continue
        if bundle.has_certificate:
            keyless += 1
        if bundle.envelope is None:
            problems.append(
                DeterministicFailure(
                    Reason.UNSUPPORTED_FORMAT,
                    f"referrer {fetched.referrer} holds a message-signature bundle, which names "
                    "no image; cosign signs images with a DSSE envelope",
                )
            )
        elif bundle.envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
            problems.append(
                DeterministicFailure(
                    Reason.UNSUPPORTED_FORMAT,
                    f"referrer {fetched.referrer} signs a {bundle.envelope.payload_type!r} "
                    f"payload, not {IN_TOTO_PAYLOAD_TYPE!r}",
                )
            )
        else:
            envelopes.append((fetched, bundle))

    signatures: list[SignatureFact] = []
    failures: list[Failure] = []
    attestations: list[AttestationFact] = []
    for attestor in trust.attestors:
        fact, unmet, made = _judge_attestor(
            image, digest, attestor, envelopes, evidence.foreign_subjects, checks, budget, now
        )
        signatures.extend([fact] if fact else [])
        failures.extend([unmet] if unmet else [])
        attestations.extend(made)
    if keyless and not signatures and not any(a.keyless for a in trust.attestors):
        problems.append(
            DeterministicFailure(
                Reason.UNSUPPORTED_FORMAT,
                f"{keyless} bundle(s) carry a certificate; keyless verification is not "
                "configured, so they cannot count",
            )
        )
    return Verdict(
        tuple(signatures),
        tuple(failures),
        tuple(problem(image, digest, p) for p in problems),
        tuple(attestations),
    )


def _judge_attestor(
    image: str,
    digest: str,
    attestor: Attestor,
    envelopes: list[tuple[FetchedBundle, Bundle]],
    foreign: tuple[str, ...],
    checks: KeylessChecks,
    budget: Budget,
    now: datetime,
) -> tuple[SignatureFact | None, Failure | None, list[AttestationFact]]:
    hints = {_hint(trusted.key.fingerprint) for trusted in attestor.keys}
    fact: SignatureFact | None = None
    made: list[AttestationFact] = []
    other_digests: list[str] = list(foreign)
    unusable: list[str] = []
    keyless_failures: list[DeterministicFailure] = []
    refused: list[DeterministicFailure] = []
    attested = {f.referrer for f, _ in envelopes if f.predicate_hint not in (None, SIGN)}
    for fetched, bundle in envelopes:
        assert bundle.envelope is not None
        # Step 3: the envelope's signature, by one of this attestor's keys or identities.
        signer = _signer(fetched, bundle, attestor, checks, budget)
        if isinstance(signer, DeterministicFailure):
            (refused if signer.reason.lifecycle else keyless_failures).append(signer)
            continue
        if signer is None:
            if bundle.key_hint is not None and bundle.key_hint in hints:
                unusable.append(
                    f"referrer {fetched.referrer} names a {attestor.name} key, but its signature "
                    "does not verify under it (tampered or corrupt)"
                )
            continue
        if isinstance(signer, OutOfBudget):
            detail = (
                f"gave up after {budget.limit} signature checks; the image carries "
                f"{len(envelopes)} bundles"
            )
            gave_up = attestor_failure(Reason.LIMIT_EXCEEDED, image, attestor.name, detail, digest)
            return fact, None if fact else gave_up, made
        key_id, scheme, keyless, signed = _signed_by(signer, now)
        # Step 4: what was signed must be about exactly D.
        try:
            statement = parse_statement(bundle.envelope.payload)
        except DeterministicFailure as failure:
            unusable.append(f"referrer {fetched.referrer}: {failure.message}")
            continue
        if not statement.names(digest):
            other_digests.append(
                statement.subject_digests[0] if statement.subject_digests else "no sha256 digest"
            )
            continue
        # Step 5: the key's lifecycle (a keyless signer's was judged with its identity).
        if isinstance(signer, Signer):
            when = verification_time(now)
            refusal = key_refusal(checks.revocations, attestor, signer.key, fetched.referrer, when)
            if refusal is not None:
                refused.append(refusal)
                continue
        # Step 6: a signature, or an attestation (never both).
        if statement.is_signature:
            fact = fact or SignatureFact(attestor.name, key_id, FORMAT, scheme, keyless, *signed)
        else:
            facts = provenance_facts(statement.predicate_type, statement.predicate)
            attested.add(fetched.referrer)
            made.append(
                AttestationFact(
                    attestor.name, key_id, FORMAT, statement.predicate_type, facts, keyless, *signed
                )
            )
    if fact is not None:
        return fact, None, made
    # Step 7: the most specific reason.
    if refused:
        worst = most_specific(refused)
        detail, reason = worst.message, worst.reason
    elif other_digests:
        detail = f"a {attestor.name} bundle names {other_digests[0]}, not {digest}"
        if foreign and other_digests[0] == foreign[0]:
            detail = f"a referrer of {digest} is about {foreign[0]} (copied from another image?)"
        reason = Reason.DIGEST_MISMATCH
    elif unusable:
        detail, reason = unusable[0], Reason.SIGNATURE_INVALID
    elif envelopes and len(attested) == len(envelopes) and not keyless_failures:
        detail = (
            f"{len(envelopes)} attestation bundle(s) found and no signature; an attestation "
            "is not a signature"
        )
        reason = Reason.NO_SIGNATURE
    elif keyless_failures:
        worst = most_specific(keyless_failures)
        detail, reason = worst.message, worst.reason
    elif envelopes:
        what = "identity" if attestor.keyless else "key"
        detail = f"{len(envelopes)} bundle(s) found; none verifies under a {attestor.name} {what}"
        reason = Reason.NOT_SIGNED_BY_ATTESTOR
    else:
        return None, None, made
    return None, attestor_failure(reason, image, attestor.name, detail, digest), made


def _signer(
    fetched: FetchedBundle,
    bundle: Bundle,
    attestor: Attestor,
    checks: KeylessChecks,
    budget: Budget,
) -> Signer | KeylessSigner | DeterministicFailure | OutOfBudget | None:
    """A certificate bundle counts only for keyless attestors, a key bundle only for key ones."""
    assert bundle.envelope is not None
    if bundle.has_certificate:
        return checks.signer(fetched.referrer, keyless_evidence(bundle), attestor)
    if attestor.keyless is not None:
        return None
    return check_envelope(bundle.envelope, attestor, budget)


def _signed_by(
    signer: Signer | KeylessSigner, now: datetime
) -> tuple[str, str, KeylessFact | None, tuple[str, str]]:
    if isinstance(signer, KeylessSigner):
        return signer.key_id, signer.signature.scheme, signer.fact, signer.stamp
    return signer.key.id, signer.scheme, None, stamp(verification_time(now))


def keyless_evidence(bundle: Bundle, artifact: bytes | None = None) -> KeylessEvidence:
    """What `signet.keyless.verify` judges of a certificate bundle: for a DSSE envelope, the
    signature over its PAE; for a message signature, the signature over `artifact`."""
    assert bundle.certificate is not None
    if bundle.envelope is not None:
        signed = bundle.envelope.signed_bytes
        content = SignedContent(bundle.signature, bundle.certificate, None, bundle.envelope)
    else:
        assert bundle.message is not None and artifact is not None
        signed = artifact
        digest = (
            bundle.message.algorithm,
            hashlib.new(bundle.message.algorithm, artifact).digest(),
        )
        content = SignedContent(bundle.signature, bundle.certificate, digest, None)
    return KeylessEvidence(
        bundle.certificate,
        bundle.chain,
        bundle.signature,
        signed,
        content,
        bundle.tlog_entries,
        bundle.timestamps,
        require_inclusion_proof=bundle.version != "0.1",
    )


def _hint(fingerprint: str) -> str:
    """cosign's key hint: base64 of the SHA-256 of the DER SubjectPublicKeyInfo."""
    return base64.b64encode(bytes.fromhex(fingerprint)).decode()
