"""cosign classic verification (formats/cosign_classic/verify.py), through the one `judge` of all
formats, on signature material built and signed in the test."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from Crypto.Hash import SHA512
from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from signet.crypto.keyfile import PrivateKey, generate
from signet.crypto.keys import load_public_key_pem
from signet.formats.cosign_classic import manifest as cosign
from signet.formats.cosign_classic.verify import ClassicEvidence
from signet.formats.judge import MAX_SIGNATURE_CHECKS, Evidence, estimated_checks, judge
from signet.formats.verdict import failure_report
from signet.model.reference import is_sha256_digest
from signet.model.report import REPORT_VERSION, Failure, Report, SignatureFact
from signet.reasons import DeterministicFailure, Reason
from signet.trust.model import Attestor, TrustConfig, TrustedKey
from tests.unit.stamps import NOW, unstamped

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
REPO = "registry.example/team/app"
IMAGE = f"{REPO}:1.0"
PINNED = f"{REPO}@{D1}"

DEV, DEV_NEXT, SEC = generate("p256"), generate("p384"), generate("ed25519")
STRANGER = generate("p256")

Signed = tuple[bytes, bytes]  # (payload bytes, raw signature)


# -- building evidence ------------------------------------------------------------------------


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def signed(key: PrivateKey, digest: str = D1, reference: str = REPO) -> Signed:
    payload = cosign.make_payload(reference, digest)
    return payload, key.sign(payload)[0]


def signed_bytes(key: PrivateKey, payload: bytes) -> Signed:
    return payload, key.sign(payload)[0]


def evidence(*layers: Signed, extra: list[dict[str, Any]] | None = None) -> ClassicEvidence:
    """The `.sig` manifest listing `layers` (in order), and each payload, as the registry held them."""
    descriptors = [
        cosign.signature_layer_descriptor(digest_of(payload), len(payload), signature)
        for payload, signature in layers
    ]
    raw = cosign.signature_manifest({}, descriptors + (extra or []))
    payloads: dict[str, bytes | DeterministicFailure] = {
        digest_of(payload): payload for payload, _ in layers
    }
    return ClassicEvidence(cosign.parse_signature_manifest(raw), payloads)


def trust(**attestors: PrivateKey | tuple[PrivateKey, ...]) -> TrustConfig:
    """One attestor per keyword; each key's id is `<attestor>-<n>`."""
    built = []
    for name, given in attestors.items():
        keys = given if isinstance(given, tuple) else (given,)
        built.append(
            Attestor(name, tuple(TrustedKey(f"{name}-{i}", k.public) for i, k in enumerate(keys)))
        )
    return TrustConfig(tuple(built))


# -- the report contract (DESIGN.md, report v1) -----------------------------------------------


def assert_report_v1(report: Report, config: TrustConfig) -> dict[str, Any]:
    document = report.to_json()
    assert json.loads(json.dumps(document)) == document  # plain JSON
    assert list(document) == [
        "version",
        "image",
        "digest",
        "verified",
        "signatures",
        "failures",
        "attestations",
    ]
    assert document["version"] == REPORT_VERSION == 1
    assert isinstance(document["image"], str)
    assert document["digest"] is None or is_sha256_digest(document["digest"])
    assert all(isinstance(name, str) for name in document["verified"])
    for signature in document["signatures"]:
        assert list(signature)[:4] == ["attestor", "key", "format", "scheme"]
        assert set(signature) <= {*list(signature)[:4], "keyless", "signedAt", "timeSource"}
        assert all(
            isinstance(signature[name], str) and signature[name] for name in list(signature)[:4]
        )
    for failure in document["failures"]:
        assert list(failure)[:3] == ["attestor", "reason", "remediation"]
        assert set(failure) <= {"attestor", "reason", "remediation", "detail"}
        assert not Reason(failure["reason"]).transient
        assert isinstance(failure["remediation"], str) and failure["remediation"]
    # `failures` explains every configured attestor that is not verified, exactly once.
    names = [a.name for a in config.attestors]
    explained = [f["attestor"] for f in document["failures"] if f["attestor"] is not None]
    assert sorted(explained) == sorted(set(names) - set(document["verified"]))
    assert [s["attestor"] for s in document["signatures"]] == document["verified"]
    return document


def classic(image: str, digest: str, found: ClassicEvidence | None, config: TrustConfig) -> Report:
    return unstamped(judge(image, digest, Evidence(classic=found), config, now=NOW))


def judged(found: ClassicEvidence | None, config: TrustConfig, image: str = IMAGE) -> Report:
    report = classic(image, D1, found, config)
    assert_report_v1(report, config)
    assert report.image == image
    assert report.digest == D1
    return report


