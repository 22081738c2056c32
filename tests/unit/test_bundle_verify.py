"""Key-based Sigstore bundles (formats/sigstore_bundle), through the one `judge` of all formats:
bundles built and signed in the test, and real ones written by cosign v2.6.5 and v3.1.3
(tests/unit/data/bundles)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from itertools import combinations
from pathlib import Path
from types import EllipsisType
from typing import Any

import pytest
from Crypto.Hash import SHA512
from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from signet.attest.dsse import IN_TOTO_PAYLOAD_TYPE, pae
from signet.attest.provenance import SLSA_V02, SLSA_V1
from signet.attest.statement import COSIGN_SIGN_PREDICATE as SIGN
from signet.crypto.keyfile import PrivateKey, generate
from signet.crypto.keys import PublicKey, load_public_key_pem
from signet.formats.cosign_classic import manifest as cosign
from signet.formats.cosign_classic.verify import ClassicEvidence
from signet.formats.judge import MAX_SIGNATURE_CHECKS, Evidence, estimated_checks, judge
from signet.formats.sigstore_bundle.bundle import BUNDLE_MEDIA_TYPES, MAX_BUNDLE_SIZE
from signet.formats.sigstore_bundle.verify import FORMAT, BundleEvidence, FetchedBundle
from signet.formats.verdict import PRECEDENCE, Verdict, attestor_failure, merge
from signet.model.report import AttestationFact, Failure, Report, SignatureFact
from signet.reasons import DeterministicFailure, Reason
from signet.trust.model import Attestor, EvidenceSettings, TrustConfig, TrustedKey
from tests.unit.stamps import NOW, unstamped

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
REPO = "registry.example/team/app"
IMAGE = f"{REPO}:1.0"
V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
V1_STATEMENT = "https://in-toto.io/Statement/v1"
V01_STATEMENT = "https://in-toto.io/Statement/v0.1"
DATA = Path(__file__).resolve().parent / "data" / "bundles"

KEY_TYPES = ("p256", "p384", "p521", "ed25519", "rsa2048")
KEYS = {kind: generate(kind) for kind in KEY_TYPES}
STRANGERS = {kind: generate(kind) for kind in KEY_TYPES}
CI, SEC, STRANGER = KEYS["p256"], KEYS["ed25519"], STRANGERS["p256"]


# -- building bundles -------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hint_of(key: PrivateKey | PublicKey) -> str:
    """What cosign writes as `publicKey.hint`: base64 of the SHA-256 of the DER SPKI."""
    public = key.public if isinstance(key, PrivateKey) else key
    return b64(hashlib.sha256(public.der).digest())


def statement(
    *digests: str,
    predicate_type: str = SIGN,
    predicate: Any = None,
    statement_type: str = V1_STATEMENT,
) -> bytes:
    subjects = [{"digest": {"sha256": d.removeprefix("sha256:")}} for d in digests or (D1,)]
    document = {
        "_type": statement_type,
        "subject": subjects,
        "predicateType": predicate_type,
        "predicate": {} if predicate is None else predicate,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def envelope(payload: bytes, *signatures: bytes, payload_type: str = IN_TOTO_PAYLOAD_TYPE) -> Any:
    return {
        "payload": b64(payload),
        "payloadType": payload_type,
        "signatures": [{"sig": b64(s)} for s in signatures],
    }


def encode(content: Any, *, hint: str | None, media_type: Any = V03, material: Any = None) -> bytes:
    if material is None:
        material = {"publicKey": {} if hint is None else {"hint": hint}}
    document = {"mediaType": media_type, "verificationMaterial": material, **content}
    return json.dumps({k: v for k, v in document.items() if v is not ...}).encode()


def bundle(
    key: PrivateKey,
    payload: bytes | None = None,
    *,
    hint: str | EllipsisType | None = ...,
    media_type: Any = V03,
    payload_type: str = IN_TOTO_PAYLOAD_TYPE,
    signed_payload: bytes | None = None,
    material: Any = None,
) -> bytes:
    """A bundle as cosign writes it: `key` signs the PAE of `signed_payload` (default: `payload`,
    default: a cosign sign statement about D1); the hint names `key` unless told otherwise."""
    payload = statement() if payload is None else payload
    signature, _ = key.sign(
        pae(payload_type, payload if signed_payload is None else signed_payload)
    )
    content = {"dsseEnvelope": envelope(payload, signature, payload_type=payload_type)}
    named = hint_of(key) if isinstance(hint, EllipsisType) else hint
    return encode(content, hint=named, media_type=media_type, material=material)


def fetched(
    raw: bytes | DeterministicFailure, predicate: str | None = SIGN, n: int = 0
) -> FetchedBundle:
    seed = raw if isinstance(raw, bytes) else raw.message.encode()
    referrer = "sha256:" + hashlib.sha256(b"%d:" % n + seed).hexdigest()
    return FetchedBundle(referrer, raw, predicate)


def evidence(*found: bytes | FetchedBundle, foreign: tuple[str, ...] = ()) -> BundleEvidence:
    return BundleEvidence(
        tuple(f if isinstance(f, FetchedBundle) else fetched(f, n=n) for n, f in enumerate(found)),
        foreign,
    )


def trust(**attestors: PrivateKey | PublicKey | tuple[PrivateKey | PublicKey, ...]) -> TrustConfig:
    """One attestor per keyword; each key's id is `<attestor>-<n>`."""
    built = []
    for name, given in attestors.items():
        keys = given if isinstance(given, tuple) else (given,)
        publics = [k.public if isinstance(k, PrivateKey) else k for k in keys]
        built.append(
            Attestor(name, tuple(TrustedKey(f"{name}-{i}", k) for i, k in enumerate(publics)))
        )
    return TrustConfig(tuple(built))


