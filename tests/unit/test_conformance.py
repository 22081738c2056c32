"""Key-based bundles over artifacts (formats/sigstore_bundle/artifact.py): the managed-key cases
of the sigstore-conformance suite (shared/vectors, read in place), and bundles built here."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from signet.attest.dsse import IN_TOTO_PAYLOAD_TYPE, pae
from signet.crypto.keyfile import PrivateKey, generate
from signet.crypto.keys import PublicKey, UnusableKey, load_public_key_pem
from signet.formats.sigstore_bundle.artifact import verify_artifact
from signet.reasons import DeterministicFailure, Reason

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"
SUITE = VECTORS / "sigstore-conformance" / "bundle-verify"
CASES = sorted(p.name for p in SUITE.glob("managed-key-*")) if SUITE.is_dir() else []
V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"

# What Signet answers for each case we know of: a scheme, or why not.
EXPECTED: dict[str, str | Reason | type[Exception]] = {
    "managed-key-happy-path": "ecdsa-p256-sha256",
    "managed-key-and-trusted-root": "ecdsa-p256-sha256",
    # No key.pub: nothing to verify with.
    "managed-key-no-key_fail": Reason.NOT_SIGNED_BY_ATTESTOR,
    # Its key.pub is the right key with base64 characters overwritten ("...++++wrongkey=="): not a
    # key at all, so the failure is in loading it.
    "managed-key-wrong-key_fail": UnusableKey,
}


def case_inputs(case: str) -> tuple[bytes, bytes, tuple[PublicKey, ...]]:
    """(bundle, artifact, keys) as the suite's README defines them; loading a key may fail."""
    directory = SUITE / case
    artifact = directory / "artifact"
    key = directory / "key.pub"
    return (
        (directory / "bundle.sigstore.json").read_bytes(),
        (artifact if artifact.exists() else SUITE / "a.txt").read_bytes(),
        (load_public_key_pem(key.read_bytes()),) if key.exists() else (),
    )


def outcome(case: str) -> str | Reason | type[Exception]:
    try:
        return verify_artifact(*case_inputs(case))
    except DeterministicFailure as failure:
        return failure.reason
    except UnusableKey:
        return UnusableKey


def test_the_suite_is_there() -> None:
    assert SUITE.is_dir(), f"the shared vectors are missing at {SUITE}"
    assert set(EXPECTED) <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_signet_agrees_with_the_conformance_suite(case: str) -> None:
    result = outcome(case)
    verified = isinstance(result, str) and not isinstance(result, Reason)  # Reason is a str too
    assert verified is not case.endswith("_fail"), result


@pytest.mark.parametrize("case", CASES)
def test_the_conformance_outcome_is_the_expected_one(case: str) -> None:
    assert case in EXPECTED, f"a new managed-key case: say what Signet answers for {case}"
    assert outcome(case) == EXPECTED[case]


def happy() -> tuple[bytes, bytes, PublicKey]:
    raw, artifact, (key,) = case_inputs("managed-key-happy-path")
    return raw, artifact, key


def test_the_happy_path_with_the_artifact_changed_is_digest_mismatch() -> None:
    raw, artifact, key = happy()
    with refused(Reason.DIGEST_MISMATCH):
        verify_artifact(raw, artifact + b"\n", (key,))


def test_the_happy_path_under_a_genuinely_other_key_is_not_signed_by_attestor() -> None:
    raw, artifact, _ = happy()
    with refused(Reason.NOT_SIGNED_BY_ATTESTOR):
        verify_artifact(raw, artifact, (generate("p256").public,))


def test_the_happy_path_with_its_signature_edited_is_signature_invalid() -> None:
    raw, artifact, key = happy()
    document = json.loads(raw)
    signature = bytearray(base64.b64decode(document["messageSignature"]["signature"]))
    signature[-1] ^= 0x01
    document["messageSignature"]["signature"] = base64.b64encode(bytes(signature)).decode()
    with refused(Reason.SIGNATURE_INVALID):
        verify_artifact(json.dumps(document).encode(), artifact, (key,))


def test_the_happy_path_verifies_whatever_key_is_listed_first() -> None:
    raw, artifact, key = happy()
    assert verify_artifact(raw, artifact, (generate("p256").public, key)) == "ecdsa-p256-sha256"


# -- bundles built here -----------------------------------------------------------------------------

ARTIFACT = b"an artifact\n"
KEY_TYPES = ("p256", "p384", "p521", "ed25519", "rsa2048")
KEYS = {kind: generate(kind) for kind in KEY_TYPES}
CI, STRANGER = KEYS["p256"], generate("p256")
ALGORITHMS = {"SHA2_256": hashlib.sha256, "SHA2_384": hashlib.sha384, "SHA2_512": hashlib.sha512}


def refused(reason: Reason) -> Any:
    return pytest.raises(DeterministicFailure, check=lambda e: e.reason is reason)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hint_of(key: PrivateKey) -> str:
    return b64(hashlib.sha256(key.public.der).digest())


