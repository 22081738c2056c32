"""Keys in a real HashiCorp Vault's Transit engine (`vault server -dev -dev-tls`): what the real
cosign signs with `--key hashivault://…` verifies in Signet with the public keys read from Vault;
what `signet sign --key hashivault://…` signs verifies in cosign; rotation and retirement of
versions; a Vault outage (the keys read last stay in force, revocations still apply); and the
errors a person meets."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from signet.model.report import Report
from signet.trust.config import load
from signet.trust.model import TrustConfigError
from signet.trust.store import TrustStore
from tests.support import cosign
from tests.support.images import push_image
from tests.support.provider import Provider, run_provider
from tests.support.registry import Registry
from tests.support.vault import Vault, run_vault

from .helpers import check, report_of, signet_process

pytestmark = pytest.mark.integration

COSIGN = "v3.1.3"


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vault]:
    with run_vault(tmp_path_factory.mktemp("vault")) as running:
        yield running


def trust_file(directory: Path, vault: Vault, registry: Registry, *keys: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    token = directory / "vault-token"
    token.write_text(vault.token + "\n")
    shutil.copy(vault.ca, directory / "vault-ca.pem")  # as mounted (the dev server removes its own)
    entries = "".join(f"      - kms: hashivault://{key}\n" for key in keys)
    path = directory / "trust.yaml"
    path.write_text(
        "version: 1\n"
        "kms:\n  hashivault:\n"
        f"    address: {vault.address}\n    token_file: vault-token\n    ca_file: vault-ca.pem\n"
        f"attestors:\n  - name: release\n    keys:\n{entries}"
        f"registries:\n  - host: {registry.host}\n    insecure: true\n"
    )
    return path


def push(registry: Registry, name: str) -> str:
    repo = f"vault/{name}"
    digest = push_image(registry.url, repo, "v1", seed=f"vault-{name}")
    return f"{registry.host}/{repo}@{digest}"


def signet(vault: Vault, *args: str) -> subprocess.CompletedProcess[str]:
    """`signet …` as a person runs it, with cosign's Vault variables."""
    return signet_process(*args, env={"PATH": "/usr/bin:/bin", **vault.env})


@pytest.mark.parametrize("bundle", [False, True], ids=["classic", "bundle"])
def test_signet_verifies_what_cosign_signs_with_a_vault_key(
    vault: Vault, registry: Registry, tmp_path: Path, bundle: bool
) -> None:
    name = f"cosign-made-{'bundle' if bundle else 'classic'}"
    public = cosign.generate_kms_key(COSIGN, f"hashivault://{name}", vault.env, tmp_path)
    image = push(registry, name)

    cosign.sign_kms(COSIGN, f"hashivault://{name}", image, vault.env, tmp_path, bundle)

    (outcome,) = check(trust_file(tmp_path / "trust", vault, registry, name), image)
    assert isinstance(outcome, Report), outcome
    assert outcome.verified == ("release",)
    assert [s.key for s in outcome.signatures] == [f"{name}@v1"]
    assert outcome.signatures[0].scheme == "ecdsa-p256-sha256"
    # The key Vault holds is the one cosign wrote out as cosign.pub.
    by_file = signet(vault, "verify", image, "--key", str(public), "--insecure-registry")
    assert by_file.returncode == 0, by_file.stderr
    by_uri = signet(vault, "verify", image, "--key", f"hashivault://{name}", "--insecure-registry")
    assert by_uri.returncode == 0, by_uri.stderr
    assert f'"key": "hashivault://{name}@v1"' in by_uri.stdout


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "rsa-2048", "ed25519"])
def test_signatures_made_in_vault_verify_both_ways(
    vault: Vault, registry: Registry, tmp_path: Path, key_type: str
) -> None:
    name = f"both-ways-{key_type}"
    vault.create_key(name, key_type)
    reference = f"hashivault://{name}"
    by_signet, by_cosign = push(registry, f"{name}-signet"), push(registry, f"{name}-cosign")
    public = tmp_path / "vault.pub"
    public.write_text(vault.public_pem(name, 1))

    signed = signet(
        vault, "sign", by_signet, "--key", reference, "--insecure-registry", "--format", "classic"
    )
    images = [by_signet]
    if key_type != "ed25519":  # cosign v3.1.3 cannot: "unexpected length of digest ..."
        cosign.sign_kms(COSIGN, reference, by_cosign, vault.env, tmp_path, bundle=False)
        images.append(by_cosign)

    assert signed.returncode == 0, signed.stderr
    # cosign checks a hashivault:// signature by asking Vault: for RSA it asks for RSA-PSS (the
    # default of Vault's verify endpoint) although it signs PKCS#1 v1.5, and for Ed25519 it
    # sends the payload's digest, not the payload; so it refuses those (its own RSA signatures
    # too). They are checked with the public key Vault lists, as cosign.pub.
    if key_type != "ecdsa-p256":
        accepted = cosign.verify(COSIGN, public, by_signet)
    else:
        accepted = cosign.verify_kms(COSIGN, reference, by_signet, vault.env, tmp_path, False)
    assert accepted.returncode == 0, accepted.stderr
    trust = trust_file(tmp_path / "trust", vault, registry, name)
    for outcome in check(trust, *images):
        assert isinstance(outcome, Report) and outcome.verified == ("release",), outcome
        assert outcome.signatures[0].key == f"{name}@v1"


def test_rotation_retirement_and_an_outage(registry: Registry, tmp_path: Path) -> None:
    with run_vault(tmp_path / "vault") as vault:
        _rotation_retirement_and_an_outage(vault, registry, tmp_path)