def judged(
    found: BundleEvidence | None,
    config: TrustConfig,
    digest: str = D1,
    classic: ClassicEvidence | None = None,
) -> Report:
    report = judge(IMAGE, digest, Evidence(classic=classic, bundles=found), config, now=NOW)
    report = unstamped(report)
    # Every configured attestor is either verified or explained, exactly once.
    explained = [f.attestor for f in report.failures if f.attestor is not None]
    assert sorted(explained) == sorted({a.name for a in config.attestors} - set(report.verified))
    assert all(not f.reason.transient for f in report.failures)
    json.dumps(report.to_json())
    return report


def reasons(report: Report) -> dict[str | None, Reason]:
    found = {f.attestor: f.reason for f in report.failures}
    assert len(found) == len(report.failures), "one failure per attestor, one problem"
    return found


def problems(report: Report) -> list[Failure]:
    return [f for f in report.failures if f.attestor is None]


# -- a signature by the attestor's key over exactly D ------------------------------------------------


@pytest.mark.parametrize("kind", KEY_TYPES)
def test_a_bundle_verifies_under_each_key_type_with_the_scheme_it_used(kind: str) -> None:
    key = KEYS[kind]
    payload = statement()
    _, scheme = key.sign(pae(IN_TOTO_PAYLOAD_TYPE, payload))
    report = judged(evidence(bundle(key, payload)), trust(ci=key))
    assert report.verified == ("ci",)
    assert report.signatures == (SignatureFact("ci", "ci-0", FORMAT, scheme),)
    assert report.failures == ()
    assert report.attestations == ()


@pytest.mark.parametrize("kind", KEY_TYPES)
def test_another_key_of_the_same_type_is_not_signed_by_attestor(kind: str) -> None:
    report = judged(evidence(bundle(STRANGERS[kind])), trust(ci=KEYS[kind]))
    assert report.verified == ()
    assert reasons(report) == {"ci": Reason.NOT_SIGNED_BY_ATTESTOR}
    assert "none verifies under a ci key" in report.failures[0].detail


def test_a_key_of_another_type_is_not_signed_by_attestor() -> None:
    found = evidence(*(bundle(KEYS[k], statement()) for k in KEY_TYPES if k != "rsa2048"))
    report = judged(found, trust(ci=KEYS["rsa2048"]))
    assert reasons(report) == {"ci": Reason.NOT_SIGNED_BY_ATTESTOR}


def test_the_signature_is_over_the_pae_not_the_bare_payload() -> None:
    payload = statement()
    signature, _ = CI.sign(payload)
    raw = encode({"dsseEnvelope": envelope(payload, signature)}, hint=hint_of(CI))
    report = judged(evidence(raw), trust(ci=CI))
    assert report.verified == ()
    assert reasons(report) == {"ci": Reason.SIGNATURE_INVALID}