def document(content: dict[str, Any], hint: str | None, material: Any = None) -> bytes:
    material = material or {"publicKey": {"hint": hint} if hint else {}}
    return json.dumps({"mediaType": V03, "verificationMaterial": material, **content}).encode()


def message_bundle(
    key: PrivateKey,
    artifact: bytes = ARTIFACT,
    *,
    algorithm: str = "SHA2_256",
    digest_of: bytes | None = None,
    signature: bytes | None = None,
    hint: str | None = "",
    material: Any = None,
) -> bytes:
    hashed = ALGORITHMS.get(algorithm, hashlib.sha256)(
        artifact if digest_of is None else digest_of
    ).digest()
    content = {
        "messageSignature": {
            "messageDigest": {"algorithm": algorithm, "digest": b64(hashed)},
            "signature": b64(key.sign(artifact)[0] if signature is None else signature),
        }
    }
    return document(content, hint_of(key) if hint == "" else hint, material)


def statement(*digests: str) -> bytes:
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "a.txt", "digest": {"sha256": d}} for d in digests],
            "predicateType": "https://example.com/predicate/v1",
            "predicate": {},
        }
    ).encode()


ARTIFACT_SHA256 = hashlib.sha256(ARTIFACT).hexdigest()


def dsse_bundle(
    key: PrivateKey,
    payload: bytes | None = None,
    *,
    signed: bytes | None = None,
    payload_type: str = IN_TOTO_PAYLOAD_TYPE,
    hint: str | None = "",
    material: Any = None,
) -> bytes:
    payload = statement(ARTIFACT_SHA256) if payload is None else payload
    signature = key.sign(pae(payload_type, payload) if signed is None else signed)[0]
    envelope = {
        "payload": b64(payload),
        "payloadType": payload_type,
        "signatures": [{"sig": b64(signature)}],
    }
    return document({"dsseEnvelope": envelope}, hint_of(key) if hint == "" else hint, material)


@pytest.mark.parametrize("kind", KEY_TYPES)
def test_a_message_signature_verifies_with_the_scheme_used(kind: str) -> None:
    key = KEYS[kind]
    assert verify_artifact(message_bundle(key), ARTIFACT, (key.public,)) == key.sign(ARTIFACT)[1]


@pytest.mark.parametrize("kind", KEY_TYPES)
def test_a_dsse_bundle_verifies_with_the_scheme_used(kind: str) -> None:
    key = KEYS[kind]
    expected = key.sign(pae(IN_TOTO_PAYLOAD_TYPE, statement(ARTIFACT_SHA256)))[1]
    assert verify_artifact(dsse_bundle(key), ARTIFACT, (key.public,)) == expected