def signed_before_a_rotation(
    vault: Vault, registry: Registry, tmp_path: Path, name: str
) -> tuple[str, str, str, Path]:
    """A new key; two images, the first signed with it; a trust config trusting it."""
    vault.create_key(name, "ecdsa-p256")
    reference = f"hashivault://{name}"
    first, second = push(registry, f"{name}-1"), push(registry, f"{name}-2")
    cosign.sign_kms(COSIGN, reference, first, vault.env, tmp_path, bundle=False)
    return reference, first, second, trust_file(tmp_path / "trust", vault, registry, name)


def _rotation_retirement_and_an_outage(vault: Vault, registry: Registry, tmp_path: Path) -> None:
    name = "rotating"
    reference, first, second, config = signed_before_a_rotation(vault, registry, tmp_path, name)
    store = TrustStore(config)
    assert [k.id for k in store.current().attestors[0].keys] == ["rotating@v1"]

    # Rotated: cosign signs with v2; a refresh reads it, and v1's signature still counts.
    vault.rotate(name)
    cosign.sign_kms(COSIGN, reference, second, vault.env, tmp_path, bundle=False)
    assert store.reload_if_changed() is False  # no file changed, no refresh asked
    assert store.reload_if_changed(refresh=True) is True
    assert [k.id for k in store.current().attestors[0].keys] == ["rotating@v1", "rotating@v2"]
    outcomes = check(store.current(), first, second)
    assert [o.signatures[0].key for o in outcomes if isinstance(o, Report)] == [
        "rotating@v1",
        "rotating@v2",
    ]

    # Vault's operator retires v1: what only v1 signed no longer verifies.
    vault.retire_before(name, 2)
    assert store.reload_if_changed(refresh=True) is True
    retired, current = check(store.current(), first, second)
    assert isinstance(retired, Report) and retired.verified == (), retired
    assert isinstance(current, Report) and current.verified == ("release",), current

    # Vault goes away: a refresh keeps v2 (and says so); a revocation edited meanwhile applies.
    vault.process.terminate()
    vault.process.wait(10)
    assert store.reload_if_changed(refresh=True) is False
    assert "using the versions read at" in store.last_error
    assert vault.address in store.last_error
    config.write_text(
        config.read_text()
        + "revoked:\n  - key: rotating@v2\n    reason: leaked\n    time: 2026-01-01T00:00:00Z\n"
    )
    assert store.reload_if_changed() is True
    (revoked,) = check(store.current(), second)
    assert isinstance(revoked, Report) and revoked.verified == (), revoked
    assert [f.reason.value for f in revoked.failures] == ["KEY_REVOKED"], revoked.to_json()

    # With nothing read before, a load fails, naming Vault and what went wrong.
    with pytest.raises(
        TrustConfigError, match=r"rotating.*Vault https://127\.0\.0\.1:\d+.*no answer"
    ):
        load(config)


def test_the_provider_refreshes_vault_keys_off_the_admission_path(
    registry: Registry, tmp_path: Path
) -> None:
    with run_vault(tmp_path / "vault") as vault:
        name = "served"
        reference, first, second, config = signed_before_a_rotation(vault, registry, tmp_path, name)
        with run_provider(config, tmp_path / "provider", "--kms-refresh", "1") as provider:
            assert report_of(provider, first)["verified"] == ["release"]
            vault.rotate(name)
            cosign.sign_kms(COSIGN, reference, second, vault.env, tmp_path, bundle=False)
            waited = _until_verified(provider, second)
            print(f"a rotated Vault key counted {waited:.2f} s after cosign signed with it")
            assert waited < 5.0
            # Vault down: answers never wait for it; what was verified stays verified.
            vault.process.terminate()
            vault.process.wait(10)
            started = time.monotonic()
            assert report_of(provider, first)["verified"] == ["release"]
            assert time.monotonic() - started < 1.0
            time.sleep(2.5)  # at least one refresh failed meanwhile
            assert "using the versions read at" in provider.log.read_text()
            third = push(registry, "served-3")
            assert report_of(provider, third)["verified"] == []  # unsigned is still unsigned


def _until_verified(provider: Provider, image: str, timeout: float = 10.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if report_of(provider, image)["verified"] == ["release"]:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{image} not verified within {timeout} s")


def test_errors_a_person_meets(vault: Vault, registry: Registry, tmp_path: Path) -> None:
    image = push(registry, "errors")
    config = trust_file(tmp_path / "trust", vault, registry, "no-such-key")
    with pytest.raises(TrustConfigError) as missing:
        load(config)
    assert "attestor 'release' keys[0]" in str(missing.value)
    assert "hashivault://no-such-key" in str(missing.value)
    assert "Vault refused: 404 no such key (or no such mount)" in str(missing.value)
    print(missing.value)

    (tmp_path / "trust" / "vault-token").write_text("not-a-token\n")
    vault.create_key("exists", "ecdsa-p256")
    config = trust_file(tmp_path / "trust", vault, registry, "exists")
    (tmp_path / "trust" / "vault-token").write_text("not-a-token\n")
    with pytest.raises(
        TrustConfigError, match=r"Vault refused: 403 permission denied; invalid token$"
    ):
        load(config)

    unset = signet_process(
        "verify", image, "--key", "hashivault://exists", env={"PATH": "/usr/bin:/bin"}
    )
    assert unset.returncode == 2, unset
    assert "hashivault:// keys need VAULT_ADDR (or BAO_ADDR), as cosign does" in unset.stderr
    bad = signet(vault, "sign", image, "--key", "hashivault://a/b", "--insecure-registry")
    assert bad.returncode == 2, bad
    assert "hashivault://a/b: not a Transit key name" in bad.stderr