def test_schemes_of_newer_cosign_versions_verify_and_are_named() -> None:
    """cosign >= 2.6 signs bundles with P-384/SHA-384, P-521/SHA-512 and Ed25519ph."""
    signed = pae(IN_TOTO_PAYLOAD_TYPE, statement())
    p384, p521 = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP521R1())
    ed_key = generate("ed25519")
    signatures = {
        "p384": p384.sign(signed, ec.ECDSA(hashes.SHA384())),
        "p521": p521.sign(signed, ec.ECDSA(hashes.SHA512())),
        "ed": eddsa.new(ECC.import_key(ed_key.pkcs8_der()), "rfc8032").sign(SHA512.new(signed)),
    }
    publics = {
        name: load_public_key_pem(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        for name, key in (("p384", p384), ("p521", p521))
    }
    publics["ed"] = ed_key.public
    found = evidence(
        *(
            encode({"dsseEnvelope": envelope(statement(), sig)}, hint=hint_of(publics[name]))
            for name, sig in signatures.items()
        )
    )
    report = judged(found, trust(**publics))
    assert {s.attestor: s.scheme for s in report.signatures} == {
        "p384": "ecdsa-p384-sha384",
        "p521": "ecdsa-p521-sha512",
        "ed": "ed25519ph",
    }


def test_any_key_of_an_attestor_is_enough_and_is_named() -> None:
    report = judged(evidence(bundle(KEYS["p384"])), trust(ci=(CI, KEYS["p384"])))
    assert [(s.attestor, s.key) for s in report.signatures] == [("ci", "ci-1")]


def test_two_attestors_each_verified_by_their_own_bundle() -> None:
    report = judged(evidence(bundle(SEC), bundle(CI)), trust(ci=CI, sec=SEC, other=STRANGER))
    assert report.verified == ("ci", "sec")
    assert reasons(report) == {"other": Reason.NOT_SIGNED_BY_ATTESTOR}


def test_a_statement_v01_signature_counts_too() -> None:
    payload = statement(statement_type=V01_STATEMENT)
    assert judged(evidence(bundle(CI, payload)), trust(ci=CI)).verified == ("ci",)


def test_a_statement_naming_several_subjects_binds_each() -> None:
    payload = statement(D2, D1)
    assert judged(evidence(bundle(CI, payload)), trust(ci=CI)).verified == ("ci",)
    assert judged(evidence(bundle(CI, payload)), trust(ci=CI), digest=D2).verified == ("ci",)


# -- tampering, and the digest the statement names ----------------------------------------------


def test_a_payload_changed_after_signing_whose_hint_names_the_key_is_signature_invalid() -> None:
    tampered = bundle(CI, statement(D1), signed_payload=statement(D2))
    report = judged(evidence(tampered), trust(ci=CI))
    assert report.verified == ()
    assert reasons(report) == {"ci": Reason.SIGNATURE_INVALID}
    assert "tampered or corrupt" in report.failures[0].detail


def test_a_tampered_bundle_whose_hint_names_nobody_is_not_signed_by_attestor() -> None:
    for hint in (None, b64(b"\x00" * 32)):
        tampered = bundle(CI, statement(D1), signed_payload=statement(D2), hint=hint)
        report = judged(evidence(tampered), trust(ci=CI))
        assert reasons(report) == {"ci": Reason.NOT_SIGNED_BY_ATTESTOR}


def test_a_signature_over_another_digest_is_digest_mismatch() -> None:
    report = judged(evidence(bundle(CI, statement(D2))), trust(ci=CI))
    assert report.verified == ()
    assert reasons(report) == {"ci": Reason.DIGEST_MISMATCH}
    assert D2 in report.failures[0].detail and D1 in report.failures[0].detail


def test_a_statement_with_no_sha256_subject_is_digest_mismatch() -> None:
    payload = json.dumps(
        {
            "_type": V1_STATEMENT,
            "subject": [{"digest": {"sha512": "a" * 128}}],
            "predicateType": SIGN,
        }
    ).encode()
    report = judged(evidence(bundle(CI, payload)), trust(ci=CI))
    assert reasons(report) == {"ci": Reason.DIGEST_MISMATCH}
    assert "no sha256 digest" in report.failures[0].detail


def test_a_mismatch_outranks_a_stranger_and_a_tampered_bundle() -> None:
    found = evidence(
        bundle(STRANGER),
        bundle(CI, statement(D1), signed_payload=statement(D2)),
        bundle(CI, statement(D2)),
    )
    assert reasons(judged(found, trust(ci=CI))) == {"ci": Reason.DIGEST_MISMATCH}


def test_a_copy_about_another_digest_beside_a_valid_one_does_not_matter() -> None:
    found = evidence(bundle(CI, statement(D2)), bundle(CI), foreign=(D2,))
    report = judged(found, trust(ci=CI))
    assert report.verified == ("ci",)
    assert report.failures == ()


def test_referrers_of_another_image_are_digest_mismatch() -> None:
    """Discovery found referrers listed for D1 whose `subject` is D2 (an index copied over)."""
    report = judged(evidence(foreign=(D2,)), trust(ci=CI, sec=SEC))
    assert reasons(report) == {"ci": Reason.DIGEST_MISMATCH, "sec": Reason.DIGEST_MISMATCH}
    assert "copied from another image" in report.failures[0].detail
    assert D2 in report.failures[0].detail
    # Beside a stranger's bundle, the copy still says most.
    report = judged(evidence(bundle(STRANGER), foreign=(D2,)), trust(ci=CI))
    assert reasons(report) == {"ci": Reason.DIGEST_MISMATCH}


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        statement(statement_type="https://in-toto.io/Statement/v9"),
        json.dumps({"_type": V1_STATEMENT, "subject": [], "predicateType": SIGN}).encode(),
    ],
    ids=["not-json", "not-an-object", "unknown-statement-type", "no-subject"],
)
def test_a_signed_but_unusable_statement_is_signature_invalid(payload: bytes) -> None:
    report = judged(evidence(bundle(CI, payload)), trust(ci=CI))
    assert reasons(report) == {"ci": Reason.SIGNATURE_INVALID}


# -- attestations are not signatures --------------------------------------------------------------

PROVENANCE_V1 = {
    "buildDefinition": {
        "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
        "externalParameters": {
            "workflow": {
                "repository": "https://github.com/example/app",
                "ref": "refs/heads/main",
                "path": ".github/workflows/release.yml",
            }
        },
        "resolvedDependencies": [
            {
                "uri": "git+https://github.com/example/app@refs/heads/main",
                "digest": {"gitCommit": "c" * 40},
            }
        ],
    },
    "runDetails": {"builder": {"id": "https://github.com/actions/runner/github-hosted"}},
}
PROVENANCE_FACTS = (
    ("builderId", "https://github.com/actions/runner/github-hosted"),
    ("buildType", "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1"),
    ("sourceRepository", "https://github.com/example/app"),
    ("sourceRef", "refs/heads/main"),
    ("sourceDigest", "gitCommit:" + "c" * 40),
    ("configEntryPoint", ".github/workflows/release.yml"),
)


