"""Keyless signatures the real cosign v3.1.3 made through a private Sigstore (a local OIDC issuer,
Fulcio with an ephemeral CA, a timestamp authority; see tests/support/keyless), verified by
Signet from the registry: identities as attestors, and what an attacker would try against them.

The stack has no transparency or CT log, so its trust config says so explicitly; the signing
certificates live ten minutes, and are judged at the timestamp authority's time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from signet.formats.cosign_classic import manifest as classic
from signet.formats.cosign_classic.verify import ClassicEvidence
from signet.formats.judge import Evidence, judge
from signet.keyless.root import parse_trusted_root
from signet.model.report import Report
from signet.reasons import Reason
from signet.trust.config import load
from signet.trust.model import TrustConfigError
from tests.support import cosign
from tests.support.images import get_manifest
from tests.support.keyless import ALICE, KeylessStack
from tests.support.keyless.inspect import blob, tag_for
from tests.support.keyless.oidc import GITHUB_IDENTITY

from .keyless_helpers import REPOSITORY_URI, failure, report_for, trust_config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def config(keyless_stack: KeylessStack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trust_config(keyless_stack, tmp_path_factory.mktemp("keyless-trust"))


@pytest.mark.parametrize(
    ("image", "attestor", "subject", "format_"),
    [
        ("classic-email", "alice", ALICE, "cosign-classic"),
        ("bundle-email", "alice", ALICE, "sigstore-bundle"),
        ("classic-github", "release", GITHUB_IDENTITY, "cosign-classic"),
        ("bundle-github", "release", GITHUB_IDENTITY, "sigstore-bundle"),
    ],
)
def test_a_keyless_signature_verifies_as_its_identity(
    keyless_stack: KeylessStack, config: Path, image: str, attestor: str, subject: str, format_: str
) -> None:
    assert keyless_stack[image].oracle, "cosign was asked about it"
    assert all(keyless_stack[image].oracle.values()), "and cosign accepted it"
    report = report_for(keyless_stack, config, image)
    assert report.verified == (attestor,), report.failures
    (signature,) = report.signatures
    assert (signature.key, signature.format, signature.scheme) == (
        subject,
        format_,
        "ecdsa-p256-sha256",
    )
    facts = signature.to_json()["keyless"]
    assert facts["subject"] == subject
    assert facts["issuer"] == keyless_stack[image].issuer
    assert facts["timeSource"].startswith("timestamp-authority")
    assert facts["signedAt"] >= keyless_stack.signed_at[:19]
    assert facts["logIndex"] is None  # this Sigstore has no log
    if attestor == "release":
        assert facts["claims"]["sourceRepositoryURI"] == REPOSITORY_URI
        assert facts["claims"]["sourceRepositoryRef"] == "refs/heads/main"
        assert facts["claims"]["buildTrigger"] == "push"


def test_a_keyless_attestation_is_reported_with_its_identity(
    keyless_stack: KeylessStack, config: Path
) -> None:
    report = report_for(keyless_stack, config, "attested-github")
    assert report.verified == ("release",)
    (attestation,) = report.attestations
    assert attestation.predicate_type == "https://slsa.dev/provenance/v1"
    assert attestation.key == GITHUB_IDENTITY
    assert attestation.to_json()["keyless"]["issuer"] == keyless_stack.issuers["github"]


def test_a_classic_keyless_attestation_is_reported_with_its_identity(
    keyless_stack: KeylessStack, config: Path
) -> None:
    """cosign's classic `.att` layer: its RFC 3161 timestamp covers the raw DSSE signature (which
    cosign's own classic reader hashes wrongly, so `cosign verify-attestation` refuses it)."""
    report = report_for(keyless_stack, config, "classic-attestation")
    assert report.verified == ("release",)
    (attestation,) = report.attestations
    assert (attestation.format, attestation.key) == ("cosign-classic", GITHUB_IDENTITY)
    assert attestation.predicate_type == "https://slsa.dev/provenance/v1"
    facts = attestation.to_json()["keyless"]
    assert facts["timeSource"].startswith("timestamp-authority")


def test_an_attestation_alone_is_not_a_signature(keyless_stack: KeylessStack, config: Path) -> None:
    report = report_for(keyless_stack, config, "attestation-only")
    assert report.verified == ()
    assert failure(report, "release")[0] is Reason.NO_SIGNATURE
    assert [a.attestor for a in report.attestations] == ["release"]


def test_a_certificate_from_a_fulcio_the_trusted_root_does_not_list_is_refused(
    keyless_stack: KeylessStack, config: Path
) -> None:
    report = report_for(keyless_stack, config, "rogue-email")
    assert report.verified == ()
    reason, detail = failure(report, "alice")
    assert reason is Reason.NOT_SIGNED_BY_ATTESTOR
    assert "not issued by a certificate authority of the trusted root" in detail
    # With the rogue root trusted instead, the same evidence verifies: the CA was the reason.
    rogue = trust_config(
        keyless_stack, config.parent / "rogue", root=keyless_stack.rogue_trusted_root
    )
    assert report_for(keyless_stack, rogue, "rogue-email").verified == ("alice",)


