"""Every way an image must fail, against a real registry holding real cosign signatures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signet.formats.cosign_classic import manifest as fmt
from signet.model.report import Report
from signet.reasons import Reason, TransientFailure
from tests.support import cosign
from tests.support.images import get_manifest, push_image, put_blob, put_manifest
from tests.support.registry import Registry

from .helpers import check, write_trust

pytestmark = pytest.mark.integration


@pytest.fixture
def signed(
    registry: Registry, tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[str, str, Path]:
    """A fresh repository whose `:v1` the real cosign signed: (repo, digest, trust config)."""
    repo = f"negative/{request.node.name.lower().replace('_', '-')[:60]}"
    digest = push_image(registry.url, repo, "v1", seed=repo)
    keys = cosign.generate_key_pair("v3.1.3", tmp_path / "keys")
    cosign.sign("v3.1.3", keys.private, f"{registry.host}/{repo}@{digest}")
    return repo, digest, write_trust(tmp_path, {"ci": [keys.public]}, [registry.host])


def report_for(config: Path, image: str) -> Report:
    (outcome,) = check(config, image)
    assert isinstance(outcome, Report), outcome
    return outcome


def reasons(report: Report, attestor: str | None = "ci") -> list[Reason]:
    return [f.reason for f in report.failures if f.attestor == attestor]


def test_the_signed_image_verifies(registry: Registry, signed: tuple[str, str, Path]) -> None:
    repo, _, config = signed
    assert report_for(config, f"{registry.host}/{repo}:v1").verified == ("ci",)


def test_unsigned(registry: Registry, signed: tuple[str, str, Path]) -> None:
    repo, _, config = signed
    push_image(registry.url, repo, "unsigned", seed=repo + "-unsigned")
    report = report_for(config, f"{registry.host}/{repo}:unsigned")
    assert report.verified == ()
    assert reasons(report) == [Reason.NO_SIGNATURE]


def test_unknown_key(registry: Registry, signed: tuple[str, str, Path], tmp_path: Path) -> None:
    repo, _, _ = signed
    stranger = cosign.generate_key_pair("v3.1.3", tmp_path / "stranger")
    config = write_trust(tmp_path / "other", {"ci": [stranger.public]}, [registry.host])
    report = report_for(config, f"{registry.host}/{repo}:v1")
    assert report.verified == ()
    assert reasons(report) == [Reason.NOT_SIGNED_BY_ATTESTOR]


def test_signature_copied_from_another_image(
    registry: Registry, signed: tuple[str, str, Path]
) -> None:
    repo, digest, config = signed
    victim = push_image(registry.url, repo, "unsigned", seed=repo + "-victim")
    raw, media_type = get_manifest(registry.url, repo, fmt.signature_tag(digest))
    put_manifest(registry.url, repo, fmt.signature_tag(victim), raw, media_type)

    report = report_for(config, f"{registry.host}/{repo}:unsigned")

    assert report.digest == victim
    assert report.verified == ()
    assert reasons(report) == [Reason.DIGEST_MISMATCH]


def test_tag_moved_after_signing(registry: Registry, signed: tuple[str, str, Path]) -> None:
    repo, digest, config = signed
    moved = push_image(registry.url, repo, "v1", seed=repo + "-moved")  # same tag, new content
    report = report_for(config, f"{registry.host}/{repo}:v1")
    assert report.digest == moved != digest
    assert report.verified == ()
    assert reasons(report) == [Reason.NO_SIGNATURE]


def _signature_manifest(registry: Registry, repo: str, digest: str) -> dict:  # type: ignore[type-arg]
    raw, _ = get_manifest(registry.url, repo, fmt.signature_tag(digest))
    manifest: dict = json.loads(raw)  # type: ignore[type-arg]
    return manifest


def _replace_signature_manifest(registry: Registry, repo: str, digest: str, manifest: dict) -> None:  # type: ignore[type-arg]
    raw = json.dumps(manifest).encode()
    put_manifest(registry.url, repo, fmt.signature_tag(digest), raw, fmt.OCI_MANIFEST)


def test_tampered_payload(registry: Registry, signed: tuple[str, str, Path]) -> None:
    repo, digest, config = signed
    manifest = _signature_manifest(registry, repo, digest)
    layer = manifest["layers"][0]
    payload = json.loads(fmt.make_payload(f"{registry.host}/{repo}", digest))
    payload["optional"] = {"approved": "yes"}  # the signed bytes no longer match the signature
    tampered = json.dumps(payload).encode()
    layer["digest"], layer["size"] = put_blob(registry.url, repo, tampered), len(tampered)
    _replace_signature_manifest(registry, repo, digest, manifest)

    report = report_for(config, f"{registry.host}/{repo}:v1")

    assert report.verified == ()
    assert reasons(report) == [Reason.NOT_SIGNED_BY_ATTESTOR]


def test_payload_swapped_under_its_descriptor(
    registry: Registry, signed: tuple[str, str, Path]
) -> None:
    """The registry serves other bytes for the payload's digest: caught by the digest check."""
    repo, digest, config = signed
    manifest = _signature_manifest(registry, repo, digest)
    other = put_blob(registry.url, repo, b'{"critical":{}}')
    manifest["layers"][0]["digest"] = other  # size no longer matches either
    _replace_signature_manifest(registry, repo, digest, manifest)
    report = report_for(config, f"{registry.host}/{repo}:v1")
    assert report.verified == ()


def test_duplicate_and_surplus_layers(registry: Registry, signed: tuple[str, str, Path]) -> None:
    repo, digest, config = signed
    manifest = _signature_manifest(registry, repo, digest)
    original = manifest["layers"][0]
    junk = put_blob(registry.url, repo, b"not a signature")
    surplus = {"mediaType": "application/octet-stream", "digest": junk, "size": 15}
    manifest["layers"] = [original, original, surplus, original]
    _replace_signature_manifest(registry, repo, digest, manifest)

    report = report_for(config, f"{registry.host}/{repo}:v1")

    assert report.verified == ("ci",)
    assert len(report.signatures) == 1


def test_over_the_signature_cap(registry: Registry, signed: tuple[str, str, Path]) -> None:
    repo, digest, config = signed
    manifest = _signature_manifest(registry, repo, digest)
    original = manifest["layers"][0]
    layers = [original]
    for i in range(fmt.MAX_SIGNATURES):
        layers.append(
            {**original, "annotations": {fmt.SIGNATURE_ANNOTATION: f"c2lnbmF0dXJl{i:04d}"}}
        )
    manifest["layers"] = layers
    _replace_signature_manifest(registry, repo, digest, manifest)

    report = report_for(config, f"{registry.host}/{repo}:v1")

    assert report.verified == ()
    assert Reason.LIMIT_EXCEEDED in reasons(report, None)


def test_image_not_found(registry: Registry, signed: tuple[str, str, Path]) -> None:
    repo, _, config = signed
    report = report_for(config, f"{registry.host}/{repo}:no-such-tag")
    assert reasons(report, None) == [Reason.IMAGE_NOT_FOUND]


def test_invalid_reference(signed: tuple[str, str, Path]) -> None:
    _, _, config = signed
    report = report_for(config, "Not A Reference")
    assert report.digest is None
    assert reasons(report, None) == [Reason.INVALID_REFERENCE]


def test_registry_down_is_transient(tmp_path: Path, signed: tuple[str, str, Path]) -> None:
    _, _, config = signed
    (outcome,) = check(config, "127.0.0.1:9/any/image:v1")
    assert isinstance(outcome, TransientFailure)
    assert outcome.reason is Reason.REGISTRY_UNAVAILABLE