def attestation(key: PrivateKey, digest: str = D1, predicate_type: str = SLSA_V1) -> bytes:
    payload = statement(
        digest, predicate_type=predicate_type, predicate=PROVENANCE_V1, statement_type=V01_STATEMENT
    )
    return bundle(key, payload)


@pytest.mark.parametrize("annotated", [SLSA_V1, None], ids=["annotated", "not-annotated"])
def test_an_image_with_only_an_attestation_is_no_signature_and_reports_the_attestation(
    annotated: str | None,
) -> None:
    report = judged(evidence(fetched(attestation(CI), annotated)), trust(ci=CI))
    assert report.verified == ()
    assert reasons(report) == {"ci": Reason.NO_SIGNATURE}
    assert "an attestation is not a signature" in report.failures[0].detail
    assert report.attestations == (
        AttestationFact("ci", "ci-0", FORMAT, SLSA_V1, PROVENANCE_FACTS),
    )


def test_with_attestations_not_looked_for_an_unannounced_one_is_not_reported() -> None:
    found = evidence(fetched(attestation(CI), None), bundle(CI))
    config = dataclasses.replace(trust(ci=CI), evidence=EvidenceSettings(attestations=False))
    report = judged(found, config)
    assert report.verified == ("ci",)
    assert report.attestations == ()


def test_an_attestation_beside_a_signature_is_reported_with_the_signature() -> None:
    found = evidence(fetched(attestation(CI), SLSA_V1), bundle(CI))
    report = judged(found, trust(ci=CI))
    assert report.verified == ("ci",)
    assert [a.predicate_type for a in report.attestations] == [SLSA_V1]


def test_an_attestation_of_another_type_has_no_facts() -> None:
    payload = statement(
        predicate_type="https://spdx.dev/Document", predicate={"spdxVersion": "2.3"}
    )
    report = judged(
        evidence(fetched(bundle(CI, payload), "https://spdx.dev/Document")), trust(ci=CI)
    )
    assert reasons(report) == {"ci": Reason.NO_SIGNATURE}
    assert report.attestations == (
        AttestationFact("ci", "ci-0", FORMAT, "https://spdx.dev/Document"),
    )


def test_an_attestation_by_a_stranger_is_not_reported() -> None:
    report = judged(evidence(fetched(attestation(STRANGER), SLSA_V1)), trust(ci=CI))
    assert report.attestations == ()
    assert reasons(report) == {"ci": Reason.NO_SIGNATURE}


def test_an_attestation_about_another_digest_is_digest_mismatch_and_not_reported() -> None:
    report = judged(evidence(fetched(attestation(CI, D2), SLSA_V02)), trust(ci=CI))
    assert reasons(report) == {"ci": Reason.DIGEST_MISMATCH}
    assert report.attestations == ()


def test_an_annotation_cannot_turn_an_attestation_into_a_signature() -> None:
    """The referrer's predicateType annotation is unsigned: the statement decides."""
    report = judged(evidence(fetched(attestation(CI), SIGN)), trust(ci=CI))
    assert report.verified == ()
    assert [a.predicate_type for a in report.attestations] == [SLSA_V1]


# -- the key hint never chooses a key ----------------------------------------------------------------


@pytest.mark.parametrize("kind", KEY_TYPES)
def test_a_hint_naming_the_attestor_key_never_makes_a_strangers_bundle_verify(kind: str) -> None:
    forged = bundle(STRANGERS[kind], hint=hint_of(KEYS[kind]))
    report = judged(evidence(forged), trust(ci=KEYS[kind]))
    assert report.verified == ()
    assert report.signatures == ()
    # The hint only makes the denial say "tampered": it names the key, which does not verify.
    assert reasons(report) == {"ci": Reason.SIGNATURE_INVALID}


def test_a_hint_naming_another_key_of_the_attestor_does_not_choose_it() -> None:
    raw = bundle(KEYS["p384"], hint=hint_of(CI))
    report = judged(evidence(raw), trust(ci=(CI, KEYS["p384"])))
    assert [(s.attestor, s.key) for s in report.signatures] == [("ci", "ci-1")]


def test_a_hint_naming_another_attestor_does_not_move_the_signature() -> None:
    raw = bundle(CI, hint=hint_of(SEC))
    report = judged(evidence(raw), trust(sec=SEC, ci=CI))
    assert report.verified == ("ci",)
    assert "sec" in reasons(report)


@pytest.mark.parametrize(
    "material",
    [
        {"publicKey": {"hint": b64(b"\x00" * 32)}},
        {"publicKey": {"hint": ""}},
        {"publicKey": {"hint": 5}},
        {"publicKey": {}},
        {"publicKey": None},
        {"publicKey": {"hint": hint_of(STRANGER)}},
    ],
    ids=["nobody", "empty", "not-a-string", "absent", "null", "a-stranger"],
)
def test_a_hint_naming_nobody_does_not_prevent_verification(material: Any) -> None:
    report = judged(evidence(bundle(CI, material=material)), trust(ci=CI))
    assert report.verified == ("ci",)


# -- bundles Signet cannot count, and malformed ones -------------------------------------------------


