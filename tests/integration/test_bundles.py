"""Sigstore bundles written by the real cosign (v2.6.5, v3.1.3), as OCI 1.1 referrers, read by
Signet from a registry with the referrers API and from Debian's docker-registry (the tag schema)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signet.model.report import Report
from signet.reasons import Reason
from tests.support import cosign
from tests.support.images import digest_of, get_manifest, push_image, put_manifest
from tests.support.registry import Registry

from .helpers import check, run_signet, write_trust

pytestmark = pytest.mark.integration

# Both versions sign bundles with the same schemes (observed: see tests/support/cosign.py).
SCHEMES = {
    "p256": "ecdsa-p256-sha256",
    "p384": "ecdsa-p384-sha384",
    "p521": "ecdsa-p521-sha512",
    "ed25519": "ed25519ph",
    "rsa2048": "rsa-2048-pkcs1v15-sha256",
    "rsa4096": "rsa-4096-pkcs1v15-sha256",
}
BUILDER = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/builder.yml"
SOURCE = "https://github.com/example/app"
COMMIT = "a" * 40


@pytest.fixture(params=["referrers-api", "tag-schema"])
def any_registry(
    request: pytest.FixtureRequest, registry: Registry, referrers_registry: Registry
) -> Registry:
    return referrers_registry if request.param == "referrers-api" else registry


def keys_for(tmp_path: Path, key_type: str) -> cosign.KeyPair:
    if key_type == "p256":
        return cosign.generate_key_pair("v3.1.3", tmp_path / "keys")
    return cosign.import_key_pair("v3.1.3", tmp_path / "keys", key_type)


@pytest.mark.parametrize("key_type", list(SCHEMES))
@pytest.mark.parametrize("version", cosign.BUNDLE_VERSIONS)
def test_signet_verifies_the_bundles_cosign_writes(
    any_registry: Registry, tmp_path: Path, version: str, key_type: str
) -> None:
    registry = any_registry
    repo = f"bundles/{version.replace('.', '-')}-{key_type}"
    digest = push_image(registry.url, repo, "v1", seed=f"bundle-{version}-{key_type}")
    keys = keys_for(tmp_path, key_type)
    cosign.sign_bundle(version, keys.private, f"{registry.host}/{repo}@{digest}")
    config = write_trust(tmp_path, {"ci": [keys.public]}, [registry.host])

    (outcome,) = check(config, f"{registry.host}/{repo}:v1")

    assert isinstance(outcome, Report), outcome
    assert outcome.digest == digest
    assert outcome.verified == ("ci",), outcome.failures
    (signature,) = outcome.signatures
    assert (signature.format, signature.scheme) == ("sigstore-bundle", SCHEMES[key_type])


def test_another_key_does_not_verify_a_bundle(registry: Registry, tmp_path: Path) -> None:
    digest = push_image(registry.url, "bundles/stranger", "v1", seed="bundle-stranger")
    signer = cosign.generate_key_pair("v3.1.3", tmp_path / "signer")
    other = cosign.generate_key_pair("v3.1.3", tmp_path / "other")
    cosign.sign_bundle("v3.1.3", signer.private, f"{registry.host}/bundles/stranger@{digest}")
    config = write_trust(tmp_path, {"ci": [other.public]}, [registry.host])

    (outcome,) = check(config, f"{registry.host}/bundles/stranger:v1")

    assert isinstance(outcome, Report)
    assert outcome.verified == ()
    assert outcome.reasons == (Reason.NOT_SIGNED_BY_ATTESTOR,)


@pytest.mark.parametrize("version", ["v2.5.0", *cosign.BUNDLE_VERSIONS])
def test_an_image_with_only_an_attestation_is_not_signed(
    any_registry: Registry, tmp_path: Path, version: str
) -> None:
    """cosign v2.6.5 and v3.1.3 `verify` accept this image as signed; an attestation is not a
    signature. Its provenance is reported as an attestation, with its facts."""
    registry = any_registry
    repo = f"bundles/attested-only-{version.replace('.', '-')}"
    digest = push_image(registry.url, repo, "v1", seed=f"attested-{version}")
    keys = cosign.generate_key_pair("v3.1.3", tmp_path / "keys")
    predicate = cosign.write_predicate(
        tmp_path,
        "provenance.json",
        cosign.slsa_predicate("1", BUILDER, SOURCE, "refs/heads/main", COMMIT),
    )
    ref = f"{registry.host}/{repo}@{digest}"
    cosign.attest(version, keys.private, ref, predicate, "slsaprovenance1", bundle=True)
    config = write_trust(tmp_path, {"ci": [keys.public]}, [registry.host])

    (outcome,) = check(config, f"{registry.host}/{repo}:v1")

    assert isinstance(outcome, Report)
    assert outcome.verified == ()
    assert outcome.reasons == (Reason.NO_SIGNATURE,)
    assert "an attestation is not a signature" in outcome.failures[0].detail
    (attestation,) = outcome.attestations
    assert attestation.predicate_type == "https://slsa.dev/provenance/v1"
    assert dict(attestation.facts) == {
        "builderId": BUILDER,
        "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
        "sourceRepository": SOURCE,
        "sourceRef": "refs/heads/main",
        "sourceDigest": f"gitCommit:{COMMIT}",
        "configEntryPoint": ".github/workflows/release.yml",
    }


def test_a_referrers_index_copied_to_another_image_is_a_digest_mismatch(
    registry: Registry, tmp_path: Path
) -> None:
    """The `sha256-<hex>` index of a signed image, copied under an unsigned image's referrers
    tag: its referrer names the signed image as subject, so it is never counted (nor fetched
    further)."""
    signed = push_image(registry.url, "bundles/copied", "signed", seed="copied-signed")
    unsigned = push_image(registry.url, "bundles/copied", "unsigned", seed="copied-unsigned")
    keys = cosign.generate_key_pair("v3.1.3", tmp_path / "keys")
    cosign.sign_bundle("v3.1.3", keys.private, f"{registry.host}/bundles/copied@{signed}")
    index, media_type = get_manifest(registry.url, "bundles/copied", signed.replace(":", "-"))
    put_manifest(registry.url, "bundles/copied", unsigned.replace(":", "-"), index, media_type)
    config = write_trust(tmp_path, {"ci": [keys.public]}, [registry.host])

    signed_outcome, copied = check(
        config, f"{registry.host}/bundles/copied:signed", f"{registry.host}/bundles/copied:unsigned"
    )

    assert isinstance(signed_outcome, Report) and signed_outcome.verified == ("ci",)
    assert isinstance(copied, Report)
    assert copied.verified == ()
    assert copied.reasons == (Reason.DIGEST_MISMATCH,)
    assert f"is about {signed}" in copied.failures[0].detail


def test_a_bundle_whose_subject_was_rewritten_is_a_digest_mismatch(
    registry: Registry, tmp_path: Path
) -> None:
    """The referrer manifest re-pushed with the unsigned image as its subject: the signed
    statement inside still names the signed image."""
    repo = "bundles/rewritten"
    signed = push_image(registry.url, repo, "signed", seed="rewritten-signed")
    unsigned = push_image(registry.url, repo, "unsigned", seed="rewritten-unsigned")
    keys = cosign.generate_key_pair("v3.1.3", tmp_path / "keys")
    cosign.sign_bundle("v3.1.3", keys.private, f"{registry.host}/{repo}@{signed}")
    index_raw, index_type = get_manifest(registry.url, repo, signed.replace(":", "-"))
    index = json.loads(index_raw)
    referrer_raw, referrer_type = get_manifest(registry.url, repo, index["manifests"][0]["digest"])
    referrer = json.loads(referrer_raw)
    referrer["subject"]["digest"] = unsigned
    moved = json.dumps(referrer).encode()
    put_manifest(registry.url, repo, digest_of(moved), moved, referrer_type)
    index["manifests"][0].update(digest=digest_of(moved), size=len(moved))
    put_manifest(
        registry.url, repo, unsigned.replace(":", "-"), json.dumps(index).encode(), index_type
    )
    config = write_trust(tmp_path, {"ci": [keys.public]}, [registry.host])

    (outcome,) = check(config, f"{registry.host}/{repo}:unsigned")

    assert isinstance(outcome, Report)
    assert outcome.verified == ()
    assert outcome.reasons == (Reason.DIGEST_MISMATCH,)
    assert f"names {signed}, not {unsigned}" in outcome.failures[0].detail


@pytest.mark.parametrize("version", ["v2.5.0", "v3.1.3"])
def test_classic_attestations_are_reported_and_never_count_as_signatures(
    registry: Registry, tmp_path: Path, version: str
) -> None:
    """`cosign attest` in the classic format (`.att` tag, in-toto v0.1, SLSA v0.2); the image
    is also signed, by bundle, so the report holds both."""
    repo = f"bundles/classic-att-{version.replace('.', '-')}"
    digest = push_image(registry.url, repo, "v1", seed=f"classic-att-{version}")
    keys = cosign.generate_key_pair("v3.1.3", tmp_path / "keys")
    predicate = cosign.write_predicate(
        tmp_path,
        "provenance.json",
        cosign.slsa_predicate("0.2", BUILDER, SOURCE, "refs/tags/v1.0", COMMIT),
    )
    ref = f"{registry.host}/{repo}@{digest}"
    cosign.attest(version, keys.private, ref, predicate, "slsaprovenance", bundle=False)
    config = write_trust(tmp_path, {"ci": [keys.public]}, [registry.host])

    (unsigned,) = check(config, f"{registry.host}/{repo}:v1")
    cosign.sign_bundle("v3.1.3", keys.private, ref)
    (signed,) = check(config, f"{registry.host}/{repo}:v1")

    assert isinstance(unsigned, Report)
    assert unsigned.verified == ()
    assert unsigned.reasons == (Reason.NO_SIGNATURE,)
    assert isinstance(signed, Report)
    assert signed.verified == ("ci",)
    for report in (unsigned, signed):
        (attestation,) = report.attestations
        assert (attestation.format, attestation.predicate_type) == (
            "cosign-classic",
            "https://slsa.dev/provenance/v0.2",
        )
        facts = dict(attestation.facts)
        assert facts["builderId"] == BUILDER
        assert (facts["sourceRepository"], facts["sourceRef"]) == (SOURCE, "refs/tags/v1.0")
        assert facts["sourceDigest"] == f"sha1:{COMMIT}"


@pytest.mark.parametrize("key_type", ["p256", "p384", "p521", "ed25519", "rsa2048"])
@pytest.mark.parametrize("version", cosign.BUNDLE_VERSIONS)
def test_cosign_verifies_the_bundles_signet_writes(
    any_registry: Registry, tmp_path: Path, version: str, key_type: str
) -> None:
    """`signet sign` writes cosign v3's default shape; the real cosign accepts it, from a
    registry with the referrers API and from one where the fallback index is kept."""
    registry = any_registry
    repo = f"signet-bundles/{version.replace('.', '-')}-{key_type}"
    digest = push_image(registry.url, repo, "v1", seed=f"signet-bundle-{version}-{key_type}")
    prefix = tmp_path / "signet"
    run_signet("keys", "generate", "--type", key_type, "--output-key-prefix", str(prefix))
    signed = run_signet(
        "sign", f"{registry.host}/{repo}:v1", "--key", f"{prefix}.key", "--insecure-registry"
    )
    assert json.loads(signed.stdout)["format"] == "sigstore-bundle"

    accepted = cosign.verify_bundle(
        version, Path(f"{prefix}.pub"), f"{registry.host}/{repo}@{digest}"
    )

    assert accepted.returncode == 0, accepted.stderr
    assert digest in accepted.stdout
    config = write_trust(tmp_path, {"ci": [Path(f"{prefix}.pub")]}, [registry.host])
    (outcome,) = check(config, f"{registry.host}/{repo}:v1")
    assert isinstance(outcome, Report) and outcome.verified == ("ci",)
    assert outcome.signatures[0].format == "sigstore-bundle"
