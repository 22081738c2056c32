"""Keys on a real PKCS#11 token (SoftHSM2): `signet sign --key pkcs11:…`, the real `cosign
verify --key` of what it signed, `pkcs11:` keys in a trust config, and the errors a person meets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from signet.model.report import Report
from signet.trust.store import TrustStore
from tests.support import cosign
from tests.support.images import push_image
from tests.support.registry import Registry
from tests.support.softhsm import MODULE, PIN, SoftHsm, generate, make_token

from .helpers import check, signet_process

pytestmark = pytest.mark.integration

KEYS = {"p256": b"\x01", "rsa2048": b"\x02", "ed25519": b"\x03"}
SCHEMES = {"p256": "ecdsa-p256-sha256", "rsa2048": "rsa-2048-pkcs1v15-sha256"}


@pytest.fixture(scope="module")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHsm:
    token = make_token(tmp_path_factory.mktemp("softhsm"))
    for key_type, key_id in KEYS.items():
        generate(token, f"release-{key_type}", key_type, key_id)
    return token


@pytest.fixture
def token_env(hsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> Iterator[SoftHsm]:
    """For in-process trust config loads: this test's SOFTHSM2_CONF."""
    monkeypatch.setenv("SOFTHSM2_CONF", str(hsm.conf))
    yield hsm


