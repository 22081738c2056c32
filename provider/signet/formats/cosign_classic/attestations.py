"""cosign's classic attestations: the `sha256-<hex>.att` tag, one DSSE envelope per layer.

1. Each layer of type `application/vnd.dsse.envelope.v1+json` is a DSSE envelope (fetched by
   digest, checked); its `predicateType` annotation is unsigned and not read. A keyless layer's
   certificate, Rekor bundle and RFC 3161 timestamp annotations are read with it.
2. For each key attestor, the envelope's signature over the PAE must verify under one of its
   keys; for each keyless attestor, a keyless layer must pass the keyless checks (the timestamp
   covers the raw DSSE signature) with one of its identities (`formats.keyless`).
3. The in-toto statement (v0.1 in every cosign version) must name the admitted digest among its
   subjects; the verified predicate type and its facts are reported. An attestation is never a
   signature, whatever its predicate type.
4. An attestation by a revoked key (or identity, certificate, envelope) or made outside the
   signer's validity window is not reported (`formats.lifecycle`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from signet.attest.dsse import IN_TOTO_PAYLOAD_TYPE, Envelope, parse_envelope
from signet.attest.provenance import provenance_facts
from signet.attest.statement import parse_statement
from signet.formats.cosign_classic.manifest import KeylessMaterial, keyless_material
from signet.formats.envelopes import Signer, check_envelope
from signet.formats.keyless import KeylessChecks, KeylessSigner
from signet.formats.lifecycle import key_refusal, stamp, verification_time
from signet.formats.verdict import Budget
from signet.keyless.tlog import SignedContent
from signet.keyless.verify import KeylessEvidence
from signet.model.json_object import json_object
from signet.model.reference import is_sha256_digest
from signet.model.report import AttestationFact
from signet.reasons import DeterministicFailure, Reason
from signet.trust.model import Attestor, TrustConfig

__all__ = [
    "ATTESTATION_MEDIA_TYPE",
    "MAX_ATTESTATIONS",
    "MAX_ENVELOPE_SIZE",
    "AttestationLayer",
    "attestation_layers",
    "attestation_tag",
    "verify_attestations",
]

ATTESTATION_MEDIA_TYPE: Final = "application/vnd.dsse.envelope.v1+json"
MAX_ATTESTATIONS: Final = 32
# Provenance of a large build reaches a few hundred KiB.
MAX_ENVELOPE_SIZE: Final = 1024 * 1024
# A keyless `.att` layer's annotations (certificate, chain, Rekor bundle, timestamp) reach ~9 KiB.
MAX_ATTESTATION_MANIFEST_SIZE: Final = 512 * 1024
FORMAT: Final = "cosign-classic"


@dataclass(frozen=True, slots=True)
class AttestationLayer:
    digest: str
    keyless: KeylessMaterial | None = None


@dataclass(frozen=True, slots=True)
class FetchedEnvelope:
    digest: str
    content: bytes | DeterministicFailure
    keyless: KeylessMaterial | None = None


def attestation_tag(digest: str) -> str:
    if not is_sha256_digest(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest.replace(":", "-") + ".att"


def attestation_layers(raw: bytes) -> tuple[AttestationLayer, ...]:
    """The distinct envelope layers of an `.att` manifest (at most MAX_ATTESTATIONS)."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise DeterministicFailure(
            Reason.UNSUPPORTED_FORMAT, "the attestation manifest is not JSON"
        ) from exc
    layers = document.get("layers") if isinstance(document, dict) else None
    if not isinstance(layers, list):
        raise DeterministicFailure(
            Reason.UNSUPPORTED_FORMAT, "the attestation manifest has no layers list"
        )
    found: dict[str, AttestationLayer] = {}
    for layer in layers:
        if not isinstance(layer, dict) or layer.get("mediaType") != ATTESTATION_MEDIA_TYPE:
            continue
        digest, size = layer.get("digest"), layer.get("size")
        if isinstance(digest, str) and is_sha256_digest(digest) and _fits(size):
            found.setdefault(digest, AttestationLayer(digest, _keyless(digest, layer)))
    distinct = tuple(found.values())
    if len(distinct) > MAX_ATTESTATIONS:
        raise DeterministicFailure(
            Reason.LIMIT_EXCEEDED,
            f"the image has {len(distinct)} attestations; the limit is {MAX_ATTESTATIONS}",
        )
    return distinct


