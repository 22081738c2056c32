"""Transparency-log entries (signet.keyless.tlog, .checkpoint, .merkle, .tlog_body) against real
vectors — the sigstore-conformance bundles and classic cosign layers in shared/vectors, read in
place — then mutations of them, checkpoints and Merkle trees built here, and garbage."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from signet.attest.dsse import parse_envelope
from signet.keyless.checkpoint import MAX_SIGNATURE_LINES, verify_checkpoint
from signet.keyless.merkle import leaf_hash, verify_inclusion
from signet.keyless.root import LogKey, TrustedRoot, Validity, parse_trusted_root
from signet.keyless.tlog import (
    InclusionProof,
    LogEntry,
    LoggedAt,
    SignedContent,
    parse_cosign_bundle_annotation,
    parse_log_entry,
    verify_log_entry,
)
from signet.keyless.tlog_body import check_body
from signet.reasons import DeterministicFailure, Reason

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"
SUITE = VECTORS / "sigstore-conformance" / "bundle-verify"
CLASSIC = VECTORS / "cosign-classic"
PRODUCTION = parse_trusted_root((VECTORS / "sigstore-production-trusted_root.json").read_bytes())
SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# -- the vectors ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    raw: dict[str, Any]  # the bundle's tlogEntries[0], as JSON
    content: SignedContent
    root: TrustedRoot
    require_inclusion_proof: bool

    def verify(self, raw: dict[str, Any] | None = None, **changes: Any) -> LoggedAt:
        entry = replace(parse_log_entry(self.raw if raw is None else raw), **changes)
        return verify_log_entry(
            entry, self.content, self.root, require_inclusion_proof=self.require_inclusion_proof
        )


def load_case(name: str) -> Case:
    """As a caller would build it: the leaf certificate (or key.pub), the artifact's own SHA-256
    (never the bundle's messageDigest) or the parsed envelope."""
    folder = SUITE / name
    bundle = json.loads((folder / "bundle.sigstore.json").read_bytes())
    material = bundle["verificationMaterial"]
    root_file = folder / "trusted_root.json"
    root = parse_trusted_root(root_file.read_bytes()) if root_file.exists() else PRODUCTION
    certificate, public_key = b"", None
    if "certificate" in material:
        certificate = base64.b64decode(material["certificate"]["rawBytes"])
    elif "x509CertificateChain" in material:
        chain = material["x509CertificateChain"]["certificates"]
        certificate = base64.b64decode(chain[0]["rawBytes"])
    else:
        key = serialization.load_pem_public_key((folder / "key.pub").read_bytes())
        public_key = key.public_bytes(*SPKI)
    if "dsseEnvelope" in bundle:
        envelope = parse_envelope(bundle["dsseEnvelope"], max_payload=1 << 20)
        content = SignedContent(envelope.signatures[0], certificate, None, envelope, public_key)
    else:
        artifact = folder / "artifact" if (folder / "artifact").exists() else SUITE / "a.txt"
        digest = ("sha256", hashlib.sha256(artifact.read_bytes()).digest())
        signature = base64.b64decode(bundle["messageSignature"]["signature"])
        content = SignedContent(signature, certificate, digest, None, public_key)
    require = bundle["mediaType"] != "application/vnd.dev.sigstore.bundle+json;version=0.1"
    return Case(material["tlogEntries"][0], content, root, require)


HAPPY = [
    "happy-path-v0.1",
    "happy-path-v0.2",
    "happy-path-v0.3",
    "happy-path-v0.3-new-mediaType",
    "happy-path-intoto-in-dsse-v3",
    "intoto-with-custom-trust-root",
    "rekor2-happy-path",
    "rekor2-dsse-happy-path",
    "rekor2-checkpoint-cosigned",
    "rekor2-checkpoint-multiple-cosigs",
    "rekor2-checkpoint-origin-not-first",
    "rekor2-checkpoint-two-sigs-cosigned",
    "rekor2-checkpoint-two-sigs-from-origin",
    "trust-root-tlog-validity-end-inclusive",
    "trust-root-tsa-validity-end-inclusive",
    "rekor2-timestamp-with-embedded-cert",
    "rekor2-timestamp-without-embedded-cert",
    "rekor2-timestamp-with-expired-cert-chain",
    "bundle-with-sct-with-extensions",
    "managed-key-happy-path",  # key-based: SignedContent.public_key_der
    "managed-key-and-trusted-root",
]

# _fail cases this module rejects, and what it says.
REJECTED = {
    "bundle-from-wrong-instance_fail": "a log the trusted root does not list",
    "bundle-negative-log-index_fail": "logIndex is negative",
    "bundle-unknown-version_fail": "names no kind and apiVersion",
    "checkpoint-bad-keyhint_fail": "no signature by the log rekor.sigstore.dev",
    "checkpoint-wrong-roothash_fail": "the checkpoint is for a tree of 75610772",
    "inclusion-proof-corrupted-hash_fail": "does not lead to the root hash",
    "invalid-inclusion-proof_fail": "no inclusion proof with a checkpoint",
    "invalid-checkpoint-signature_fail": "signature by rekor.sigstore.dev does not verify",
    "set-invalid-signature_fail": "signed entry timestamp does not verify",
    "incorrect-public-key_fail": "records another signing certificate",
    "wrong-hashedrekord-artifact_fail": "digest of another artifact",
    "wrong-hashedrekord-cert-and-sig_fail": "records another signature",
    "wrong-hashedrekord-entry_fail": "digest of another artifact",
    "wrong-material_fail": "digest of another artifact",
    "signature-mismatch_fail": "records another signature",
    "intoto-log-entry-mismatch_fail": "records another DSSE signature",
    "intoto-missing-inclusion-proof_fail": "no inclusion proof with a checkpoint",
    "dsse-mismatch-envelope_fail": "hash of another DSSE payload",
    "dsse-mismatch-sig_fail": "records another DSSE signature",
    "dsse-invalid-sig_fail": "records another DSSE signature",
    "rekor2-checkpoint-missing-log-signature_fail": "no signature lines",
    "rekor2-checkpoint-missing-origin_fail": "three non-empty lines",
    "rekor2-checkpoint-missing-root-hash_fail": "three non-empty lines",
    "rekor2-checkpoint-missing-size_fail": "three non-empty lines",
    "rekor2-checkpoint-no-matching-signature_fail": "is not the log log2025-alpha1",
    "rekor2-no-inclusion-proof_fail": "no inclusion proof with a checkpoint",
    "rekor2-dsse-mismatch-envelope_fail": "not that of the DSSE envelope's PAE",
    "rekor2-dsse-mismatch-sig_fail": "records another signature",
    "rekor2-dsse-invalid-sig_fail": "records another signature",
}

# _fail cases whose log entry is sound: another step (the caller's) must refuse them.
DECIDED_ELSEWHERE = {
    "bundle-with-root-cert_fail": "a root certificate in the bundle's chain",
    "integrated-time-in-future_fail": "the integration time against the clock",
    "intoto-expired-certificate_fail": "the certificate's validity at the signing time",
    "intoto-set-outside-signing-cert-validity_fail": "the certificate at the integration time",
    "intoto-tsa-timestamp-outside-cert-validity_fail": "the certificate at the timestamp's time",
    "invalid-ct-key_fail": "the SCT",
    "message-digest-mismatch_fail": "the bundle's messageDigest against the artifact",
    "rekor2-no-timestamp_fail": "a trusted signing time (Rekor v2 signs none)",
    "rekor2-timestamp-outside-trust-root-tsa-validity_fail": "the RFC 3161 timestamp",
    "rekor2-timestamp-outside-tsa-cert-validity_fail": "the RFC 3161 timestamp",
    "rekor2-timestamp-payload-mismatch_fail": "the RFC 3161 timestamp",
    "rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail": "the RFC 3161 timestamp",
    "rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail": "the RFC 3161 timestamp",
    "rekor2-timestamp-with-incorrect-time_fail": "the certificate at the timestamp's time",
}

# _fail cases refused before there is a log entry to judge (the bundle, key or trusted root).
REFUSED_BEFORE = {
    "bundle-malformed-json_fail": "the bundle is not JSON",
    "bundle-invalid-base64-signature_fail": "the bundle's signature is not base64",
    "bundle-empty-certificate-chain_fail": "the bundle has no certificate",
    "managed-key-no-key_fail": "no key is given",
    "managed-key-wrong-key_fail": "key.pub is not a key",
    "trust-root-tlog-missing-validity-start_fail": "the trusted root is refused when read",
}


def test_every_conformance_case_is_accounted_for() -> None:
    cases = {p.name for p in SUITE.iterdir() if p.is_dir()}
    named = [*HAPPY, *REJECTED, *DECIDED_ELSEWHERE, *REFUSED_BEFORE]
    assert len(named) == len(set(named))
    assert cases == set(named)
    assert not any(name.endswith("_fail") for name in HAPPY)


@pytest.mark.parametrize("name", HAPPY)
def test_a_happy_case_is_logged(name: str) -> None:
    case = load_case(name)
    logged = case.verify()
    assert logged.log_index == int(case.raw["logIndex"])
    assert logged.log_key in case.root.tlogs and logged.log_url == logged.log_key.base_url
    if "inclusionPromise" in case.raw:  # Rekor v1: the promise signs the time
        assert logged.integrated_time == datetime.fromtimestamp(
            int(case.raw["integratedTime"]), UTC
        )
    else:
        assert logged.integrated_time is None
    if name == "trust-root-tlog-validity-end-inclusive":
        assert logged.integrated_time == logged.log_key.validity.end


@pytest.mark.parametrize(("name", "says"), REJECTED.items())
def test_a_failing_case_is_rejected(name: str, says: str) -> None:
    with pytest.raises(DeterministicFailure) as caught:
        load_case(name).verify()
    assert caught.value.reason is Reason.SIGNATURE_INVALID
    assert says in caught.value.message


@pytest.mark.parametrize("name", DECIDED_ELSEWHERE)
def test_a_case_failing_elsewhere_has_a_sound_log_entry(name: str) -> None:
    assert load_case(name).verify().log_index >= 0


# -- classic cosign layers --------------------------------------------------------------------------


def classic_layer(name: str) -> tuple[bytes, dict[str, str]]:
    raw = (CLASSIC / name / "signature-1").read_bytes()
    layer = json.loads(raw[raw.index(b"{") :])
    return base64.b64decode(layer["payload"]), layer["annotations"]


def rekor_v1_root(pem: bytes) -> TrustedRoot:
    key = serialization.load_pem_public_key(pem)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    log_id = hashlib.sha256(key.public_bytes(*SPKI)).digest()
    since = Validity(datetime(2021, 1, 12, tzinfo=UTC))
    log = LogKey("https://rekor.sigstore.dev", log_id, key, "PKIX_ECDSA_P256_SHA_256", since)
    return TrustedRoot(certificate_authorities=(), tlogs=(log,))


def classic_keyless() -> tuple[LogEntry, SignedContent]:
    payload, notes = classic_layer("dir-img-cosign-fulcio-rekor-valid")
    certificate = x509.load_pem_x509_certificate(notes["dev.sigstore.cosign/certificate"].encode())
    content = SignedContent(
        base64.b64decode(notes["dev.cosignproject.cosign/signature"]),
        certificate.public_bytes(serialization.Encoding.DER),
        ("sha256", hashlib.sha256(payload).digest()),
        None,
    )
    return parse_cosign_bundle_annotation(notes["dev.sigstore.cosign/bundle"]), content


def test_a_classic_keyless_signature_is_logged() -> None:
    entry, content = classic_keyless()
    logged = verify_log_entry(entry, content, PRODUCTION, require_inclusion_proof=False)
    assert (logged.log_index, logged.log_url) == (11605770, "https://rekor.sigstore.dev")
    assert logged.integrated_time == datetime(2023, 1, 20, 20, 51, 33, tzinfo=UTC)
    with pytest.raises(DeterministicFailure, match="no inclusion proof"):
        verify_log_entry(entry, content, PRODUCTION, require_inclusion_proof=True)


def test_a_classic_key_signature_is_logged_in_a_hand_built_root() -> None:
    payload, notes = classic_layer("dir-img-cosign-key-rekor-valid")
    key = serialization.load_pem_public_key((CLASSIC / "cosign2.pub").read_bytes())
    content = SignedContent(
        base64.b64decode(notes["dev.cosignproject.cosign/signature"]),
        b"",
        ("sha256", hashlib.sha256(payload).digest()),
        None,
        key.public_bytes(*SPKI),
    )
    entry = parse_cosign_bundle_annotation(notes["dev.sigstore.cosign/bundle"])
    root = rekor_v1_root((CLASSIC / "rekor.pub").read_bytes())
    logged = verify_log_entry(entry, content, root, require_inclusion_proof=False)
    assert logged.integrated_time == datetime(2023, 1, 20, 21, 57, 39, tzinfo=UTC)
    # The same entry is no proof for another key, a certificate, nor in a root without that log.
    other = serialization.load_pem_public_key((CLASSIC / "cosign.pub").read_bytes())
    with pytest.raises(DeterministicFailure, match="another public key"):
        verify_log_entry(
            entry,
            replace(content, public_key_der=other.public_bytes(*SPKI)),
            root,
            require_inclusion_proof=False,
        )
    keyless = replace(content, certificate_der=classic_keyless()[1].certificate_der)
    with pytest.raises(DeterministicFailure, match="signer is a PUBLIC KEY"):
        verify_log_entry(
            entry, replace(keyless, public_key_der=None), root, require_inclusion_proof=False
        )
    with pytest.raises(DeterministicFailure, match="does not list"):
        verify_log_entry(entry, content, TrustedRoot(()), require_inclusion_proof=False)


def test_the_containers_image_rekor_set_fixture_verifies() -> None:
    entry = parse_cosign_bundle_annotation((CLASSIC / "rekor-set").read_text())
    logged_pem = json.loads(entry.body)["spec"]["signature"]["publicKey"]["content"]
    certificate = x509.load_pem_x509_certificate(base64.b64decode(logged_pem))
    content = SignedContent(
        base64.b64decode((CLASSIC / "rekor-sig").read_text()),
        certificate.public_bytes(serialization.Encoding.DER),
        ("sha256", hashlib.sha256((CLASSIC / "rekor-payload").read_bytes()).digest()),
        None,
    )
    assert verify_log_entry(entry, content, PRODUCTION, require_inclusion_proof=False).log_index > 0


# -- mutations of real entries ----------------------------------------------------------------------


def flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def rejects(case: Case, raw: dict[str, Any] | None = None, **changes: Any) -> str:
    with pytest.raises(DeterministicFailure) as caught:
        case.verify(raw, **changes)
    assert caught.value.reason in (Reason.SIGNATURE_INVALID, Reason.UNSUPPORTED_FORMAT)
    return caught.value.message


def test_every_flipped_byte_of_the_signed_entry_timestamp_fails() -> None:
    case = load_case("happy-path-v0.1")
    entry = parse_log_entry(case.raw)
    assert entry.signed_entry_timestamp is not None
    for at in range(len(entry.signed_entry_timestamp)):
        mutated = flipped(entry.signed_entry_timestamp, at)
        assert "timestamp does not verify" in rejects(case, signed_entry_timestamp=mutated)


def test_what_the_promise_signs_cannot_change() -> None:
    case = load_case("happy-path-v0.1")
    no_proof = {k: v for k, v in case.raw.items() if k != "inclusionProof"}
    entry = parse_log_entry(no_proof)
    assert case.verify(no_proof).integrated_time is not None
    # The body, one space longer, still has the same fields; only its bytes differ.
    spaced = entry.body.replace(b'{"apiVersion"', b'{ "apiVersion"', 1)
    assert entry.integrated_time is not None
    changes: list[dict[str, Any]] = [
        {"integrated_time": entry.integrated_time + 1},
        {"log_index": entry.log_index + 1},
        {"body": spaced},
    ]
    for change in changes:
        assert "timestamp does not verify" in rejects(case, no_proof, **change)


def test_every_flipped_byte_of_the_root_hash_and_proof_hashes_fails() -> None:
    case = load_case("happy-path-v0.3")
    proof = parse_log_entry(case.raw).inclusion_proof
    assert proof is not None
    for at in range(32):
        root = replace(proof, root_hash=flipped(proof.root_hash, at))
        assert "does not lead to the root hash" in rejects(case, inclusion_proof=root)
        for i in range(len(proof.hashes)):
            hashes = list(proof.hashes)
            hashes[i] = flipped(hashes[i], at)
            assert "root hash" in rejects(
                case, inclusion_proof=replace(proof, hashes=tuple(hashes))
            )


@pytest.mark.parametrize("name", ["happy-path-v0.3", "happy-path-v0.1", "rekor2-dsse-happy-path"])
def test_every_flipped_byte_of_the_body_fails(name: str) -> None:
    case = load_case(name)
    body = parse_log_entry(case.raw).body
    for at in range(0, len(body), 3):
        rejects(case, body=flipped(body, at))


def test_a_body_with_the_same_fields_but_other_bytes_is_not_included() -> None:
    case = load_case("rekor2-happy-path")
    body = parse_log_entry(case.raw).body
    assert "does not lead to the root hash" in rejects(case, body=body + b" ")


def test_a_rekor_v2_proof_must_be_for_the_entry_index() -> None:
    case = load_case("rekor2-happy-path")
    assert "the entry is 734" in rejects(case, log_index=734)


def test_which_proofs_and_promises_are_required() -> None:
    v01, v03, v2 = (
        load_case("happy-path-v0.1"),
        load_case("happy-path-v0.3"),
        load_case("rekor2-happy-path"),
    )
    without = {k: v for k, v in v03.raw.items() if k != "inclusionPromise"}
    assert replace(v03, require_inclusion_proof=True).verify(without).integrated_time is None
    assert "no signed entry timestamp" in rejects(
        replace(v03, require_inclusion_proof=False), without
    )
    no_proof = {k: v for k, v in v01.raw.items() if k != "inclusionProof"}
    assert v01.verify(no_proof).integrated_time is not None
    assert "no inclusion proof" in rejects(replace(v01, require_inclusion_proof=True), no_proof)
    # A proof without its checkpoint proves nothing: ignored where not required.
    no_checkpoint = copy.deepcopy(v01.raw)
    del no_checkpoint["inclusionProof"]["checkpoint"]
    no_checkpoint["inclusionProof"]["hashes"] = []
    assert v01.verify(no_checkpoint).log_index == 27246492
    # Rekor v2 promises nothing, so it must prove (see also the test with a promise, below).
    no_v2_proof = {k: v for k, v in v2.raw.items() if k != "inclusionProof"}
    assert "no inclusion proof" in rejects(v2, no_v2_proof)
    assert "no signed entry timestamp" in rejects(
        replace(v2, require_inclusion_proof=False), no_v2_proof
    )
    assert "no integrated time" in rejects(v01, integrated_time=None)


def test_the_declared_kind_must_be_the_body_kind() -> None:
    case = load_case("happy-path-v0.3")
    raw = copy.deepcopy(case.raw)
    raw["kindVersion"] = {"kind": "dsse", "version": "0.0.1"}
    assert "declared dsse 0.0.1, but its body is hashedrekord 0.0.1" in rejects(case, raw)


def test_the_body_must_describe_this_content() -> None:
    message, dsse = load_case("happy-path-v0.3"), load_case("happy-path-intoto-in-dsse-v3")
    v2, v2_dsse = load_case("rekor2-happy-path"), load_case("rekor2-dsse-happy-path")
    other_certificate = dsse.content.certificate_der
    for case, content, says in [
        (
            message,
            replace(message.content, certificate_der=other_certificate),
            "signing certificate",
        ),
        (
            message,
            replace(message.content, message_digest=("sha384", b"x" * 48)),
            "a sha256 digest",
        ),
        (message, dsse.content, "not a DSSE entry"),
        (dsse, message.content, "not a message signature"),
        (
            dsse,
            replace(dsse.content, certificate_der=other_certificate[:-1]),
            "signing certificate",
        ),
        (v2, replace(v2.content, certificate_der=v2_dsse.content.certificate_der), "certificate"),
        (v2, replace(v2.content, message_digest=("sha256", b"\0" * 32)), "of the artifact"),
        (v2, replace(v2.content, public_key_der=b"key"), "cannot be read"),
        (v2_dsse, v2.content, "digest that is not that of the artifact"),
        (v2, v2_dsse.content, "digest that is not that of the DSSE envelope's PAE"),
    ]:
        with pytest.raises(DeterministicFailure) as caught:
            replace(case, content=content).verify()
        assert says in caught.value.message, (case, says)
    envelope = dsse.content.envelope
    assert envelope is not None
    two = replace(envelope, signatures=(*envelope.signatures, b"another"))
    assert "exactly the one signature" in rejects(
        replace(dsse, content=replace(dsse.content, envelope=two))
    )


@pytest.mark.parametrize(
    ("body", "says", "reason"),
    [
        (b"{}", "names no kind", Reason.SIGNATURE_INVALID),
        (b"[]", "not a JSON object", Reason.SIGNATURE_INVALID),
        (b"\xff", "not JSON", Reason.SIGNATURE_INVALID),
        (b"[" * 100_000, "not JSON", Reason.SIGNATURE_INVALID),
        (b'{"kind":"a","kind":"b"}', "repeats a key", Reason.SIGNATURE_INVALID),
        (b'{"kind":"rekord","apiVersion":"0.0.1"}', "not supported", Reason.UNSUPPORTED_FORMAT),
        (b'{"kind":"dsse","apiVersion":"0.0.2"}', "not supported", Reason.UNSUPPORTED_FORMAT),
        (b'{"kind":"%s","apiVersion":"\\n"}' % (b"k" * 10_000), "'kkkk", Reason.UNSUPPORTED_FORMAT),
        (
            b'{"kind":"hashedrekord","apiVersion":"0.0.1"}',
            "has no spec.data",
            Reason.SIGNATURE_INVALID,
        ),
        (
            b'{"kind":"hashedrekord","apiVersion":"0.0.2","spec":{"hashedRekordV002":{},"x":1}}',
            "exactly a hashedRekordV002",
            Reason.SIGNATURE_INVALID,
        ),
    ],
)
def test_a_body_that_is_not_an_entry_fails(body: bytes, says: str, reason: Reason) -> None:
    case = load_case("happy-path-v0.3")
    with pytest.raises(DeterministicFailure) as caught:
        case.verify(body=body, kind_version=None)
    assert caught.value.reason is reason and says in caught.value.message
    assert len(caught.value.message) < 200  # what the entry says is cut short


def crafted(name: str, edit: Any) -> tuple[bytes, SignedContent]:
    """A vector's body, edited (`edit` changes the parsed JSON in place), and its content."""
    case = load_case(name)
    document = json.loads(parse_log_entry(case.raw).body)
    edit(document)
    return json.dumps(document).encode(), case.content


def body_fails(body: bytes, content: SignedContent) -> str:
    with pytest.raises(DeterministicFailure) as caught:
        check_body(body, None, content)
    assert caught.value.reason is Reason.SIGNATURE_INVALID
    return caught.value.message


def test_an_edited_body_no_longer_describes_the_content() -> None:
    def two_signatures(d: Any) -> None:
        d["spec"]["signatures"] *= 2

    def sha512_payload_hash(d: Any) -> None:
        d["spec"]["payloadHash"]["algorithm"] = "sha512"

    def listed_algorithm(d: Any) -> None:
        d["spec"]["data"]["hash"]["algorithm"] = ["sha256"]

    for name, edit, says in [
        ("happy-path-intoto-in-dsse-v3", two_signatures, "not exactly one signature"),
        ("happy-path-intoto-in-dsse-v3", sha512_payload_hash, "not a sha256 digest"),
        ("happy-path-v0.3", listed_algorithm, "algorithm is not a string"),
    ]:
        assert says in body_fails(*crafted(name, edit))
    body, content = crafted("happy-path-v0.3", lambda d: None)
    assert not check_body(body, None, content)
    assert "larger than 131072" in body_fails(body + b" " * 128 * 1024, content)


def test_a_rekor_v2_body_names_a_certificate_or_a_public_key() -> None:
    case = load_case("rekor2-happy-path")
    certificate = x509.load_der_x509_certificate(case.content.certificate_der)
    key = certificate.public_key().public_bytes(*SPKI)
    other = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(*SPKI)

    def public_key(d: Any) -> None:
        verifier = d["spec"]["hashedRekordV002"]["signature"]["verifier"]
        verifier["publicKey"] = {"rawBytes": b64(key)}
        del verifier["x509Certificate"]

    def both(d: Any) -> None:
        verifier = d["spec"]["hashedRekordV002"]["signature"]["verifier"]
        verifier["publicKey"] = {"rawBytes": b64(key)}

    body, keyless = crafted("rekor2-happy-path", public_key)
    key_based = replace(keyless, certificate_der=b"", public_key_der=key)
    assert check_body(body, ("hashedrekord", "0.0.2"), key_based)
    assert "another public key" in body_fails(body, replace(key_based, public_key_der=other))
    assert "another public key" in body_fails(body, keyless)
    assert "another signing certificate" in body_fails(parse_log_entry(case.raw).body, key_based)
    assert "not one certificate or one public key" in body_fails(
        *crafted("rekor2-happy-path", both)
    )
    assert case.content.message_digest is not None
    sha384 = replace(case.content, message_digest=("sha384", case.content.message_digest[1]))
    assert "SHA2_256 digest, not SHA2_384" in body_fails(parse_log_entry(case.raw).body, sha384)


def test_an_intoto_entry_describes_its_envelope() -> None:
    case = load_case("intoto-with-custom-trust-root")
    envelope = case.content.envelope
    assert envelope is not None
    other_certificate = load_case("happy-path-v0.3").content.certificate_der
    for content, says in [
        (
            replace(case.content, envelope=replace(envelope, payload_type="text/plain")),
            "payload type",
        ),
        (replace(case.content, envelope=replace(envelope, payload=b"{}")), "another DSSE payload"),
        (replace(case.content, certificate_der=other_certificate), "another signing certificate"),
    ]:
        assert says in rejects(replace(case, content=content))


def test_a_rekor_v2_entry_needs_its_proof_even_with_a_promise() -> None:
    """Rekor v2 promises nothing; should an entry carry a promise, its proof is still needed."""
    case = load_case("rekor2-happy-path")
    entry = parse_log_entry(case.raw)
    log = replace(ED_LOG, log_id=entry.log_id)
    signed_fields = {
        "body": b64(entry.body),
        "integratedTime": 1749729736,
        "logID": entry.log_id.hex(),
        "logIndex": entry.log_index,
    }
    promise = ED_KEY.sign(json.dumps(signed_fields, sort_keys=True, separators=(",", ":")).encode())
    promised = replace(
        entry, integrated_time=1749729736, signed_entry_timestamp=promise, inclusion_proof=None
    )
    root = TrustedRoot((), (log,))
    # The promise verifies (step 3 passes); the missing proof fails.
    with pytest.raises(DeterministicFailure, match="no inclusion proof"):
        verify_log_entry(promised, case.content, root, require_inclusion_proof=False)


# -- checkpoints signed here ------------------------------------------------------------------------

ORIGIN = "log.example/tree"
ED_KEY = ed25519.Ed25519PrivateKey.generate()
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ROOT_HASH = hashlib.sha256(b"root").digest()


def log_of(private: Any, details: str) -> LogKey:
    public = private.public_key()
    return LogKey(
        f"https://{ORIGIN}", b"id", public, details, Validity(datetime(2020, 1, 1, tzinfo=UTC))
    )


ED_LOG, EC_LOG = log_of(ED_KEY, "PKIX_ED25519"), log_of(EC_KEY, "PKIX_ECDSA_P256_SHA_256")
RSA_LOG = log_of(RSA_KEY, "PKIX_RSA_PKCS1V15_2048_SHA256")


def key_id(private: Any, name: str = ORIGIN) -> bytes:
    public = private.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return hashlib.sha256(name.encode() + b"\n\x01" + raw).digest()[:4]
    return hashlib.sha256(public.public_bytes(*SPKI)).digest()[:4]


def sign(private: Any, text: str) -> bytes:
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return private.sign(text.encode())
    if isinstance(private, rsa.RSAPrivateKey):
        return private.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
    return bytes(private.sign(text.encode(), ec.ECDSA(hashes.SHA256())))


def note(text: str, *lines: tuple[str, bytes, bytes]) -> str:
    return text + "\n" + "".join(f"— {name} {b64(kid + sig)}\n" for name, kid, sig in lines)


def signed(text: str, private: Any = ED_KEY, name: str = ORIGIN) -> tuple[str, bytes, bytes]:
    return name, key_id(private, name), sign(private, text)


TEXT = f"{ORIGIN}\n736\n{b64(ROOT_HASH)}\n"


def test_a_checkpoint_signed_by_the_log_verifies() -> None:
    witness = ed25519.Ed25519PrivateKey.generate()
    for envelope, log in [
        (note(TEXT, signed(TEXT)), ED_LOG),
        (note(TEXT, signed(TEXT, witness, "witness.example"), signed(TEXT)), ED_LOG),
        (note(TEXT, (ORIGIN, key_id(EC_KEY), b"unknown key: ignored"), signed(TEXT)), ED_LOG),
        (note(TEXT, signed(TEXT, EC_KEY)), EC_LOG),
        (
            note(
                f"{ORIGIN} - 12345\n736\n{b64(ROOT_HASH)}\nTimestamp: 1\n",
                signed(f"{ORIGIN} - 12345\n736\n{b64(ROOT_HASH)}\nTimestamp: 1\n", EC_KEY),
            ),
            EC_LOG,
        ),
    ]:
        checkpoint = verify_checkpoint(envelope, log)
        assert (checkpoint.size, checkpoint.root_hash) == (736, ROOT_HASH)
    rsa_id = hashlib.sha256(
        ORIGIN.encode() + b"\n\xffPKIX-RSA-PKCS#1v1.5" + RSA_KEY.public_key().public_bytes(*SPKI)
    ).digest()[:4]
    assert verify_checkpoint(note(TEXT, (ORIGIN, rsa_id, sign(RSA_KEY, TEXT))), RSA_LOG).size == 736


def self_signed(text: str) -> str:
    """A checkpoint of `text`, signed by the log."""
    return note(text, signed(text))


ROOT_B64 = b64(ROOT_HASH)


@pytest.mark.parametrize(
    ("envelope", "says"),
    [
        (note(TEXT, signed(TEXT, ED_KEY, "other.example")), "no signature by the log"),
        (note(TEXT, (ORIGIN, b"\0\0\0\0", sign(ED_KEY, TEXT))), "no signature by the log"),
        (note(TEXT, ("other.example", key_id(ED_KEY), sign(ED_KEY, TEXT))), "no signature by"),
        (note(TEXT, (ORIGIN, key_id(ED_KEY), sign(ED_KEY, TEXT + "x"))), "does not verify"),
        (note(TEXT, signed(TEXT), (ORIGIN, key_id(ED_KEY), b"\1" * 64)), "does not verify"),
        (
            note(
                TEXT,
                *[signed(TEXT, ED_KEY, f"w{i}") for i in range(MAX_SIGNATURE_LINES)],
                signed(TEXT),
            ),
            "17 signature lines; the limit is 16",
        ),
        (self_signed(f"{ORIGIN}\n0736\n{ROOT_B64}\n"), "tree size"),
        (self_signed(f"{ORIGIN}\n-1\n{ROOT_B64}\n"), "tree size"),
        (self_signed(f"{ORIGIN}\n9223372036854775808\n{ROOT_B64}\n"), "tree size"),
        (self_signed(f"{ORIGIN}\n736\n{b64(b'short')}\n"), "not 32 bytes"),
        (self_signed(f"{ORIGIN}\n736\nnot base64!\n"), "not base64"),
        (self_signed(f"{ORIGIN}\n736\n{ROOT_B64}==\n"), "not base64"),
        (self_signed(f"other.example\n736\n{ROOT_B64}\n"), "is not the log"),
        (self_signed(f"{ORIGIN} - x\n736\n{ROOT_B64}\n"), "is not the log"),
        (self_signed(f"{ORIGIN}x - 1\n736\n{ROOT_B64}\n"), "is not the log"),
        (self_signed(TEXT + "\next\n"), "three non-empty lines"),
        (self_signed(f"{ORIGIN}\n736\n"), "three non-empty lines"),
        (TEXT + "\n", "no signature lines"),
        (TEXT + "\n— " + ORIGIN + " AAAA\n", "too short"),
        (TEXT + "\n— " + ORIGIN + " not-base64\n", "no base64 signature"),
        (TEXT + "\n— " + ORIGIN + " " + b64(key_id(ED_KEY) + b"12345") + "====\n", "no base64"),
        (TEXT + "\n— " + ORIGIN + "\n", "no base64 signature"),
        (TEXT + "\n— \n", "no valid key name"),
        (TEXT + "\n— a+b AAAAAAA=\n", "no valid key name"),
        (TEXT + "\n- " + ORIGIN + " AAAAAAA=\n", "em dash"),
        (TEXT + "\n" + note("", signed(TEXT))[1:].rstrip("\n"), "do not end in a newline"),
        (TEXT + note("", signed(TEXT))[1:], "no blank line"),
        (note(TEXT.replace("736", "7\r36"), signed(TEXT)), "control character"),
        (self_signed(TEXT).replace("736", "\ud800"), "not UTF-8"),
        (note(TEXT + "x" * 8192 + "\n", signed(TEXT)), "larger than 8192"),
        (note(TEXT + "é" * 4100 + "\n", signed(TEXT)), "larger than 8192"),
    ],
)
def test_a_bad_checkpoint_fails(envelope: str, says: str) -> None:
    with pytest.raises(DeterministicFailure) as caught:
        verify_checkpoint(envelope, ED_LOG)
    assert caught.value.reason is Reason.SIGNATURE_INVALID and says in caught.value.message


def synthetic_entry(size: int = 2, root: bytes | None = None) -> tuple[LogEntry, SignedContent]:
    """Entry 1 of a two-entry tree of the log signed here, with a checkpoint claiming `size` and
    `root` (by default the true ones). hashedrekord 0.0.1 compares the signer's DER only."""
    certificate, digest = b"a certificate", hashlib.sha256(b"artifact").digest()
    pem = (
        b"-----BEGIN CERTIFICATE-----\n"
        + base64.encodebytes(certificate)
        + b"-----END CERTIFICATE-----\n"
    )
    spec = {
        "data": {"hash": {"algorithm": "sha256", "value": digest.hex()}},
        "signature": {"content": b64(b"sig"), "publicKey": {"content": b64(pem)}},
    }
    body = json.dumps({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": spec}).encode()
    sibling = leaf_hash(b"entry 0")
    tree_root = hashlib.sha256(b"\x01" + sibling + leaf_hash(body)).digest()
    text = f"{ORIGIN}\n{size}\n{b64(root or tree_root)}\n"
    proof = InclusionProof(1, 2, tree_root, (sibling,), note(text, signed(text)))
    entry = LogEntry(5, b"id", ("hashedrekord", "0.0.1"), body, inclusion_proof=proof)
    return entry, SignedContent(b"sig", certificate, ("sha256", digest), None)


def test_an_entry_is_proven_only_by_a_checkpoint_of_its_tree() -> None:
    root = TrustedRoot((), (ED_LOG,))
    entry, content = synthetic_entry()
    logged = verify_log_entry(entry, content, root, require_inclusion_proof=True)
    assert (logged.log_index, logged.log_url, logged.integrated_time) == (
        5,
        f"https://{ORIGIN}",
        None,
    )
    for size, root_hash, says in [
        (3, None, "tree of 3"),
        (2, ROOT_HASH, "not the inclusion proof's"),
    ]:
        entry, content = synthetic_entry(size, root_hash)
        with pytest.raises(DeterministicFailure, match=says):
            verify_log_entry(entry, content, root, require_inclusion_proof=True)


# -- Merkle proofs against RFC 6962's definitions ---------------------------------------------------


def tree_hash(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + tree_hash(leaves[:split]) + tree_hash(leaves[split:])).digest()


def path(index: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < split:
        return [*path(index, leaves[:split]), tree_hash(leaves[split:])]
    return [*path(index - split, leaves[split:]), tree_hash(leaves[:split])]


def test_every_leaf_of_small_trees_is_proven_and_nothing_else_is() -> None:
    for size in range(1, 34):
        leaves = [b"leaf %d" % i for i in range(size)]
        root = tree_hash(leaves)
        for index in range(size):
            proof = tuple(path(index, leaves))
            leaf = leaf_hash(leaves[index])
            verify_inclusion(leaf, index, size, proof, root)
            wrong = [
                (leaf_hash(b"another leaf"), index, proof),
                (leaf, index ^ 1, proof),  # its neighbour's place
                (leaf, index, (*proof, root)),
                (leaf, index, proof[:-1]),
                *(
                    (leaf, index, (*proof[:i], flipped(proof[i], 0), *proof[i + 1 :]))
                    for i in range(len(proof))
                ),
            ]
            for other_leaf, other_index, other_proof in wrong:
                if (other_leaf, other_index, other_proof) == (leaf, index, proof):
                    continue  # a tree of one leaf has no hash to drop
                with pytest.raises(DeterministicFailure):
                    verify_inclusion(other_leaf, other_index, size, other_proof, root)


def test_a_malformed_proof_fails() -> None:
    leaves = [b"0", b"1", b"2"]
    leaf, root, proof = leaf_hash(b"0"), tree_hash(leaves), tuple(path(0, leaves))
    for index, size, siblings, root_hash, says in [
        (1, 1, (), leaf, "index 1 is not in a tree of 1"),
        (0, 0, (), leaf, "index 0 is not in a tree of 0"),
        (0, 3, (proof[0][:31], proof[1]), root, "not 32 bytes"),
        (0, 3, proof, root[:31], "not 32 bytes"),
        (0, 3, (*proof, root), root, "more hashes than the path"),
        (0, 3, proof[:1], root, "fewer hashes than the path"),
        (0, 3, proof[::-1], root, "does not lead to the root hash"),
    ]:
        with pytest.raises(DeterministicFailure, match=says):
            verify_inclusion(leaf, index, size, siblings, root_hash)


# -- parsing: limits and garbage --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"logIndex": "-1"}, "logIndex is negative"),
        ({"logIndex": "9223372036854775808"}, "larger than a 64-bit integer"),
        ({"logIndex": "12a"}, "not an integer"),
        ({"logIndex": True}, "not an integer"),
        ({"logIndex": 1.5}, "not an integer"),
        ({"integratedTime": "253402300800"}, "beyond the year 9999"),
        ({"logId": {}}, "logId.keyId is missing"),
        ({"logId": {"keyId": "!!"}}, "not base64"),
        ({"kindVersion": {"kind": "hashedrekord"}}, "no kind and version"),
        ({"kindVersion": None}, "kindVersion is missing"),
        ({"canonicalizedBody": None}, "body is missing"),
        ({"canonicalizedBody": "A" * (4 * 128 * 1024 // 3 + 8)}, "longer than"),
        ({"canonicalizedBody": b64(b"{" * (128 * 1024 + 1))}, "larger than 131072 bytes"),
        ({"inclusionPromise": {"signedEntryTimestamp": "A" * 5000}}, "longer than"),
        ({"inclusionPromise": []}, "inclusionPromise is missing or not an object"),
        (
            {"inclusionProof": {"rootHash": "AA==", "hashes": ["AA=="] * 65}},
            "65 hashes; the limit is 64",
        ),
        ({"inclusionProof": {"rootHash": "AA==", "hashes": "AA=="}}, "not a list"),
        ({"inclusionProof": {"rootHash": "AA==", "hashes": [7]}}, "hash 0 is missing"),
        ({"inclusionProof": {"hashes": []}}, "rootHash is missing"),
        ({"inclusionProof": {"rootHash": "AA==", "checkpoint": {"envelope": 1}}}, "not text"),
        (
            {"inclusionProof": {"rootHash": "AA==", "checkpoint": {"envelope": "x" * 8193}}},
            "larger than 8192",
        ),
    ],
)
def test_a_malformed_entry_is_refused_when_parsed(change: dict[str, Any], says: str) -> None:
    raw = {**load_case("happy-path-v0.3").raw, **change}
    with pytest.raises(DeterministicFailure) as caught:
        parse_log_entry(raw)
    assert caught.value.reason is Reason.SIGNATURE_INVALID and says in caught.value.message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"Payload": 1}', "Payload is missing"),
        ('{"Payload": {"logID": "xyz"}}', "logID is not hexadecimal"),
        ('{"Payload": {"logID": "00", "integratedTime": 0}}', "integratedTime is not a time"),
        ('{"Payload": {"logID": "00", "integratedTime": 253402300800}}', "is not a time"),
        (
            '{"Payload": {"logID": "00", "integratedTime": 1, "logIndex": -1}}',
            "logIndex is negative",
        ),
        (
            '{"Payload": {"logID": "00", "integratedTime": 1, "logIndex": 1, "body": "e30="}}',
            "SignedEntryTimestamp is missing",
        ),
        ('"\ud800"', "not text"),
        ("x" * 300_000, "longer than"),
    ],
)
def test_a_malformed_annotation_is_refused(text: str, says: str) -> None:
    with pytest.raises(DeterministicFailure) as caught:
        parse_cosign_bundle_annotation(text)
    assert caught.value.reason is Reason.SIGNATURE_INVALID and says in caught.value.message


GARBAGE: list[Any] = [
    None,
    True,
    0,
    -1,
    2**70,
    1.5,
    "",
    "A",
    "!!",
    "-5",
    [],
    [1],
    {},
    {"a": 1},
    "\ud800",
]


def mutate(value: Any, rng: random.Random) -> Any:
    """`value` with one of its parts (at any depth) replaced by garbage, removed, or kept."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        copy_ = dict(value)
        if rng.random() < 0.2:
            del copy_[key]
        else:
            copy_[key] = mutate(value[key], rng)
        return copy_
    if isinstance(value, list) and value and rng.random() < 0.8:
        at = rng.randrange(len(value))
        return [*value[:at], mutate(value[at], rng), *value[at + 1 :]]
    if isinstance(value, str) and value and rng.random() < 0.5:
        at = rng.randrange(len(value))
        return value[:at] + rng.choice("A/+=-_ \n—\x00") + value[at + 1 :]
    return rng.choice(GARBAGE)


@pytest.mark.parametrize(
    "name",
    [
        "happy-path-v0.3",
        "happy-path-intoto-in-dsse-v3",
        "rekor2-dsse-happy-path",
        "intoto-with-custom-trust-root",
    ],
)
def test_garbage_entries_fail_only_deterministically(name: str) -> None:
    case = load_case(name)
    rng = random.Random(name)
    for _ in range(400):
        raw = mutate(mutate(case.raw, rng), rng)
        try:
            case.verify(raw)
        except DeterministicFailure as failure:
            assert failure.reason in (Reason.SIGNATURE_INVALID, Reason.UNSUPPORTED_FORMAT)
    for value in GARBAGE:
        with pytest.raises(DeterministicFailure):
            parse_log_entry(value)


def test_garbage_annotations_and_bodies_fail_only_deterministically() -> None:
    entry, content = classic_keyless()
    annotation: dict[str, Any] = {
        "SignedEntryTimestamp": b64(entry.signed_entry_timestamp or b""),
        "Payload": {
            "body": b64(entry.body),
            "integratedTime": entry.integrated_time,
            "logIndex": entry.log_index,
            "logID": entry.log_id.hex(),
        },
    }
    body = json.loads(entry.body)
    rng = random.Random(7)
    for _ in range(400):
        for candidate in (
            mutate(annotation, rng),
            {
                **annotation,
                "Payload": {
                    **annotation["Payload"],
                    "body": b64(json.dumps(mutate(body, rng)).encode()),
                },
            },
        ):
            try:
                parsed = parse_cosign_bundle_annotation(json.dumps(candidate))
                verify_log_entry(parsed, content, PRODUCTION, require_inclusion_proof=False)
            except DeterministicFailure as failure:
                assert failure.reason in (Reason.SIGNATURE_INVALID, Reason.UNSUPPORTED_FORMAT)