@pytest.mark.parametrize(
    "material",
    [
        {"certificate": {"rawBytes": b64(b"\x30\x82leaf")}},
        {"x509CertificateChain": {"certificates": [{"rawBytes": b64(b"\x30\x82leaf")}]}},
    ],
    ids=["certificate", "chain"],
)
def test_a_certificate_bundle_is_an_unsupported_format_problem(material: Any) -> None:
    # Even signed by the attestor's key: keyless material is not judged by key.
    raw = bundle(CI, material=material)
    report = judged(evidence(raw), trust(ci=CI))
    assert report.verified == ()
    # Signatures exist, none by a ci key (as for a classic keyless layer); and the image-level
    # problem says why they could not count.
    assert reasons(report) == {
        "ci": Reason.NOT_SIGNED_BY_ATTESTOR,
        None: Reason.UNSUPPORTED_FORMAT,
    }
    assert "keyless" in problems(report)[0].detail
    # Beside a valid key-based bundle it is no problem at all.
    report = judged(evidence(raw, bundle(CI)), trust(ci=CI))
    assert report.verified == ("ci",)
    assert report.failures == ()


def message_signature(algorithm: str = "SHA2_256") -> bytes:
    artifact = b"an artifact"
    content = {
        "messageSignature": {
            "messageDigest": {
                "algorithm": algorithm,
                "digest": b64(hashlib.sha256(artifact).digest()),
            },
            "signature": b64(CI.sign(artifact)[0]),
        }
    }
    return encode(content, hint=hint_of(CI))


@pytest.mark.parametrize("algorithm", ["SHA2_256", "SHA3_256"])
def test_a_message_signature_bundle_is_an_unsupported_format_problem(algorithm: str) -> None:
    report = judged(evidence(message_signature(algorithm)), trust(ci=CI))
    assert report.verified == ()
    assert reasons(report) == {"ci": Reason.NO_SIGNATURE, None: Reason.UNSUPPORTED_FORMAT}


def test_a_payload_that_is_not_in_toto_is_an_unsupported_format_problem() -> None:
    raw = bundle(CI, payload_type="application/vnd.dev.cosign.simplesigning.v1+json")
    report = judged(evidence(raw), trust(ci=CI))
    assert reasons(report) == {"ci": Reason.NO_SIGNATURE, None: Reason.UNSUPPORTED_FORMAT}


@pytest.mark.parametrize("media_type", list(BUNDLE_MEDIA_TYPES))
def test_every_bundle_version_parses(media_type: str) -> None:
    assert judged(evidence(bundle(CI, media_type=media_type)), trust(ci=CI)).verified == ("ci",)


@pytest.mark.parametrize(
    "media_type",
    [
        "application/vnd.dev.sigstore.bundle.v0.4+json",
        "application/vnd.dev.sigstore.bundle+json;version=0.4",
        "application/vnd.dev.sigstore.bundle+json",
        "application/vnd.dev.sigstore.bundle.v0.3+json ",
        "application/json",
        "",
        None,
        3,
        ...,
    ],
    ids=repr,
)
def test_an_unknown_bundle_version_is_an_unsupported_format_problem(media_type: Any) -> None:
    report = judged(evidence(bundle(CI, media_type=media_type)), trust(ci=CI))
    assert report.verified == ()
    assert reasons(report) == {"ci": Reason.NO_SIGNATURE, None: Reason.UNSUPPORTED_FORMAT}


def two_signatures() -> bytes:
    payload = statement()
    signed = pae(IN_TOTO_PAYLOAD_TYPE, payload)
    content = {"dsseEnvelope": envelope(payload, CI.sign(signed)[0], STRANGER.sign(signed)[0])}
    return encode(content, hint=hint_of(CI))


def without(raw: bytes, *path: str) -> bytes:
    document = json.loads(raw)
    parent = document
    for name in path[:-1]:
        parent = parent[name]
    del parent[path[-1]]
    return json.dumps(document).encode()


def replaced(raw: bytes, value: Any, *path: str) -> bytes:
    document = json.loads(raw)
    parent = document
    for name in path[:-1]:
        parent = parent[name]
    parent[path[-1]] = value
    return json.dumps(document).encode()


VALID = bundle(CI)
MALFORMED = {
    "not-json": b"{not json",
    "empty": b"",
    "not-an-object": b"[]",
    "no-material": without(VALID, "verificationMaterial"),
    "material-not-an-object": replaced(VALID, "key", "verificationMaterial"),
    "no-key-material": replaced(VALID, {"tlogEntries": []}, "verificationMaterial"),
    "key-and-certificate": replaced(
        VALID, {"rawBytes": "AA=="}, "verificationMaterial", "certificate"
    ),
    "no-content": without(VALID, "dsseEnvelope"),
    "envelope-and-message": replaced(VALID, {"signature": "AA=="}, "messageSignature"),
    "envelope-not-an-object": replaced(VALID, "envelope", "dsseEnvelope"),
    "payload-not-base64": replaced(VALID, "%%%", "dsseEnvelope", "payload"),
    "signature-not-base64": replaced(VALID, [{"sig": "%%%"}], "dsseEnvelope", "signatures"),
    "no-signatures": replaced(VALID, [], "dsseEnvelope", "signatures"),
    "two-signatures": two_signatures(),
}