def test_another_identity_of_the_trusted_fulcio_is_not_the_attestor(
    keyless_stack: KeylessStack, config: Path
) -> None:
    report = report_for(keyless_stack, config, "wrong-identity")
    reason, detail = failure(report, "alice")
    assert reason is Reason.NOT_SIGNED_BY_ATTESTOR
    assert "mallory@example.test" in detail and "not an identity of alice" in detail
    (found,) = [f for f in report.failures if f.attestor == "alice"]
    assert found.remediation == (
        f"sign {keyless_stack['wrong-identity'].reference} keyless as an identity of alice, "
        "or add the signer's identity to alice"
    )


def test_the_same_subject_from_another_issuer_is_not_the_attestor(
    keyless_stack: KeylessStack, config: Path
) -> None:
    report = report_for(keyless_stack, config, "wrong-issuer")
    reason, detail = failure(report, "alice")
    assert reason is Reason.NOT_SIGNED_BY_ATTESTOR
    assert keyless_stack.issuers["other-issuer"] in detail


def test_signatures_copied_from_another_image_are_digest_mismatch(
    keyless_stack: KeylessStack, config: Path
) -> None:
    report = report_for(keyless_stack, config, "copied")
    assert report.verified == ()
    assert failure(report, "alice")[0] is Reason.DIGEST_MISMATCH


def test_a_signature_without_any_trusted_time_is_refused(
    keyless_stack: KeylessStack, config: Path
) -> None:
    """No timestamp and no log: the ten-minute certificate cannot be judged at signing time
    (cosign judges it at the current time instead, and accepts it for ten minutes)."""
    report = report_for(keyless_stack, config, "no-timestamp")
    reason, detail = failure(report, "alice")
    assert reason is Reason.SIGNATURE_INVALID
    assert "no trusted signing time" in detail


@pytest.mark.parametrize(
    ("identity", "verifies"),
    [
        ({"subjectRegExp": r"[a-z]+@example\.test"}, True),
        ({"subjectRegExp": r"alice@example"}, False),  # anchored: a prefix is not a match
        ({"subjectRegExp": r"example\.test"}, False),
        ({"subject": "ALICE@example.test"}, False),
        ({"subject": ALICE + " "}, False),
        ({"issuerRegExp": r"http://127\.0\.0\.1:[0-9]+/email"}, True),
        ({"issuerRegExp": r"http://127\.0\.0\.1:[0-9]+/"}, False),  # anchored too
        ({"issuerRegExp": r"http://127\.0\.0\.1:[0-9]+/other-issuer"}, False),
    ],
)
def test_identity_matching_is_exact_or_anchored(
    keyless_stack: KeylessStack, tmp_path: Path, identity: dict[str, str], verifies: bool
) -> None:
    alice = {"issuer": keyless_stack.issuers["email"], **identity}
    if "issuerRegExp" in identity:
        alice = {"subject": ALICE, **identity}
    config = trust_config(keyless_stack, tmp_path, alice=alice)
    report = report_for(keyless_stack, config, "bundle-email")
    assert (report.verified == ("alice",)) is verifies, report.failures


@pytest.mark.parametrize(
    "claims",
    [
        {"sourceRepositoryURI": "https://github.com/team/other"},
        {"buildTrigger": "workflow_dispatch"},
        {"sourceRepositoryRef": "refs/heads/main-evil"},
    ],
)
def test_a_ci_claim_that_differs_is_not_the_attestor(
    keyless_stack: KeylessStack, tmp_path: Path, claims: dict[str, str]
) -> None:
    release = {
        "issuer": keyless_stack.issuers["github"],
        "subject": GITHUB_IDENTITY,
        "claims": claims,
    }
    config = trust_config(keyless_stack, tmp_path, release=release)
    for image in ("bundle-github", "classic-github"):
        report = report_for(keyless_stack, config, image)
        assert failure(report, "release")[0] is Reason.NOT_SIGNED_BY_ATTESTOR


def test_a_private_sigstore_must_be_configured_explicitly(
    keyless_stack: KeylessStack, tmp_path: Path
) -> None:
    """The stack's trusted root lists no log: without `transparencyLog: false` (and
    `certificateTransparency: false`) the config is refused, never silently relaxed."""
    config = trust_config(keyless_stack, tmp_path, private=False)
    with pytest.raises(TrustConfigError, match="transparencyLog: false"):
        load(config)


def test_keyless_signatures_do_not_count_for_key_attestors(
    keyless_stack: KeylessStack, tmp_path: Path
) -> None:
    keys = cosign.generate_key_pair("v3.1.3", tmp_path / "keys")
    config = tmp_path / "keys.yaml"
    config.write_text(
        json.dumps(
            {
                "version": 1,
                "attestors": [{"name": "ci", "keys": [{"file": str(keys.public)}]}],
                "registries": [{"host": keyless_stack.registry, "insecure": True}],
            }
        )
    )
    for image in ("bundle-email", "classic-email"):
        report = report_for(keyless_stack, config, image)
        assert report.verified == ()
        assert Reason.UNSUPPORTED_FORMAT in report.reasons