def reasons_by_attestor(report: Report) -> dict[str | None, Reason]:
    found = {f.attestor: f.reason for f in report.failures}
    assert len(found) == len(report.failures), "one failure per attestor"
    return found


# -- step 1: no evidence ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "found",
    [None, evidence(), evidence(extra=[{"mediaType": "text/plain", "digest": D2, "size": 1}])],
    ids=["no-sig-manifest", "no-layers", "only-other-media-types"],
)
def test_no_evidence_is_no_signature_for_every_attestor(found: ClassicEvidence | None) -> None:
    report = judged(found, trust(dev=DEV, sec=SEC))
    assert report.verified == ()
    assert reasons_by_attestor(report) == {"dev": Reason.NO_SIGNATURE, "sec": Reason.NO_SIGNATURE}
    dev = report.failures[0]
    assert dev.remediation == f"sign {PINNED} with a dev key (signet sign / cosign sign)"
    assert D1 in dev.detail


# -- steps 3 to 5: the signature, then the digest it names ------------------------------------


def test_two_attestors_one_signed() -> None:
    report = judged(evidence(signed(DEV)), trust(dev=DEV, sec=SEC))
    assert report.verified == ("dev",)
    assert report.signatures == (
        SignatureFact("dev", "dev-0", "cosign-classic", "ecdsa-p256-sha256"),
    )
    (failure,) = report.failures
    assert (failure.attestor, failure.reason) == ("sec", Reason.NOT_SIGNED_BY_ATTESTOR)
    assert failure.remediation == f"sign {PINNED} with a sec key"
    assert "1 usable signature(s)" in failure.detail


def test_both_attestors_signed() -> None:
    report = judged(evidence(signed(SEC), signed(DEV)), trust(dev=DEV, sec=SEC))
    assert report.verified == ("dev", "sec")  # in the config's order, not the layers'
    assert report.failures == ()
    assert [s.scheme for s in report.signatures] == ["ecdsa-p256-sha256", "ed25519"]


def test_a_signature_copied_from_another_digest_is_a_mismatch() -> None:
    report = judged(evidence(signed(DEV, D2)), trust(dev=DEV, sec=SEC))
    assert report.verified == ()
    assert reasons_by_attestor(report) == {
        "dev": Reason.DIGEST_MISMATCH,
        "sec": Reason.NOT_SIGNED_BY_ATTESTOR,
    }
    mismatch = report.failures[0]
    assert D2 in mismatch.detail and D1 in mismatch.detail
    assert mismatch.remediation.startswith(f"sign {PINNED} itself with a dev key")


def test_a_copied_signature_beside_a_valid_one_does_not_matter() -> None:
    report = judged(evidence(signed(DEV, D2), signed(DEV, D1)), trust(dev=DEV))
    assert report.verified == ("dev",)
    assert report.failures == ()


def test_the_signed_reference_is_not_what_binds() -> None:
    # cosign signs `registry/repo` without a tag; the digest alone binds the signature.
    report = judged(evidence(signed(DEV, reference="elsewhere.example/other")), trust(dev=DEV))
    assert report.verified == ("dev",)


@pytest.mark.parametrize(
    "edit",
    [
        lambda p: p.replace(b'"optional":null', b'"optional":{"x":1}'),
        lambda p: p.replace(D1.encode(), D2.encode()),
        lambda p: p + b" ",
        lambda p: p.replace(b"registry.example", b"registry.exampLe"),
    ],
    ids=["optional", "digest", "whitespace", "reference"],
)
def test_a_payload_changed_after_signing_does_not_verify(edit: Any) -> None:
    payload, signature = signed(DEV)
    report = judged(evidence((edit(payload), signature)), trust(dev=DEV))
    assert report.verified == ()
    assert reasons_by_attestor(report) == {"dev": Reason.NOT_SIGNED_BY_ATTESTOR}


def test_a_signature_moved_to_another_layer_does_not_verify() -> None:
    (payload_1, signature_1), (payload_2, signature_2) = signed(DEV, D1), signed(DEV, D2)
    report = judged(evidence((payload_1, signature_2), (payload_2, signature_1)), trust(dev=DEV))
    assert report.verified == ()
    assert reasons_by_attestor(report) == {"dev": Reason.NOT_SIGNED_BY_ATTESTOR}