@pytest.mark.parametrize("raw", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_bundle_is_a_signature_invalid_problem(raw: bytes) -> None:
    report = judged(evidence(raw), trust(ci=CI))
    assert report.verified == ()
    assert reasons(report) == {"ci": Reason.NO_SIGNATURE, None: Reason.SIGNATURE_INVALID}


def test_a_malformed_bundle_does_not_hide_a_valid_one() -> None:
    found = evidence(*MALFORMED.values(), message_signature(), VALID)
    report = judged(found, trust(ci=CI))
    assert report.verified == ("ci",)
    assert {f.reason for f in problems(report)} == {
        Reason.SIGNATURE_INVALID,
        Reason.UNSUPPORTED_FORMAT,
    }


def test_a_problem_names_its_referrer() -> None:
    broken = fetched(b"{not json")
    report = judged(BundleEvidence((broken,)), trust(ci=CI))
    assert broken.referrer in problems(report)[0].detail


def test_an_oversized_bundle_and_a_failed_fetch_are_problems() -> None:
    too_big = fetched(b" " * (MAX_BUNDLE_SIZE + 1))
    missing = fetched(DeterministicFailure(Reason.SIGNATURE_INVALID, "blob sha256:ab is missing"))
    report = judged(BundleEvidence((too_big, missing)), trust(ci=CI))
    found = problems(report)
    assert [f.reason for f in found] == [Reason.LIMIT_EXCEEDED, Reason.SIGNATURE_INVALID]
    assert found[0].detail.startswith(f"referrer {too_big.referrer}: the bundle is ")
    assert found[1].detail == f"referrer {missing.referrer}: blob sha256:ab is missing"


def test_a_bundle_with_json_bombs_is_refused_before_parsing() -> None:
    report = judged(evidence(b"[" * 70_000 + b"]" * 70_000), trust(ci=CI))
    assert reasons(report)[None] is Reason.LIMIT_EXCEEDED


def test_no_bundle_evidence_says_nothing() -> None:
    for found in (None, BundleEvidence()):
        report = judged(found, trust(ci=CI))
        assert reasons(report) == {"ci": Reason.NO_SIGNATURE}
        assert "no signature found" in report.failures[0].detail


# -- the budget of signature checks ------------------------------------------------------------------


def bogus(count: int, key: PrivateKey = STRANGER) -> list[bytes]:
    """`count` distinct well-formed bundles about D1 by a key nobody trusts."""
    return [bundle(key, statement(D1, "sha256:" + f"{n:064x}")) for n in range(count)]


BOGUS = bogus(MAX_SIGNATURE_CHECKS + 40)


def test_bogus_bundles_stop_at_the_budget_of_checks() -> None:
    """One P-256 key, one scheme: each bogus bundle costs one check. The first
    MAX_SIGNATURE_CHECKS are made; the valid bundle after them never is."""
    config = trust(ci=CI)
    found = evidence(*BOGUS[: MAX_SIGNATURE_CHECKS - 1], VALID)
    assert judged(found, config).verified == ("ci",)  # exactly the budget: still verified

    found = evidence(*BOGUS[:MAX_SIGNATURE_CHECKS], VALID)
    report = judged(found, config)
    assert report.verified == ()
    assert reasons(report) == {"ci": Reason.LIMIT_EXCEEDED}
    assert f"gave up after {MAX_SIGNATURE_CHECKS} signature checks" in report.failures[0].detail
    assert estimated_checks(Evidence(bundles=found), config) == MAX_SIGNATURE_CHECKS


def test_the_budget_is_shared_by_attestors_in_order() -> None:
    config = trust(a=generate("p256"), b=generate("p256"), c=CI)
    found = evidence(*BOGUS[:200], VALID)
    report = judged(found, config)
    # a spends 201 checks, b the remaining 55 and gives up; c gets none.
    assert [(f.attestor, f.reason) for f in report.failures] == [
        ("a", Reason.NOT_SIGNED_BY_ATTESTOR),
        ("b", Reason.LIMIT_EXCEEDED),
        ("c", Reason.LIMIT_EXCEEDED),
    ]


def test_a_signature_found_before_the_budget_runs_out_stands() -> None:
    report = judged(evidence(VALID, *BOGUS), trust(ci=CI))
    assert report.verified == ("ci",)
    assert report.failures == ()


def test_signatures_of_another_shape_cost_nothing() -> None:
    """Ed25519 signatures are 64 raw bytes: the P-256 key is never tried on them."""
    found = evidence(*bogus(MAX_SIGNATURE_CHECKS + 10, STRANGERS["ed25519"]), VALID)
    config = trust(ci=CI)
    assert estimated_checks(Evidence(bundles=found), config) == MAX_SIGNATURE_CHECKS  # an estimate
    assert judged(found, config).verified == ("ci",)


def test_the_budget_is_shared_with_classic_signatures() -> None:
    """Classic signatures are judged first; what they spend, bundles cannot. Four P-256 keys
    times 64 classic signatures is exactly the budget: the classic check completes, and the
    valid bundle is never checked."""
    config = trust(ci=(generate("p256"), generate("p256"), generate("p256"), CI))
    layers = MAX_SIGNATURE_CHECKS // 4
    classic = classic_evidence(
        *(cosign.make_payload(f"{REPO}-{n}", D1) for n in range(layers)), key=STRANGER
    )
    report = judged(evidence(VALID), config, classic=classic)
    assert reasons(report) == {"ci": Reason.LIMIT_EXCEEDED}
    assert "signature checks; the image carries 1 bundles" in report.failures[0].detail

    fewer = classic_evidence(
        *(cosign.make_payload(f"{REPO}-{n}", D1) for n in range(layers - 1)), key=STRANGER
    )
    assert judged(evidence(VALID), config, classic=fewer).verified == ("ci",)


# -- merging the formats' verdicts ------------------------------------------------------------------


def classic_evidence(*payloads: bytes, key: PrivateKey) -> ClassicEvidence:
    """A `.sig` manifest with one layer per payload, each signed by `key`."""
    digests = ["sha256:" + hashlib.sha256(p).hexdigest() for p in payloads]
    layers = [
        cosign.signature_layer_descriptor(d, len(p), key.sign(p)[0])
        for d, p in zip(digests, payloads, strict=True)
    ]
    manifest = cosign.parse_signature_manifest(cosign.signature_manifest({}, layers))
    return ClassicEvidence(manifest, dict(zip(digests, payloads, strict=True)))


def failure(reason: Reason, detail: str = "") -> Failure:
    return attestor_failure(reason, IMAGE, "ci", detail or str(reason), D1)


@pytest.mark.parametrize(("stronger", "weaker"), list(combinations(PRECEDENCE, 2)), ids=str)
def test_merge_keeps_the_most_specific_reason_in_either_order(
    stronger: Reason, weaker: Reason
) -> None:
    config = trust(ci=CI)
    for verdicts in (
        [Verdict(failures=(failure(stronger),)), Verdict(failures=(failure(weaker),))],
        [Verdict(failures=(failure(weaker),)), Verdict(failures=(failure(stronger),))],
    ):
        report = merge(IMAGE, D1, config, verdicts)
        assert reasons(report) == {"ci": stronger}


def test_merge_between_equals_keeps_the_first_formats_detail() -> None:
    verdicts = [
        Verdict(failures=(failure(Reason.NOT_SIGNED_BY_ATTESTOR, "classic"),)),
        Verdict(failures=(failure(Reason.NOT_SIGNED_BY_ATTESTOR, "bundle"),)),
    ]
    assert merge(IMAGE, D1, trust(ci=CI), verdicts).failures[0].detail == "classic"


def test_the_precedence_is_the_documented_one() -> None:
    assert PRECEDENCE == (
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


def test_no_classic_signature_and_a_bundle_about_another_digest_is_digest_mismatch() -> None:
    empty_classic = classic_evidence(key=CI)
    report = judged(evidence(bundle(CI, statement(D2))), trust(ci=CI), classic=empty_classic)
    assert reasons(report) == {"ci": Reason.DIGEST_MISMATCH}
    assert report.failures[0].detail.startswith("a ci bundle names")


def test_a_classic_copy_and_a_strangers_bundle_is_digest_mismatch() -> None:
    copied = classic_evidence(cosign.make_payload(REPO, D2), key=CI)
    report = judged(evidence(bundle(STRANGER)), trust(ci=CI), classic=copied)
    assert reasons(report) == {"ci": Reason.DIGEST_MISMATCH}


def test_a_strangers_classic_signature_and_a_tampered_bundle_is_signature_invalid() -> None:
    stranger = classic_evidence(cosign.make_payload(REPO, D1), key=STRANGER)
    tampered = bundle(CI, statement(D1), signed_payload=statement(D2))
    report = judged(evidence(tampered), trust(ci=CI), classic=stranger)
    assert reasons(report) == {"ci": Reason.SIGNATURE_INVALID}


def test_a_strangers_classic_signature_and_only_an_attestation_is_not_signed_by_attestor() -> None:
    stranger = classic_evidence(cosign.make_payload(REPO, D1), key=STRANGER)
    report = judged(evidence(fetched(attestation(CI), SLSA_V1)), trust(ci=CI), classic=stranger)
    assert reasons(report) == {"ci": Reason.NOT_SIGNED_BY_ATTESTOR}
    assert len(report.attestations) == 1


@pytest.mark.parametrize("which", ["classic", "bundle"])
def test_one_format_verifying_is_enough_and_leaves_no_failure(which: str) -> None:
    good_classic = classic_evidence(cosign.make_payload(REPO, D1), key=CI)
    bad_classic = classic_evidence(cosign.make_payload(REPO, D2), key=CI)
    classic, found = (
        (good_classic, evidence(bundle(CI, statement(D2))))
        if which == "classic"
        else (bad_classic, evidence(VALID))
    )
    report = judged(found, trust(ci=CI), classic=classic)
    assert report.verified == ("ci",)
    assert report.failures == ()
    assert [s.format for s in report.signatures] == [
        "cosign-classic" if which == "classic" else FORMAT
    ]


def test_both_formats_verifying_are_both_listed() -> None:
    good_classic = classic_evidence(cosign.make_payload(REPO, D1), key=CI)
    report = judged(evidence(VALID), trust(ci=CI, sec=SEC), classic=good_classic)
    assert report.verified == ("ci",)
    assert [s.format for s in report.signatures] == ["cosign-classic", FORMAT]
    assert reasons(report) == {"sec": Reason.NOT_SIGNED_BY_ATTESTOR}


# -- real bundles, written by cosign ----------------------------------------------------------------

REAL = {
    "v3.1.3-p256": "ecdsa-p256-sha256",
    "v2.6.5-p256": "ecdsa-p256-sha256",
    "v3.1.3-ed25519": "ed25519ph",
}


def real(name: str, file: str = "sign.bundle.json") -> tuple[bytes, PublicKey, str]:
    directory = DATA / name
    return (
        (directory / file).read_bytes(),
        load_public_key_pem((directory / "key.pub").read_bytes()),
        (directory / "image.digest").read_text().strip(),
    )


def edited_payload(raw: bytes, position: int) -> bytes:
    """The bundle with one byte of its signed payload changed, everything else verbatim."""
    encoded = json.loads(raw)["dsseEnvelope"]["payload"]
    payload = bytearray(base64.b64decode(encoded))
    payload[position] ^= 0x01
    assert raw.count(encoded.encode()) == 1
    return raw.replace(encoded.encode(), base64.b64encode(bytes(payload)))


@pytest.mark.parametrize("name", list(REAL))
def test_a_real_cosign_bundle_verifies(name: str) -> None:
    raw, key, digest = real(name)
    assert json.loads(raw)["verificationMaterial"]["publicKey"]["hint"] == hint_of(key)
    report = judged(evidence(raw), trust(ci=key), digest=digest)
    assert report.signatures == (SignatureFact("ci", "ci-0", FORMAT, REAL[name]),)
    assert report.failures == ()


def position(payload: bytes, digest: str, where: str) -> int:
    if where == "digest":  # a hex character of the image digest in the subject
        return payload.index(digest.removeprefix("sha256:").encode()) + 10
    return {"first": 0, "middle": len(payload) // 2, "last": len(payload) - 1}[where]


@pytest.mark.parametrize("name", list(REAL))
@pytest.mark.parametrize("where", ["first", "middle", "digest", "last"])
def test_a_real_cosign_bundle_with_one_payload_byte_edited_fails(name: str, where: str) -> None:
    raw, key, digest = real(name)
    payload = base64.b64decode(json.loads(raw)["dsseEnvelope"]["payload"])
    edited = edited_payload(raw, position(payload, digest, where))
    assert edited != raw
    report = judged(evidence(edited), trust(ci=key), digest=digest)
    assert report.verified == ()
    assert reasons(report) == {"ci": Reason.SIGNATURE_INVALID}


def test_a_real_cosign_bundle_with_its_signature_edited_fails() -> None:
    raw, key, digest = real("v3.1.3-p256")
    document = json.loads(raw)
    signature = bytearray(base64.b64decode(document["dsseEnvelope"]["signatures"][0]["sig"]))
    signature[-1] ^= 0x01
    document["dsseEnvelope"]["signatures"][0]["sig"] = b64(bytes(signature))
    report = judged(evidence(json.dumps(document).encode()), trust(ci=key), digest=digest)
    assert reasons(report) == {"ci": Reason.SIGNATURE_INVALID}


def test_a_real_cosign_bundle_for_another_image_is_digest_mismatch() -> None:
    raw, key, _ = real("v3.1.3-p256")
    assert reasons(judged(evidence(raw), trust(ci=key), digest=D1)) == {
        "ci": Reason.DIGEST_MISMATCH
    }


def test_a_real_cosign_bundle_under_another_key_is_not_signed_by_attestor() -> None:
    raw, _, digest = real("v3.1.3-p256")
    _, other, _ = real("v2.6.5-p256")
    report = judged(evidence(raw), trust(ci=other), digest=digest)
    assert reasons(report) == {"ci": Reason.NOT_SIGNED_BY_ATTESTOR}


def test_a_real_cosign_attestation_is_reported_and_is_not_a_signature() -> None:
    attested, key, digest = real("v3.1.3-p256", "slsa-v1.bundle.json")
    report = judged(evidence(fetched(attested, SLSA_V1)), trust(ci=key), digest=digest)
    assert reasons(report) == {"ci": Reason.NO_SIGNATURE}
    (fact,) = report.attestations
    assert (fact.attestor, fact.key, fact.format, fact.predicate_type) == (
        "ci",
        "ci-0",
        FORMAT,
        SLSA_V1,
    )
    assert dict(fact.facts) == {
        "builderId": "https://github.com/actions/runner/github-hosted",
        "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
        "sourceRepository": "https://github.com/example/app",
        "sourceRef": "refs/heads/main",
        "sourceDigest": "gitCommit:0123456789abcdef0123456789abcdef01234567",
        "configEntryPoint": ".github/workflows/release.yml",
    }
    signed, _, _ = real("v3.1.3-p256")
    report = judged(evidence(fetched(attested, SLSA_V1), signed), trust(ci=key), digest=digest)
    assert report.verified == ("ci",)
    assert len(report.attestations) == 1