@pytest.mark.parametrize(
    ("algorithm", "curve", "hash_type", "scheme"),
    [
        ("SHA2_384", ec.SECP384R1(), hashes.SHA384(), "ecdsa-p384-sha384"),
        ("SHA2_512", ec.SECP521R1(), hashes.SHA512(), "ecdsa-p521-sha512"),
    ],
)
def test_a_message_digest_of_another_algorithm(
    algorithm: str, curve: ec.EllipticCurve, hash_type: hashes.HashAlgorithm, scheme: str
) -> None:
    private = ec.generate_private_key(curve)
    public = load_public_key_pem(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    raw = message_bundle(
        CI, algorithm=algorithm, signature=private.sign(ARTIFACT, ec.ECDSA(hash_type)), hint=None
    )
    assert verify_artifact(raw, ARTIFACT, (public,)) == scheme
    with refused(Reason.DIGEST_MISMATCH):
        verify_artifact(raw, ARTIFACT + b"x", (public,))


def test_a_message_digest_of_another_artifact_is_digest_mismatch() -> None:
    raw = message_bundle(CI, digest_of=b"another artifact")
    with refused(Reason.DIGEST_MISMATCH):
        verify_artifact(raw, ARTIFACT, (CI.public,))


def test_a_message_digest_is_checked_even_when_the_signature_is_good() -> None:
    """The signature is over the artifact; a digest naming something else is still refused."""
    raw = message_bundle(CI, algorithm="SHA2_384", digest_of=b"x")
    with refused(Reason.DIGEST_MISMATCH):
        verify_artifact(raw, ARTIFACT, (CI.public,))


def test_a_signature_over_another_artifact_with_the_right_digest_fails() -> None:
    raw = message_bundle(CI, signature=CI.sign(b"another artifact")[0])
    with refused(Reason.SIGNATURE_INVALID):  # the hint names the key: tampered
        verify_artifact(raw, ARTIFACT, (CI.public,))
    raw = message_bundle(CI, signature=CI.sign(b"another artifact")[0], hint=None)
    with refused(Reason.NOT_SIGNED_BY_ATTESTOR):
        verify_artifact(raw, ARTIFACT, (CI.public,))


def test_an_unknown_digest_algorithm_is_unsupported_format() -> None:
    with refused(Reason.UNSUPPORTED_FORMAT):
        verify_artifact(message_bundle(CI, algorithm="SHA3_256"), ARTIFACT, (CI.public,))


def test_a_statement_about_another_artifact_is_digest_mismatch() -> None:
    raw = dsse_bundle(CI, statement(hashlib.sha256(b"other").hexdigest()))
    with refused(Reason.DIGEST_MISMATCH):
        verify_artifact(raw, ARTIFACT, (CI.public,))


def test_a_statement_naming_the_artifact_among_others_verifies() -> None:
    raw = dsse_bundle(CI, statement("0" * 64, ARTIFACT_SHA256))
    assert verify_artifact(raw, ARTIFACT, (CI.public,)) == "ecdsa-p256-sha256"


def test_a_dsse_signature_over_the_bare_payload_does_not_verify() -> None:
    raw = dsse_bundle(CI, signed=statement(ARTIFACT_SHA256))
    with refused(Reason.SIGNATURE_INVALID):
        verify_artifact(raw, ARTIFACT, (CI.public,))


def test_a_tampered_dsse_payload_fails_before_its_statement_is_read() -> None:
    signed = pae(IN_TOTO_PAYLOAD_TYPE, statement(ARTIFACT_SHA256))
    for payload in (statement("0" * 64), b"not even json"):
        with refused(Reason.SIGNATURE_INVALID):
            verify_artifact(dsse_bundle(CI, payload, signed=signed), ARTIFACT, (CI.public,))
        with refused(Reason.NOT_SIGNED_BY_ATTESTOR):
            verify_artifact(dsse_bundle(CI, payload, signed=signed), ARTIFACT, (STRANGER.public,))


def test_a_signed_statement_that_is_unusable_is_refused() -> None:
    with refused(Reason.SIGNATURE_INVALID):
        verify_artifact(dsse_bundle(CI, b"not json"), ARTIFACT, (CI.public,))
    bad_type = json.dumps({"_type": "https://in-toto.io/Statement/v9"}).encode()
    with refused(Reason.UNSUPPORTED_FORMAT):
        verify_artifact(dsse_bundle(CI, bad_type), ARTIFACT, (CI.public,))


def test_a_payload_that_is_not_in_toto_is_unsupported_format() -> None:
    raw = dsse_bundle(CI, payload_type="application/vnd.example+json")
    with refused(Reason.UNSUPPORTED_FORMAT):
        verify_artifact(raw, ARTIFACT, (CI.public,))


@pytest.mark.parametrize("kind", ["message", "dsse"])
def test_a_keyless_bundle_is_unsupported_format(kind: str) -> None:
    material = {"certificate": {"rawBytes": b64(b"\x30\x82leaf")}}
    build = message_bundle if kind == "message" else dsse_bundle
    with refused(Reason.UNSUPPORTED_FORMAT):
        verify_artifact(build(CI, material=material), ARTIFACT, (CI.public,))


@pytest.mark.parametrize("kind", ["message", "dsse"])
def test_a_hint_never_chooses_the_key(kind: str) -> None:
    build = message_bundle if kind == "message" else dsse_bundle
    # Signed by CI, naming STRANGER: CI, listed second, still verifies it.
    raw = build(CI, hint=hint_of(STRANGER))
    assert verify_artifact(raw, ARTIFACT, (STRANGER.public, CI.public)) == "ecdsa-p256-sha256"
    # Signed by STRANGER, naming CI: never a pass under CI.
    with refused(Reason.SIGNATURE_INVALID):
        verify_artifact(build(STRANGER, hint=hint_of(CI)), ARTIFACT, (CI.public,))
    # Naming nobody: verifies.
    assert verify_artifact(build(CI, hint=None), ARTIFACT, (CI.public,)) == "ecdsa-p256-sha256"


@pytest.mark.parametrize("kind", ["message", "dsse"])
def test_no_keys_is_not_signed_by_attestor(kind: str) -> None:
    build = message_bundle if kind == "message" else dsse_bundle
    with refused(Reason.NOT_SIGNED_BY_ATTESTOR):
        verify_artifact(build(CI), ARTIFACT, ())


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", Reason.SIGNATURE_INVALID),
        (b"{}", Reason.UNSUPPORTED_FORMAT),
        (json.dumps({"mediaType": V03}).encode(), Reason.SIGNATURE_INVALID),
        (b" " * (1024 * 1024 + 1), Reason.LIMIT_EXCEEDED),
    ],
    ids=["not-json", "no-media-type", "no-material", "too-big"],
)
def test_a_bundle_that_does_not_parse_is_refused(raw: bytes, reason: Reason) -> None:
    with refused(reason):
        verify_artifact(raw, ARTIFACT, (CI.public,))
