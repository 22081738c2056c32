"""The keyless stack fixture: images the real cosign v3.1.3 signed keyless through a private
Fulcio and timestamp authority, judged by cosign itself, and served from 127.0.0.1."""

from __future__ import annotations

import base64
import itertools
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509

from tests.support.images import OCI_INDEX, OCI_MANIFEST, digest_of, get_manifest
from tests.support.keyless import FULCIO, TIMESTAMP_SERVER, KeylessStack
from tests.support.keyless.inspect import tag_for

pytestmark = pytest.mark.integration

IMAGES = {
    "classic-email",
    "bundle-email",
    "classic-github",
    "bundle-github",
    "attested-github",
    "attestation-only",
    "classic-attestation",
    "rogue-email",
    "no-timestamp",
    "copied",
    "wrong-identity",
    "wrong-issuer",
    "handmade",
    "backdated",
}
# Which artifact tags each image has: ".sig", ".att", and "" for the referrers-tag bundle index.
CLASSIC = {"classic-email", "classic-github", "classic-attestation", "rogue-email"}
CLASSIC |= {"no-timestamp", "copied", "wrong-identity", "wrong-issuer", "handmade", "backdated"}
BUNDLES = {"bundle-email", "bundle-github", "attested-github", "attestation-only", "rogue-email"}
BUNDLES |= {"copied", "wrong-identity", "wrong-issuer"}
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"


def test_stack_json_lists_every_image_and_the_trusted_roots(
    keyless_stack: KeylessStack, record_property: Callable[[str, object], None]
) -> None:
    record_property("signing_seconds", round(keyless_stack.signing_seconds, 1))
    assert set(keyless_stack.images) == IMAGES
    for name, image in keyless_stack.images.items():
        assert image.repository == name
        assert image.reference == f"{keyless_stack.registry}/{name}@{image.digest}"
        assert image.issuer in keyless_stack.issuers.values()
    assert keyless_stack["bundle-github"].identity == (
        "https://github.com/team/app/.github/workflows/release.yml@refs/heads/main"
    )
    assert keyless_stack["wrong-identity"].identity == "mallory@example.test"
    assert keyless_stack["wrong-issuer"].issuer == keyless_stack.issuers["other-issuer"]

    def authorities(
        path: Path,
    ) -> tuple[list[list[x509.Certificate]], list[list[x509.Certificate]]]:
        root = json.loads(path.read_text())
        assert root["mediaType"] == "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
        assert root["tlogs"] == [] and root["ctlogs"] == []
        chains = [
            [
                x509.load_der_x509_certificate(base64.b64decode(cert["rawBytes"]))
                for cert in entry["certChain"]["certificates"]
            ]
            for kind in ("certificateAuthorities", "timestampAuthorities")
            for entry in root[kind]
        ]
        return chains[:1], chains[1:]

    (trusted_ca,), (trusted_tsa,) = authorities(keyless_stack.trusted_root)
    (rogue_ca,), (rogue_tsa,) = authorities(keyless_stack.rogue_trusted_root)
    assert len(trusted_ca) == 1 and len(trusted_tsa) == 3  # ephemeral CA: root only; TSA: 3
    assert trusted_ca != rogue_ca and trusted_tsa == rogue_tsa
    for chain in (trusted_ca, trusted_tsa):
        for child, parent in itertools.pairwise(chain):  # leaf first
            assert child.issuer == parent.subject


def test_the_cosign_oracle_accepted_the_positives_and_rejected_the_negatives(
    keyless_stack: KeylessStack,
) -> None:
    oracle = {name: dict(image.oracle) for name, image in keyless_stack.images.items()}
    for name in ("classic-email", "classic-github"):
        assert oracle[name] == {"verify classic": True}, name
    for name in ("bundle-email", "bundle-github"):
        assert oracle[name] == {"verify bundle": True}, name
    assert oracle["attested-github"] == {"verify bundle": True, "verify-attestation bundle": True}
    assert oracle["attestation-only"]["verify-attestation bundle"] is True
    assert oracle["classic-attestation"]["verify classic"] is True
    assert oracle["rogue-email"] == {
        "verify bundle": False,
        "verify classic": False,
        "verify bundle with the rogue root": True,
        "verify classic with the rogue root": True,
    }
    assert oracle["copied"] == {"verify bundle": False, "verify classic": False}
    assert not any(v for k, v in oracle["wrong-identity"].items() if "alice" in k)
    assert not any(v for k, v in oracle["wrong-issuer"].items() if "email issuer" in k)
    # And every expectation recorded while signing held.
    for name, entry in keyless_stack.description["images"].items():
        for check in entry["oracle"]:
            if check["expected"] is not None:
                assert check["accepted"] == check["expected"], (name, check)


def test_the_served_registry_returns_the_signed_manifests(keyless_stack: KeylessStack) -> None:
    url = keyless_stack.url
    for name, image in keyless_stack.images.items():
        raw, media_type = get_manifest(url, name, image.digest)
        assert (digest_of(raw), media_type) == (image.digest, OCI_MANIFEST)
        if name in CLASSIC:
            raw, media_type = get_manifest(url, name, tag_for(image.digest, ".sig"))
            (layer,) = json.loads(raw)["layers"]
            assert (media_type, layer["mediaType"]) == (OCI_MANIFEST, SIMPLESIGNING), name
            assert "dev.sigstore.cosign/certificate" in layer["annotations"], name
            timestamped = "dev.sigstore.cosign/rfc3161timestamp" in layer["annotations"]
            assert timestamped == (name != "no-timestamp"), name
        if name in BUNDLES:
            raw, media_type = get_manifest(url, name, tag_for(image.digest))
            assert media_type == OCI_INDEX, name
            entries = json.loads(raw)["manifests"]
            assert entries and all(entry["artifactType"] == BUNDLE_V03 for entry in entries), name
    raw, _ = get_manifest(
        url, "classic-attestation", tag_for(keyless_stack["classic-attestation"].digest, ".att")
    )
    assert json.loads(raw)["layers"][0]["mediaType"] == "application/vnd.dsse.envelope.v1+json"


def test_nothing_of_the_signing_stack_is_left_running(keyless_stack: KeylessStack) -> None:
    assert keyless_stack.images  # the signing run is over
    left = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                executable = os.readlink(entry / "exe")
            except OSError:
                continue
            if executable in (str(FULCIO), str(TIMESTAMP_SERVER)):
                left.append(f"{entry.name}: {executable}")
    assert left == []