def verify_attestations(
    digest: str,
    envelopes: Sequence[FetchedEnvelope],
    trust: TrustConfig,
    budget: Budget,
    now: datetime,
) -> tuple[tuple[AttestationFact, ...], tuple[DeterministicFailure, ...]]:
    """The verified attestations about `digest`, and what was wrong with unusable envelopes
    (`now`: the time of verification, which key-based envelopes are judged at)."""
    problems: list[DeterministicFailure] = []
    parsed: list[tuple[FetchedEnvelope, Envelope]] = []
    for fetched in envelopes:  # Step 1
        try:
            if isinstance(fetched.content, DeterministicFailure):
                raise fetched.content
            envelope = parse_envelope(_json(fetched.content), max_payload=MAX_ENVELOPE_SIZE)
        except DeterministicFailure as failure:
            where = f"attestation {fetched.digest}"
            problems.append(DeterministicFailure(failure.reason, f"{where}: {failure.message}"))
            continue
        if envelope.payload_type == IN_TOTO_PAYLOAD_TYPE:
            parsed.append((fetched, envelope))
    made: list[AttestationFact] = []
    checks = KeylessChecks(budget, trust.revocations)
    when = verification_time(now)
    for attestor in trust.attestors:
        for fetched, envelope in parsed:
            signer = _signer(fetched, envelope, attestor, checks, budget)  # Step 2
            if signer is None:
                continue  # not this attestor's, or out of budget: nothing is attested
            try:
                statement = parse_statement(envelope.payload)
            except DeterministicFailure:
                continue
            if not statement.names(digest):  # Step 3
                continue
            if isinstance(signer, KeylessSigner):  # its lifecycle was judged with its identity
                key_id, keyless, signed = signer.key_id, signer.fact, signer.stamp
            elif key_refusal(trust.revocations, attestor, signer.key, fetched.digest, when):
                continue  # Step 4
            else:
                key_id, keyless, signed = signer.key.id, None, stamp(when)
            facts = provenance_facts(statement.predicate_type, statement.predicate)
            made.append(
                AttestationFact(
                    attestor.name, key_id, FORMAT, statement.predicate_type, facts, keyless, *signed
                )
            )
    return tuple(dict.fromkeys(made)), tuple(problems)


def _signer(
    fetched: FetchedEnvelope,
    envelope: Envelope,
    attestor: Attestor,
    checks: KeylessChecks,
    budget: Budget,
) -> Signer | KeylessSigner | None:
    if attestor.keyless is None:
        signer = check_envelope(envelope, attestor, budget)
        return signer if isinstance(signer, Signer) else None
    if fetched.keyless is None or len(envelope.signatures) != 1:
        return None
    (signature,) = envelope.signatures
    material = fetched.keyless
    evidence = KeylessEvidence(
        material.certificate,
        (),  # cosign's chain annotation: never trusted (see `verify.keyless_evidence`)
        signature,
        envelope.signed_bytes,
        SignedContent(signature, material.certificate, None, envelope),
        (material.log_entry,) if material.log_entry else (),
        (material.timestamp,) if material.timestamp else (),
        require_inclusion_proof=False,
    )
    found = checks.signer(fetched.digest, evidence, attestor)
    return found if isinstance(found, KeylessSigner) else None


def _keyless(digest: str, layer: dict[str, Any]) -> KeylessMaterial | None:
    """Unusable keyless annotations make only that envelope count for no keyless attestor."""
    annotations = layer.get("annotations")
    try:
        return keyless_material(
            f"attestation {digest}", annotations if isinstance(annotations, dict) else {}
        )
    except DeterministicFailure:
        return None


def _json(raw: bytes) -> Any:
    return json_object(raw, "envelope", Reason.SIGNATURE_INVALID)


def _fits(size: Any) -> bool:
    return isinstance(size, int) and not isinstance(size, bool) and 0 <= size <= MAX_ENVELOPE_SIZE