def test_duplicate_layers_do_not_double_count() -> None:
    one = signed(DEV)
    report = judged(evidence(one, one, one), trust(dev=DEV))
    assert report.verified == ("dev",)
    assert len(report.signatures) == 1
    # Two distinct valid signatures by one attestor still make one verified attestor.
    report = judged(evidence(one, signed(DEV)), trust(dev=DEV, sec=SEC))
    assert report.verified == ("dev",)
    assert len(report.signatures) == 1


def test_a_stranger_signature_is_not_signed_by_attestor() -> None:
    report = judged(evidence(signed(STRANGER)), trust(dev=DEV))
    assert reasons_by_attestor(report) == {"dev": Reason.NOT_SIGNED_BY_ATTESTOR}


def test_any_key_of_an_attestor_is_enough_and_is_named() -> None:
    report = judged(evidence(signed(DEV_NEXT)), trust(dev=(DEV, DEV_NEXT)))
    assert report.verified == ("dev",)
    assert report.signatures[0].key == "dev-1"
    assert report.signatures[0].scheme == "ecdsa-p384-sha256"


def test_schemes_of_newer_cosign_versions_verify_and_are_named() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    ed_key = generate("ed25519")
    payload = cosign.make_payload(REPO, D1)
    p384_sig = p384.sign(payload, ec.ECDSA(hashes.SHA384()))
    der = ed_key.pkcs8_der()
    ph_sig: bytes = eddsa.new(ECC.import_key(der), "rfc8032").sign(SHA512.new(payload))
    pem = p384.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    config = TrustConfig(
        (
            Attestor("p", (TrustedKey("p", load_public_key_pem(pem)),)),
            Attestor("e", (TrustedKey("e", ed_key.public),)),
        )
    )
    report = judged(evidence((payload, p384_sig), (payload, ph_sig)), config)
    assert {s.attestor: s.scheme for s in report.signatures} == {
        "p": "ecdsa-p384-sha384",
        "e": "ed25519ph",
    }


# -- payloads that are signed but unusable, and payloads that are missing ---------------------


@pytest.mark.parametrize(
    "payload",
    [
        b'{"critical":{"type":"cosign container image signature"}}',
        b'{"critical":{"type":"cosign container image signature","image":{"docker-manifest-digest":"sha256:1"}}}',
        b'{"critical":{"type":"something else","image":{"docker-manifest-digest":"'
        + D1.encode()
        + b'"}}}',
        b"not json",
        b"[]",
    ],
    ids=["no-image", "short-digest", "other-type", "not-json", "not-an-object"],
)
def test_a_trusted_signature_over_a_malformed_payload_is_signature_invalid(payload: bytes) -> None:
    report = judged(evidence(signed_bytes(DEV, payload)), trust(dev=DEV, sec=SEC))
    assert report.verified == ()
    assert reasons_by_attestor(report) == {
        "dev": Reason.SIGNATURE_INVALID,
        "sec": Reason.NOT_SIGNED_BY_ATTESTOR,
    }
    assert "unusable payload" in report.failures[0].detail


def test_a_payload_that_could_not_be_fetched_is_an_image_level_problem() -> None:
    good = signed(DEV)
    found = evidence(good)
    broken = ClassicEvidence(
        found.manifest,
        {d: DeterministicFailure(Reason.SIGNATURE_INVALID, "blob missing") for d in found.payloads},
    )
    report = judged(broken, trust(dev=DEV))
    assert report.verified == ()
    # Nothing usable is left: the attestor's reason is why, not "signed by someone else".
    assert reasons_by_attestor(report) == {
        "dev": Reason.SIGNATURE_INVALID,
        None: Reason.SIGNATURE_INVALID,
    }
    image_level = report.failures[-1]
    assert image_level.detail == "blob missing"
    assert (
        image_level.remediation
        == f"re-sign {PINNED} with a trusted key; its stored signature is corrupt"
    )


def test_a_payload_missing_from_the_evidence_never_counts() -> None:
    found = evidence(signed(DEV))
    report = judged(ClassicEvidence(found.manifest, {}), trust(dev=DEV))
    assert report.verified == ()
    assert reasons_by_attestor(report)[None] is Reason.SIGNATURE_INVALID
    assert "was not fetched" in report.failures[-1].detail


def test_a_malformed_layer_beside_a_valid_one() -> None:
    bad = {
        "mediaType": cosign.SIGNATURE_MEDIA_TYPE,
        "digest": D2,
        "size": 3,
        "annotations": {cosign.SIGNATURE_ANNOTATION: "***"},
    }
    report = judged(evidence(signed(DEV), extra=[bad]), trust(dev=DEV, sec=SEC))
    assert report.verified == ("dev",)
    assert reasons_by_attestor(report) == {
        "sec": Reason.NOT_SIGNED_BY_ATTESTOR,
        None: Reason.SIGNATURE_INVALID,
    }


