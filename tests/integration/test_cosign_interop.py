"""Signet and the real cosign CLI, both ways, on a real registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from signet.model.report import Report
from tests.support import cosign
from tests.support.images import push_image, push_index
from tests.support.registry import Registry

from .helpers import check, run_signet, write_trust

pytestmark = pytest.mark.integration

# What each cosign version signs with, per key type (see shared/reference/cosign-observed.md).
SCHEMES = {
    "v2.5.0": {
        "p256": "ecdsa-p256-sha256",
        "p384": "ecdsa-p384-sha256",
        "p521": "ecdsa-p521-sha256",
        "ed25519": "ed25519",
        "rsa2048": "rsa-2048-pkcs1v15-sha256",
        "rsa4096": "rsa-4096-pkcs1v15-sha256",
    },
    "v3.1.3": {
        "p256": "ecdsa-p256-sha256",
        "p384": "ecdsa-p384-sha384",
        "p521": "ecdsa-p521-sha512",
        "ed25519": "ed25519ph",
        "rsa2048": "rsa-2048-pkcs1v15-sha256",
        "rsa4096": "rsa-4096-pkcs1v15-sha256",
    },
}
CASES = [(version, key_type) for version, schemes in SCHEMES.items() for key_type in schemes]


@pytest.mark.parametrize(("version", "key_type"), CASES)
def test_signet_verifies_what_cosign_signs(
    registry: Registry, tmp_path: Path, version: str, key_type: str
) -> None:
    repo = f"interop/{version.replace('.', '-')}-{key_type}"
    digest = push_image(registry.url, repo, "v1", seed=f"{version}-{key_type}")
    keys = cosign.import_key_pair(version, tmp_path, key_type)
    cosign.sign(version, keys.private, f"{registry.host}/{repo}@{digest}")
    config = write_trust(tmp_path, {"ci": [keys.public]}, [registry.host])

    (outcome,) = check(config, f"{registry.host}/{repo}:v1")

    assert isinstance(outcome, Report), outcome
    assert outcome.digest == digest
    assert outcome.verified == ("ci",)
    assert outcome.signatures[0].scheme == SCHEMES[version][key_type]


def test_generated_p256_key_pair(registry: Registry, tmp_path: Path) -> None:
    digest = push_image(registry.url, "interop/generated", "v1", seed="generated")
    keys = cosign.generate_key_pair("v3.1.3", tmp_path)
    cosign.sign("v3.1.3", keys.private, f"{registry.host}/interop/generated@{digest}")
    config = write_trust(tmp_path, {"ci": [keys.public]}, [registry.host])
    (outcome,) = check(config, f"{registry.host}/interop/generated:v1")
    assert isinstance(outcome, Report)
    assert outcome.verified == ("ci",)


@pytest.mark.parametrize("key_type", ["p256", "p384", "p521", "ed25519", "rsa2048"])
@pytest.mark.parametrize("version", list(SCHEMES))
def test_cosign_verifies_what_signet_signs(
    registry: Registry, tmp_path: Path, version: str, key_type: str
) -> None:
    repo = f"signet-signed/{version.replace('.', '-')}-{key_type}"
    digest = push_image(registry.url, repo, "v1", seed=f"signet-{version}-{key_type}")
    prefix = tmp_path / "signet"
    run_signet("keys", "generate", "--type", key_type, "--output-key-prefix", str(prefix))
    image = f"{registry.host}/{repo}:v1"
    run_signet(
        "sign", image, "--key", f"{prefix}.key", "--insecure-registry", "--format", "classic"
    )

    accepted = cosign.verify(version, Path(f"{prefix}.pub"), f"{registry.host}/{repo}@{digest}")

    assert accepted.returncode == 0, accepted.stderr
    assert digest in accepted.stdout


def test_cosign_signs_with_a_signet_generated_key(registry: Registry, tmp_path: Path) -> None:
    digest = push_image(registry.url, "interop/signet-key", "v1", seed="signet-key")
    prefix = tmp_path / "signet"
    run_signet("keys", "generate", "--type", "p384", "--output-key-prefix", str(prefix))
    cosign.sign("v3.1.3", Path(f"{prefix}.key"), f"{registry.host}/interop/signet-key@{digest}")
    config = write_trust(tmp_path, {"ci": [Path(f"{prefix}.pub")]}, [registry.host])
    (outcome,) = check(config, f"{registry.host}/interop/signet-key:v1")
    assert isinstance(outcome, Report)
    assert outcome.signatures[0].scheme == "ecdsa-p384-sha384"


def test_multi_arch_tag_resolves_to_the_signed_index(registry: Registry, tmp_path: Path) -> None:
    index, children = push_index(registry.url, "interop/multiarch", "v1", seed="multiarch")
    keys = cosign.generate_key_pair("v3.1.3", tmp_path)
    cosign.sign("v3.1.3", keys.private, f"{registry.host}/interop/multiarch@{index}")
    config = write_trust(tmp_path, {"ci": [keys.public]}, [registry.host])

    by_tag, child = check(
        config,
        f"{registry.host}/interop/multiarch:v1",
        f"{registry.host}/interop/multiarch@{children[0]}",
    )

    assert isinstance(by_tag, Report) and by_tag.digest == index
    assert by_tag.verified == ("ci",)
    # cosign signs the index only (no --recursive): a child pinned by digest is not signed.
    assert isinstance(child, Report) and child.verified == ()
