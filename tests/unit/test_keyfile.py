"""cosign's encrypted key-file format, and signing in the scheme cosign verifies by default."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization

from signet.keyfile import KEY_TYPES, encrypt_cosign_key, generate, load_private_key, public_pem
from signet.keys import UnusableKey, load_public_key_pem

DEFAULT_SCHEMES = {
    "p256": "ecdsa-p256-sha256",
    "p384": "ecdsa-p384-sha256",
    "p521": "ecdsa-p521-sha256",
    "ed25519": "ed25519",
    "rsa2048": "rsa-2048-pkcs1v15-sha256",
}


@pytest.mark.parametrize("key_type", list(DEFAULT_SCHEMES))
@pytest.mark.parametrize("password", [b"", b"s3cret"])
def test_round_trip_and_sign(key_type: str, password: bytes) -> None:
    key = generate(key_type)
    loaded = load_private_key(encrypt_cosign_key(key, password), password)
    assert loaded.public.der == key.public.der
    signature, scheme = loaded.sign(b"payload")
    assert scheme == DEFAULT_SCHEMES[key_type]
    assert load_public_key_pem(public_pem(key)).verify(b"payload", signature) == scheme


def test_the_pem_looks_like_cosigns() -> None:
    pem = encrypt_cosign_key(generate("p256"), b"").decode()
    assert pem.startswith("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    body = "".join(pem.splitlines()[1:-1])
    document = json.loads(base64.b64decode(body))
    assert document["kdf"]["params"] == {"N": 65536, "r": 8, "p": 1}
    assert document["cipher"]["name"] == "nacl/secretbox"


def test_wrong_password() -> None:
    pem = encrypt_cosign_key(generate("p256"), b"right")
    with pytest.raises(UnusableKey, match="wrong password"):
        load_private_key(pem, b"wrong")


def test_scrypt_parameters_outside_cosigns_sets_are_refused() -> None:
    pem = encrypt_cosign_key(generate("p256"), b"").decode()
    document = json.loads(base64.b64decode("".join(pem.splitlines()[1:-1])))
    document["kdf"]["params"]["N"] = 1 << 30
    body = base64.b64encode(json.dumps(document).encode()).decode()
    forged = f"-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n{body}\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n"
    with pytest.raises(UnusableKey, match="scrypt parameters"):
        load_private_key(forged.encode(), b"")


def test_a_plain_pkcs8_key_loads() -> None:
    key = generate("ed25519")
    pem = serialization.load_der_private_key(key.pkcs8_der(), None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert load_private_key(pem, b"").public.der == key.public.der


def test_unknown_key_type() -> None:
    assert "p256" in KEY_TYPES
    with pytest.raises(UnusableKey, match="unknown key type"):
        generate("dsa")