# -- real cosign output, edited as an attacker would ------------------------------------------


def classic_layer(stack: KeylessStack, image: str) -> tuple[dict[str, Any], bytes]:
    """The one `.sig` layer of `image` (its descriptor) and its payload, from the registry."""
    raw, _ = get_manifest(stack.url, stack[image].repository, tag_for(stack[image].digest, ".sig"))
    (layer,) = json.loads(raw)["layers"]
    return layer, blob(stack.url, stack[image].repository, layer["digest"])


def judged_classic(
    stack: KeylessStack, config: Path, image: str, layer: dict[str, Any], payload: bytes
) -> Report:
    manifest = classic.parse_signature_manifest(classic.signature_manifest({}, [layer]))
    evidence = Evidence(classic=ClassicEvidence(manifest, {layer["digest"]: payload}))
    return judge(stack[image].reference, stack[image].digest, evidence, load(config))


TIMESTAMP = "dev.sigstore.cosign/rfc3161timestamp"
CERTIFICATE = "dev.sigstore.cosign/certificate"
CHAIN = "dev.sigstore.cosign/chain"


def test_the_untouched_layer_verifies_here_too(keyless_stack: KeylessStack, config: Path) -> None:
    layer, payload = classic_layer(keyless_stack, "classic-email")
    assert judged_classic(keyless_stack, config, "classic-email", layer, payload).verified == (
        "alice",
    )


@pytest.mark.parametrize(
    ("image", "donor", "annotation", "fragment"),
    [
        # A valid timestamp, from the same TSA, of another signature: what someone holding an
        # expired certificate's key would attach to a new signature.
        ("classic-email", "classic-github", TIMESTAMP, "covers another signature"),
        # alice's certificate put on mallory's signature: the signature is not under its key.
        ("wrong-identity", "classic-email", CERTIFICATE, "does not verify under the signing"),
    ],
    ids=["another-signatures-timestamp", "another-identitys-certificate"],
)
def test_keyless_material_taken_from_another_signature_does_not_vouch_for_this_one(
    keyless_stack: KeylessStack,
    config: Path,
    image: str,
    donor: str,
    annotation: str,
    fragment: str,
) -> None:
    layer, payload = classic_layer(keyless_stack, image)
    other, _ = classic_layer(keyless_stack, donor)
    layer["annotations"][annotation] = other["annotations"][annotation]
    report = judged_classic(keyless_stack, config, image, layer, payload)
    reason, detail = failure(report, "alice")
    assert reason is Reason.SIGNATURE_INVALID
    assert fragment in detail


def test_a_chain_annotation_naming_the_rogue_ca_does_not_make_it_trusted(
    keyless_stack: KeylessStack, config: Path
) -> None:
    rogue_root = parse_trusted_root(keyless_stack.rogue_trusted_root.read_bytes())
    rogue_ca = rogue_root.certificate_authorities[0].chain[-1]
    layer, payload = classic_layer(keyless_stack, "rogue-email")
    layer["annotations"][CHAIN] = rogue_ca.public_bytes(serialization.Encoding.PEM).decode()
    report = judged_classic(keyless_stack, config, "rogue-email", layer, payload)
    assert failure(report, "alice")[0] is Reason.NOT_SIGNED_BY_ATTESTOR


def test_a_timestamp_removed_leaves_no_trusted_time(
    keyless_stack: KeylessStack, config: Path
) -> None:
    layer, payload = classic_layer(keyless_stack, "classic-email")
    del layer["annotations"][TIMESTAMP]
    report = judged_classic(keyless_stack, config, "classic-email", layer, payload)
    assert failure(report, "alice")[0] is Reason.SIGNATURE_INVALID


def test_a_trusted_root_made_by_cosign_trusted_root_create_works(
    keyless_stack: KeylessStack, tmp_path: Path
) -> None:
    """What the README tells an admin of a private Sigstore to do: build the root with cosign
    from the Fulcio and TSA chains."""
    root = parse_trusted_root(keyless_stack.trusted_root.read_bytes())
    pems = {}
    for name, authorities in (
        ("fulcio", root.certificate_authorities),
        ("tsa", root.timestamp_authorities),
    ):
        path = tmp_path / f"{name}.pem"
        path.write_bytes(
            b"".join(c.public_bytes(serialization.Encoding.PEM) for c in authorities[0].chain)
        )
        pems[name] = path
    made = tmp_path / "made_root.json"
    cosign.trusted_root_create("v3.1.3", pems["fulcio"], pems["tsa"], made)
    config = trust_config(keyless_stack, tmp_path / "trust", root=made)
    for image in ("bundle-email", "classic-email"):
        assert report_for(keyless_stack, config, image).verified == ("alice",)
