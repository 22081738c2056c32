"""Vault Transit keys: the answers Signet accepts and refuses (httpx.MockTransport standing in for
Vault), the versions it trusts, the cache that stands in while Vault is down, and the trust
config's `kms` errors. The real Vault is in tests/integration/test_vault.py."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from signet.crypto.hashivault import (
    VaultSettings,
    VaultUnreachable,
    key_name,
    read_public_keys,
)
from signet.crypto.keys import UnusableKey, load_public_key_pem
from signet.trust.config import RemoteKeys, load
from signet.trust.model import TrustConfigError

Handler = Callable[[httpx.Request], httpx.Response]


def _pem(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


KEYS = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]


def key_answer(latest: int = 3, minimum: int = 1, **extra: Any) -> dict[str, Any]:
    keys = {
        str(v): {"name": "P-256", "public_key": _pem(KEYS[v - 1])} for v in range(1, latest + 1)
    }
    data = {"keys": keys, "latest_version": latest, "min_decryption_version": minimum}
    return {"data": {**data, "type": "ecdsa-p256", "supports_signing": True, **extra}}


def settings(handler: Handler, **fields: Any) -> VaultSettings:
    return VaultSettings(
        "https://vault.test:8200", token="t0ken", transport=httpx.MockTransport(handler), **fields
    )


def answering(status: int, body: object) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    return handler


def test_reads_every_version_vault_still_verifies_with() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=key_answer(latest=3, minimum=2))

    versions = read_public_keys("hashivault://release", settings(handler, namespace="team-a"))

    assert [v.version for v in versions] == [2, 3]
    assert versions[0].key == load_public_key_pem(_pem(KEYS[1]).encode())
    (request,) = seen
    assert request.url == "https://vault.test:8200/v1/transit/keys/release"
    assert request.headers["X-Vault-Token"] == "t0ken"
    assert request.headers["X-Vault-Namespace"] == "team-a"


def test_ed25519_keys_come_as_raw_base64() -> None:
    raw = ed25519.Ed25519PrivateKey.generate().public_key()
    entry = {
        "name": "ed25519",
        "public_key": base64.b64encode(
            raw.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        ).decode(),
    }
    body = {"data": {"keys": {"1": entry}, "latest_version": 1, "min_decryption_version": 1}}
    (version,) = read_public_keys("openbao://k", settings(answering(200, body)))
    assert version.key.kind == "ed25519"


@pytest.mark.parametrize(
    ("status", "body", "unreachable", "message"),
    [
        (503, {"errors": ["Vault is sealed"]}, True, "Vault answered 503 Vault is sealed"),
        (429, {}, True, "Vault answered 429"),
        (403, {"errors": ["permission denied"]}, False, "Vault refused: 403 permission denied"),
        (404, {}, False, "Vault refused: 404 no such key (or no such mount)"),
        (400, {}, False, "Vault refused: 400 no reason given"),
        (
            403,
            {"errors": ["2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"]},
            False,
            "Vault refused: 403 permission denied; invalid token",
        ),
        (200, {"nodata": 1}, False, "Vault's answer has no data object"),
        (200, {"data": {"keys": {}}}, False, "lacks keys or versions"),
        (
            200,
            {
                "data": {
                    "keys": {"1": {"public_key": ""}},
                    "latest_version": 1,
                    "type": "aes256-gcm96",
                }
            },
            False,
            "version 1 has no public key (a aes256-gcm96 key?)",
        ),
        (
            200,
            {"data": {"keys": {"1": {"public_key": "junk"}}, "latest_version": 1}},
            False,
            "version 1: not a PEM public key",
        ),
        (
            200,
            {"data": {"keys": {}, "latest_version": 1, "type": "hmac", "supports_signing": False}},
            False,
            "a hmac key cannot sign",
        ),
        (200, key_answer(latest=2, minimum=3), False, "no key version is available"),
    ],
)
def test_answers_refused(status: int, body: object, unreachable: bool, message: str) -> None:
    with pytest.raises(UnusableKey) as caught:
        read_public_keys("hashivault://release", settings(answering(status, body)))
    assert message in str(caught.value)
    assert "hashivault://release (Vault https://vault.test:8200, mount transit)" in str(
        caught.value
    )
    assert isinstance(caught.value, VaultUnreachable) is unreachable


def test_no_answer_is_unreachable_and_redirects_are_not_followed() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(VaultUnreachable, match="no answer: connection refused"):
        read_public_keys("hashivault://release", settings(down))
    moved = answering(307, {})
    with pytest.raises(UnusableKey, match="Vault refused: 307"):
        read_public_keys("hashivault://release", settings(moved))


def test_answers_are_capped() -> None:
    def huge(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b" " * (1024 * 1024 + 1))

    with pytest.raises(UnusableKey, match="answer larger than 1048576 bytes"):
        read_public_keys("hashivault://release", settings(huge))


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("hashivault://", "not a Transit key name"),
        ("hashivault://a/b", "not a Transit key name"),
        ("hashivault://-a", "not a Transit key name"),
        ("awskms://alias/x", "not a hashivault:// or openbao:// key reference"),
    ],
)
def test_key_names(reference: str, message: str) -> None:
    with pytest.raises(UnusableKey, match=message):
        key_name(reference)
    assert key_name("hashivault://release.key-2") == "release.key-2"


def test_settings_from_the_environment_as_cosign_reads_them(tmp_path: Path) -> None:
    with pytest.raises(UnusableKey, match="need VAULT_ADDR"):
        VaultSettings.from_environment({})
    with pytest.raises(UnusableKey, match="need VAULT_TOKEN"):
        VaultSettings.from_environment({"VAULT_ADDR": "https://v:8200"})
    env = {"BAO_ADDR": "https://v:8200", "BAO_TOKEN": "x", "TRANSIT_SECRET_ENGINE_PATH": "kms/t"}
    found = VaultSettings.from_environment(env)
    assert (found.address, found.transit_path, found.token) == ("https://v:8200", "kms/t", "x")
    with pytest.raises(UnusableKey, match="VAULT_CACERT /nowhere"):
        VaultSettings.from_environment({**env, "VAULT_CACERT": "/nowhere"})
    for address in ("ftp://v", "https://v/path", "v:8200"):
        with pytest.raises(UnusableKey, match=r"is not https://host\[:port\]"):
            VaultSettings(address, token="x")
    with pytest.raises(UnusableKey, match="plain http would send the token in clear"):
        VaultSettings("http://vault.example:8200", token="x")
    for local in ("http://127.0.0.1:8200", "http://[::1]:8200", "http://localhost:8200"):
        assert VaultSettings(local, token="x").origin == local
    with pytest.raises(UnusableKey, match="is not a path like 'transit'"):
        VaultSettings("https://v", token="x", transit_path="../sys")


def test_remote_keys_stand_in_only_while_vault_is_unreachable() -> None:
    state = {"status": 200}

    def handler(request: httpx.Request) -> httpx.Response:
        if state["status"] == 0:
            raise httpx.ConnectTimeout("timed out", request=request)
        return httpx.Response(state["status"], json=key_answer(latest=1))

    vault, remote = settings(handler), RemoteKeys()
    with pytest.raises(VaultUnreachable):  # nothing read before: no stand-in
        state["status"] = 0
        remote.read("hashivault://release", vault)
    state["status"] = 200
    versions, warning = remote.read("hashivault://release", vault)
    assert warning == ""
    state["status"] = 0
    held, warning = remote.read("hashivault://release", vault)
    assert held == versions
    assert "no answer: timed out; using the versions read at 20" in warning
    state["status"] = 403  # a refusal is an answer: no stand-in
    with pytest.raises(UnusableKey, match="403"):
        remote.read("hashivault://release", vault)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


SECTION = "kms:\n  hashivault:\n    address: https://vault.test:8200\n    token_file: token\n"
KMS_KEY = "attestors:\n  - name: release\n    keys:\n      - kms: hashivault://release\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            KMS_KEY,
            "attestor 'release' keys[0]: hashivault://release needs a kms.hashivault section "
            "(address and token_file) in one file of the config",
        ),
        (
            SECTION + KMS_KEY.replace("hashivault://release", "gcpkms://projects/p/k"),
            "'gcpkms://projects/p/k': only hashivault:// (and openbao://) keys are supported",
        ),
        (
            SECTION.replace("token_file: token", "token: abc") + KMS_KEY,
            "kms.hashivault: unknown field 'token'",
        ),
        (SECTION.replace("https://vault.test:8200", "vault.test") + KMS_KEY, "is not https://"),
        (
            SECTION
            + KMS_KEY.replace(
                "kms: hashivault://release", "kms: hashivault://release\n        pem: x"
            ),
            "give exactly one of 'pem', 'file', 'pkcs11' (a token's public key) or 'kms'",
        ),
    ],
)
def test_config_errors(tmp_path: Path, text: str, message: str) -> None:
    config = write(tmp_path / "trust.yaml", "version: 1\n" + text)
    with pytest.raises(TrustConfigError) as caught:
        load(config)
    assert message in str(caught.value)
    assert str(config) in str(caught.value)


def test_one_kms_section_for_the_whole_folder(tmp_path: Path) -> None:
    write(tmp_path / "conf" / "a.yaml", "version: 1\n" + SECTION + KMS_KEY)
    write(tmp_path / "conf" / "b.yaml", "version: 1\n" + SECTION)
    with pytest.raises(TrustConfigError, match=r"b\.yaml: kms\.hashivault: is set in .*a\.yaml"):
        load(tmp_path / "conf")


def test_the_token_file_is_read_at_each_call(tmp_path: Path) -> None:
    token = write(tmp_path / "token", "first\n")
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["X-Vault-Token"])
        return httpx.Response(200, json=key_answer(latest=1))

    vault = VaultSettings(
        "https://vault.test", token_file=token, transport=httpx.MockTransport(handler)
    )
    read_public_keys("hashivault://k", vault)
    token.write_text("second")
    read_public_keys("hashivault://k", vault)
    assert seen == ["first", "second"]
    token.write_text("")
    with pytest.raises(UnusableKey, match="is empty"):
        read_public_keys("hashivault://k", vault)
    assert "t0ken" not in repr(settings(answering(200, {})))