def test_only_malformed_layers() -> None:
    bad = {"mediaType": cosign.SIGNATURE_MEDIA_TYPE, "digest": D2, "size": -1}
    report = judged(evidence(extra=[bad]), trust(dev=DEV))
    assert reasons_by_attestor(report) == {
        "dev": Reason.SIGNATURE_INVALID,
        None: Reason.SIGNATURE_INVALID,
    }


def keyless(found: ClassicEvidence) -> ClassicEvidence:
    layers = tuple(
        cosign.SignatureLayer(x.digest, x.size, x.signature, cosign.KeylessMaterial(b"\x30"))
        for x in found.manifest.layers
    )
    return ClassicEvidence(cosign.SignatureManifest(layers, ()), found.payloads)


def test_certificate_signatures_are_named_unsupported_when_nothing_verified() -> None:
    report = judged(keyless(evidence(signed(STRANGER))), trust(dev=DEV))
    assert reasons_by_attestor(report) == {
        "dev": Reason.NOT_SIGNED_BY_ATTESTOR,
        None: Reason.UNSUPPORTED_FORMAT,
    }
    # A certificate does not stop a configured key from verifying its own signature.
    report = judged(keyless(evidence(signed(DEV))), trust(dev=DEV))
    assert report.verified == ("dev",)
    assert report.failures == ()


# -- remediation texts name what to sign ------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "target"),
    [
        (f"{REPO}:1.0", f"{REPO}@{D1}"),
        (REPO, f"{REPO}@{D1}"),
        ("nginx", f"nginx@{D1}"),
        ("localhost:5000/app", f"localhost:5000/app@{D1}"),
        ("localhost:5000/app:v1", f"localhost:5000/app@{D1}"),
        (f"{REPO}@{D1}", f"{REPO}@{D1}"),
        (f"{REPO}:1.0@{D1}", f"{REPO}:1.0@{D1}"),
    ],
)
def test_remediation_names_the_pinned_image_and_the_attestor(image: str, target: str) -> None:
    report = judged(evidence(signed(DEV)), trust(dev=DEV, sec=SEC), image=image)
    assert report.failures[0].remediation == f"sign {target} with a sec key"


def test_failure_report_for_an_image_that_could_not_be_judged() -> None:
    failure = DeterministicFailure(Reason.IMAGE_NOT_FOUND, "not there")
    report = failure_report(IMAGE, None, failure)
    document = assert_report_v1(report, TrustConfig(()))
    assert document == {
        "version": 1,
        "image": IMAGE,
        "digest": None,
        "verified": [],
        "signatures": [],
        "failures": [
            {
                "attestor": None,
                "reason": "IMAGE_NOT_FOUND",
                "remediation": f"push {IMAGE} to its registry, or correct the reference",
                "detail": "not there",
            }
        ],
        "attestations": [],
    }
    pinned = failure_report(IMAGE, D1, DeterministicFailure(Reason.LIMIT_EXCEEDED, "too many"))
    assert (
        pinned.failures[0].remediation == f"remove surplus signatures and referrers from {PINNED}"
    )


# -- the report refuses what the contract forbids ---------------------------------------------


def test_report_v1_document() -> None:
    config = trust(dev=DEV, sec=SEC)
    document = judge(IMAGE, D1, Evidence(classic=evidence(signed(DEV))), config, now=NOW).to_json()
    assert_report_v1(Report.from_json(document), config)
    assert document == {
        "version": 1,
        "image": IMAGE,
        "digest": D1,
        "verified": ["dev"],
        "signatures": [
            {
                "attestor": "dev",
                "key": "dev-0",
                "format": "cosign-classic",
                "scheme": "ecdsa-p256-sha256",
                "signedAt": "2026-06-01T12:00:00Z",
                "timeSource": "verification-time",
            }
        ],
        "failures": [
            {
                "attestor": "sec",
                "reason": "NOT_SIGNED_BY_ATTESTOR",
                "remediation": f"sign {PINNED} with a sec key",
                "detail": "1 usable signature(s) found; none verifies under a sec key",
            }
        ],
        "attestations": [],
    }


@pytest.mark.parametrize("reason", [r for r in Reason if r.transient])
def test_a_report_refuses_transient_reasons(reason: Reason) -> None:
    with pytest.raises(ValueError, match="transient"):
        Failure(None, reason, "retry later")
    with pytest.raises(ValueError, match="transient"):
        Failure("dev", reason, "retry later")
    with pytest.raises(ValueError, match="transient"):
        DeterministicFailure(reason, "x")