def signet(
    hsm: SoftHsm, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`signet …` as a person runs it, with the token's SOFTHSM2_CONF."""
    return signet_process(*args, env={**hsm.env, **(env or {})})


def trust_file(directory: Path, uri: str, registry: Registry) -> Path:
    path = directory / "trust.yaml"
    path.write_text(
        "version: 1\nattestors:\n  - name: hsm\n    keys:\n"
        f"      - pkcs11: {json.dumps(uri)}\n"
        f"registries:\n  - host: {registry.host}\n    insecure: true\n"
    )
    return path


def push(registry: Registry, name: str) -> tuple[str, str]:
    repo = f"pkcs11/{name}"
    digest = push_image(registry.url, repo, "v1", seed=f"pkcs11-{name}")
    return f"{registry.host}/{repo}:v1", f"{registry.host}/{repo}@{digest}"


@pytest.mark.parametrize("key_type", list(SCHEMES))
@pytest.mark.parametrize("format_", ["classic", "bundle"])
def test_cosign_verifies_what_signet_signs_with_a_token_key(
    registry: Registry, hsm: SoftHsm, tmp_path: Path, format_: str, key_type: str
) -> None:
    image, by_digest = push(registry, f"{format_}-{key_type}")
    key = f"release-{key_type}"

    signed = signet(
        hsm, "sign", image, "--key", hsm.uri(key), "--insecure-registry", "--format", format_
    )

    assert signed.returncode == 0, signed.stderr
    assert json.loads(signed.stdout)["scheme"] == SCHEMES[key_type]
    public = tmp_path / "token.pub"
    shutil.copy(hsm.public_pem(key), public)  # exported from the token when the key was made
    if format_ == "classic":
        versions = ["v2.5.0", "v3.1.3"]
        results = [cosign.verify(v, public, by_digest) for v in versions]
    else:
        versions = list(cosign.BUNDLE_VERSIONS)
        results = [cosign.verify_bundle(v, public, by_digest) for v in versions]
    for version, accepted in zip(versions, results, strict=True):
        assert accepted.returncode == 0, f"cosign {version}: {accepted.stderr}"
        assert by_digest.split("@")[1] in accepted.stdout
        print(f"cosign {version} verify ({format_}, {key_type}): {accepted.stderr.strip()}")
        print(accepted.stdout.strip())


def test_signet_verifies_with_the_tokens_public_key_by_uri(
    registry: Registry, token_env: SoftHsm, tmp_path: Path
) -> None:
    hsm = token_env
    image, by_digest = push(registry, "trusted")
    assert (
        signet(
            hsm, "sign", image, "--key", hsm.uri("release-p256"), "--insecure-registry"
        ).returncode
        == 0
    )
    config = trust_file(tmp_path, hsm.uri("release-p256", pin=None), registry)

    (outcome,) = check(config, image)

    assert isinstance(outcome, Report), outcome
    assert outcome.verified == ("hsm",)
    assert outcome.signatures[0].scheme == "ecdsa-p256-sha256"
    file_config = tmp_path / "file" / "trust.yaml"
    file_config.parent.mkdir()
    file_config.write_text(
        config.read_text().replace(
            f"pkcs11: {json.dumps(hsm.uri('release-p256', pin=None))}",
            f"file: {hsm.public_pem('release-p256')}",
        )
    )
    (from_file,) = check(file_config, image)
    assert isinstance(from_file, Report)
    assert from_file.signatures[0].key == outcome.signatures[0].key  # the same key id

    # `signet sign --config` with a pkcs11: trust key reads the token while it signs on it.
    nested = signet(
        hsm, "sign", image, "--key", hsm.uri("release-rsa2048"), "--config", str(config)
    )
    assert nested.returncode == 0, nested.stderr

    # As a person runs it: with the trust config, and with --key pkcs11:…
    by_config = signet(hsm, "verify", image, "--config", str(config), "--require", "hsm")
    assert by_config.returncode == 0, by_config.stderr
    by_key = signet(
        hsm, "verify", by_digest, "--key", hsm.uri("release-p256"), "--insecure-registry"
    )
    assert by_key.returncode == 0, by_key.stderr
    assert PIN not in by_key.stdout + by_key.stderr


def test_pin_source_and_cosign_environment(
    registry: Registry, hsm: SoftHsm, tmp_path: Path
) -> None:
    image, by_digest = push(registry, "pin-source")
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    uri = hsm.uri("release-p256", pin=None) + f"&pin-source=file://{pin_file}"
    by_file = signet(hsm, "sign", image, "--key", uri, "--insecure-registry")
    assert by_file.returncode == 0, by_file.stderr
    # cosign's variables: COSIGN_PKCS11_MODULE_PATH for a URI without module-path, and
    # COSIGN_PKCS11_PIN for one without a PIN.
    env = {"COSIGN_PKCS11_MODULE_PATH": str(MODULE), "COSIGN_PKCS11_PIN": PIN}
    bare = f"pkcs11:token={hsm.label};id=%01"
    by_env = signet(hsm, "sign", image, "--key", bare, "--insecure-registry", env=env)
    assert by_env.returncode == 0, by_env.stderr
    public = tmp_path / "token.pub"
    shutil.copy(hsm.public_pem("release-p256"), public)
    assert cosign.verify_bundle("v3.1.3", public, by_digest).returncode == 0
    # The token by its slot, the key by its id (cosign: slot-id wins over token).
    by_slot = f"pkcs11:slot-id={slot_of(hsm)};id=%02?module-path={MODULE}&pin-value={PIN}"
    signed = signet(hsm, "sign", image, "--key", by_slot, "--insecure-registry")
    assert signed.returncode == 0, signed.stderr
    assert json.loads(signed.stdout)["scheme"] == SCHEMES["rsa2048"]


def slot_of(hsm: SoftHsm) -> int:
    shown = subprocess.run(
        ["softhsm2-util", "--show-slots"], env=hsm.env, capture_output=True, text=True, check=True
    ).stdout
    slot = None
    for line in shown.splitlines():
        if line.startswith("Slot "):
            slot = int(line.split()[1])
        elif line.strip() == f"Label:            {hsm.label}" and slot is not None:
            return slot
    raise AssertionError(f"no slot holds {hsm.label}:\n{shown}")


def not_a_module(tmp_path: Path) -> Path:
    path = tmp_path / "not-a-module.so"
    path.write_text("not a shared library, but a text file long enough to have an ELF header\n")
    return path


def a_library_but_not_pkcs11() -> str:
    import _ctypes  # a shared object every Python has, without C_GetFunctionList

    return str(_ctypes.__file__)


ERRORS: dict[str, tuple[Callable[[SoftHsm, Path], str], str]] = {
    "wrong PIN": (
        lambda h, _: h.uri("release-p256", pin="0000-wrong"),
        "wrong PIN for token 'signet'",
    ),
    "no such token": (
        lambda h, _: h.uri("release-p256", token="absent"),
        "no token labelled 'absent' in /usr/lib/softhsm/libsofthsm2.so (tokens: 'signet')",
    ),
    "no such object": (
        lambda h, _: h.uri("absent-key"),
        "no private key with object='absent-key' on token 'signet'",
    ),
    "module missing": (
        lambda h, _: h.uri("release-p256").replace(str(MODULE), "/opt/none/libpkcs11.so"),
        "module-path /opt/none/libpkcs11.so: no such file",
    ),
    "not a module": (
        lambda h, tmp: h.uri("release-p256").replace(str(MODULE), str(not_a_module(tmp))),
        "is not a PKCS#11 module (invalid ELF header)",
    ),
    "a library, not a module": (
        lambda h, _: h.uri("release-p256").replace(str(MODULE), a_library_but_not_pkcs11()),
        "is not a PKCS#11 module (undefined symbol: C_GetFunctionList)",
    ),
    "unsupported key type": (
        lambda h, _: h.uri("release-ed25519"),
        "the key is of type EC_EDWARDS, which is not supported on a token",
    ),
    "no PIN": (
        lambda h, _: h.uri("release-p256", pin=None),
        "no PIN: give pin-value or pin-source in the URI, or set COSIGN_PKCS11_PIN",
    ),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_sign_errors_name_the_uri_and_the_problem(
    registry: Registry, hsm: SoftHsm, tmp_path: Path, case: str
) -> None:
    image, _ = push(registry, "errors")
    make_uri, problem = ERRORS[case]
    uri = make_uri(hsm, tmp_path)

    result = signet(hsm, "sign", image, "--key", uri, "--insecure-registry")

    assert result.returncode == 2, result.stderr
    shown = uri.split("&pin-value=")[0]
    assert result.stderr.strip().startswith(f"signet sign: {shown}: "), result.stderr
    assert problem in result.stderr
    assert "pin-value=" not in result.stderr
    assert PIN not in result.stderr and "0000-wrong" not in result.stderr
    assert result.stdout == ""


def test_a_trust_config_whose_token_is_unavailable_is_refused(
    registry: Registry, token_env: SoftHsm, tmp_path: Path
) -> None:
    hsm = token_env
    image, _ = push(registry, "unavailable")
    config = trust_file(tmp_path, hsm.uri("release-p256", token="absent"), registry)

    result = signet(hsm, "verify", image, "--config", str(config))

    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"signet verify: {config}: attestor 'hsm' keys[0]: "
        f"pkcs11:token=absent;object=release-p256?module-path={MODULE}: "
        f"no token labelled 'absent' in {MODULE} (tokens: 'signet')"
    )
    assert PIN not in result.stderr


def test_a_reload_while_the_token_is_gone_keeps_the_last_good_config(
    registry: Registry, hsm: SoftHsm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read at load; then served from memory. A reload that cannot reach the token fails
    (logged, counted) and keeps the config in force — never an empty one."""
    copy = tmp_path / "hsm"
    shutil.copytree(hsm.directory, copy)
    conf = copy / "softhsm2.conf"
    conf.write_text(hsm.conf.read_text().replace(str(hsm.directory), str(copy)))
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    config = trust_file(tmp_path, hsm.uri("release-p256", pin=None), registry)
    store = TrustStore(config)
    loaded = store.current()
    assert [k.key.kind for k in loaded.attestors[0].keys] == ["ecdsa-p256"]

    shutil.rmtree(copy / "tokens")  # the token is gone
    (copy / "tokens").mkdir()
    config.write_text(config.read_text() + "\n")  # and the config changes

    assert store.reload_if_changed() is False
    assert store.current() is loaded
    assert "no token labelled 'signet'" in store.last_error
    assert os.environ["SOFTHSM2_CONF"] == str(conf)