@pytest.mark.parametrize("reason", [r for r in Reason if not r.transient])
def test_a_report_holds_every_deterministic_reason(reason: Reason) -> None:
    report = Report(IMAGE, D1, failures=(Failure(None, reason, "fix it"),))
    assert report.to_json()["failures"][0]["reason"] == reason.value


def test_transient_reasons_are_the_contracts() -> None:
    assert {r.value for r in Reason if r.transient} >= {
        "REGISTRY_UNAVAILABLE",
        "REGISTRY_TIMEOUT",
        "REGISTRY_RATE_LIMITED",
        "REGISTRY_AUTH_FAILED",
        "DEADLINE_EXCEEDED",
    }
    assert {r.value for r in Reason if not r.transient} == {
        "INVALID_REFERENCE",
        "IMAGE_NOT_FOUND",
        "NO_SIGNATURE",
        "NOT_SIGNED_BY_ATTESTOR",
        "SIGNATURE_INVALID",
        "DIGEST_MISMATCH",
        "LIMIT_EXCEEDED",
        "UNSUPPORTED_FORMAT",
        "KEY_REVOKED",
        "KEY_EXPIRED",
        "KEY_NOT_YET_VALID",
    }


def test_a_report_is_internally_consistent() -> None:
    fact = SignatureFact("dev", "k", "cosign-classic", "ed25519")
    with pytest.raises(ValueError, match="verified must list exactly"):
        Report(IMAGE, D1, verified=("dev",))
    with pytest.raises(ValueError, match="verified must list exactly"):
        Report(IMAGE, D1, signatures=(fact,))
    with pytest.raises(ValueError, match="cannot also have a failure"):
        Report(
            IMAGE,
            D1,
            verified=("dev",),
            signatures=(fact,),
            failures=(Failure("dev", Reason.NOT_SIGNED_BY_ATTESTOR, "sign"),),
        )


# -- the budget of signature checks -----------------------------------------------------------


BOGUS_P384 = generate("p384")


def bogus_layers(count: int, key: PrivateKey = BOGUS_P384) -> list[Signed]:
    """`count` distinct, well-formed signatures over D1 by a key nobody trusts."""
    return [signed(key, D1, f"{REPO}-{n}") for n in range(count)]


def test_a_hundred_bogus_signatures_stop_at_the_budget_of_checks() -> None:
    """3 P-384 keys x 100 signatures x 2 schemes would be 600 verifications (~0.8 s); the budget
    stops at MAX_SIGNATURE_CHECKS, and the attestors past it say so."""
    config = trust(a=generate("p384"), b=generate("p384"), c=generate("p384"))
    found = evidence(*bogus_layers(100))
    assert estimated_checks(Evidence(classic=found), config) == MAX_SIGNATURE_CHECKS

    report = classic(IMAGE, D1, found, config)

    assert report.verified == ()
    assert [(f.attestor, f.reason) for f in report.failures] == [
        ("a", Reason.NOT_SIGNED_BY_ATTESTOR),
        ("b", Reason.LIMIT_EXCEEDED),
        ("c", Reason.LIMIT_EXCEEDED),
    ]
    assert "gave up after 256 signature checks; the image carries 100 signatures" in (
        report.failures[1].detail
    )


def test_a_real_signature_within_the_budget_still_verifies() -> None:
    config = trust(dev=DEV, sec=(generate("p384"), DEV_NEXT))
    found = evidence(*bogus_layers(60), signed(DEV_NEXT), signed(DEV))
    report = classic(IMAGE, D1, found, config)
    assert report.verified == ("dev", "sec")


def test_signatures_of_another_shape_cost_nothing() -> None:
    """Ed25519 signatures are 64 raw bytes: no ECDSA key is ever tried on them."""
    config = trust(a=generate("p256"), b=generate("p384"), c=DEV)
    found = evidence(*bogus_layers(99, generate("ed25519")), signed(DEV))
    # Only DEV's P-256 signature is tried: by a (1 scheme), b (2: P-384 with SHA-384 or SHA-256), c.
    assert estimated_checks(Evidence(classic=found), config) == 4
    assert classic(IMAGE, D1, found, config).verified == ("c",)


def test_the_budget_is_deterministic() -> None:
    config = trust(a=generate("p384"), b=generate("p384"), c=generate("p384"))
    found = evidence(*bogus_layers(100))
    assert classic(IMAGE, D1, found, config) == classic(IMAGE, D1, found, config)
