"""cosign's encrypted key-file format, and signing in the scheme `cosign verify --key` checks by
default (SHA-256 for ECDSA and RSA, pure Ed25519)."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets
from typing import Any

import nacl.secret
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa, x25519

from signet.crypto.keyfile import (
    KEY_TYPES,
    PrivateKey,
    encrypt_cosign_key,
    generate,
    load_private_key,
    public_pem,
)
from signet.crypto.keys import UnusableKey, load_public_key_pem

MESSAGE = b'{"critical":{"type":"cosign container image signature"},"optional":null}'
DEFAULT_SCHEMES = {
    "p256": "ecdsa-p256-sha256",
    "p384": "ecdsa-p384-sha256",
    "p521": "ecdsa-p521-sha256",
    "ed25519": "ed25519",
    "rsa2048": "rsa-2048-pkcs1v15-sha256",
    "rsa3072": "rsa-3072-pkcs1v15-sha256",
    "rsa4096": "rsa-4096-pkcs1v15-sha256",
}
SIGSTORE = "ENCRYPTED SIGSTORE PRIVATE KEY"
COSIGN = "ENCRYPTED COSIGN PRIVATE KEY"


@functools.cache
def key_of(key_type: str) -> PrivateKey:
    return generate(key_type)


def pem_block(pem_type: str, body: bytes) -> bytes:
    text = base64.b64encode(body).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return "\n".join(
        [f"-----BEGIN {pem_type}-----", *lines, f"-----END {pem_type}-----", ""]
    ).encode()


def cosign_key_file(
    der: bytes,
    password: bytes,
    *,
    n: int = 65536,
    r: int = 8,
    p: int = 1,
    pem_type: str = SIGSTORE,
    edit: dict[str, Any] | None = None,
) -> bytes:
    """A cosign key file written independently of signet (go-securesystemslib `encrypted`)."""
    salt, nonce = secrets.token_bytes(32), secrets.token_bytes(24)
    secret = hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=512 * 1024 * 1024, dklen=32)
    ciphertext = nacl.secret.SecretBox(secret).encrypt(der, nonce).ciphertext
    document: dict[str, Any] = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": n, "r": r, "p": p},
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    for path, value in (edit or {}).items():
        *parents, last = path.split(".")
        target = document
        for parent in parents:
            target = target[parent]
        target[last] = value
    return pem_block(pem_type, json.dumps(document).encode())


def decoded_document(pem: bytes) -> dict[str, Any]:
    lines = pem.decode().strip().splitlines()
    document: dict[str, Any] = json.loads(base64.b64decode("".join(lines[1:-1])))
    return document


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", KEY_TYPES)
@pytest.mark.parametrize("password", [b"", "s3cret-pässwörd".encode()], ids=["empty", "password"])
def test_generate_encrypt_load_round_trip(key_type: str, password: bytes) -> None:
    key = key_of(key_type)
    loaded = load_private_key(encrypt_cosign_key(key, password), password)
    assert loaded.public == key.public
    assert loaded.pkcs8_der() == key.pkcs8_der()


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_signatures_verify_with_cosigns_default_scheme(key_type: str) -> None:
    key = key_of(key_type)
    signature, scheme = key.sign(MESSAGE)
    assert scheme == DEFAULT_SCHEMES[key_type]
    # Signet's own verifier names the same scheme ...
    assert load_public_key_pem(public_pem(key)).verify(MESSAGE, signature) == scheme
    # ... and `cryptography`, told the scheme explicitly, agrees (what cosign checks by default).
    public = serialization.load_pem_public_key(public_pem(key))
    if isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(signature, MESSAGE, ec.ECDSA(hashes.SHA256()))
    elif isinstance(public, ed25519.Ed25519PublicKey):
        public.verify(signature, MESSAGE)
    else:
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())


def test_the_pem_looks_like_cosigns() -> None:
    pem = encrypt_cosign_key(key_of("p256"), b"")
    text = pem.decode()
    assert text.startswith(f"-----BEGIN {SIGSTORE}-----\n")
    assert text.endswith(f"-----END {SIGSTORE}-----\n")
    assert all(len(line) <= 64 for line in text.splitlines())
    document = decoded_document(pem)
    assert document["kdf"]["name"] == "scrypt"
    assert document["kdf"]["params"] == {"N": 65536, "r": 8, "p": 1}
    assert len(base64.b64decode(document["kdf"]["salt"])) == 32
    assert document["cipher"]["name"] == "nacl/secretbox"
    assert len(base64.b64decode(document["cipher"]["nonce"])) == 24
    # Fresh salt and nonce every time.
    assert (
        decoded_document(encrypt_cosign_key(key_of("p256"), b""))["kdf"]["salt"]
        != document["kdf"]["salt"]
    )


@pytest.mark.parametrize(
    ("params", "pem_type"),
    [
        ((32768, 8, 1), SIGSTORE),
        ((65536, 8, 1), SIGSTORE),
        ((131072, 8, 1), SIGSTORE),
        ((32768, 8, 1), COSIGN),  # the PEM type older cosign versions wrote
    ],
)
def test_key_files_written_by_cosign_load(params: tuple[int, int, int], pem_type: str) -> None:
    key = key_of("p256")
    n, r, p = params
    pem = cosign_key_file(key.pkcs8_der(), b"pw", n=n, r=r, p=p, pem_type=pem_type)
    assert load_private_key(pem, b"pw").public == key.public


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("right", "wrong"), [(b"right", b"wrong"), (b"", b"x")])
def test_a_wrong_password_is_refused(right: bytes, wrong: bytes) -> None:
    pem = encrypt_cosign_key(key_of("p256"), right)
    with pytest.raises(UnusableKey, match="wrong password"):
        load_private_key(pem, wrong)


@pytest.mark.parametrize(
    "params",
    [(16384, 8, 1), (1 << 30, 8, 1), (65536, 16, 1), (65536, 8, 2), (65536, 1, 1), (32768, 8, 0)],
)
def test_scrypt_parameters_outside_cosigns_three_sets_are_refused(
    params: tuple[int, int, int],
) -> None:
    n, r, p = params
    # Refused before scrypt runs (a hostile file must not choose our memory use): had scrypt run
    # first, N=2**30 would have failed inside it, as a "wrong password".
    document = {
        "kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p}, "salt": "AAAA"},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(b"\0" * 24).decode()},
        "ciphertext": base64.b64encode(b"\0" * 80).decode(),
    }
    with pytest.raises(UnusableKey) as caught:
        load_private_key(pem_block(SIGSTORE, json.dumps(document).encode()), b"")
    assert f"scrypt parameters N={n} r={r} p={p} are not ones cosign accepts" in str(caught.value)


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        ({"kdf.name": "argon2"}, "unsupported key encryption argon2/nacl/secretbox"),
        ({"cipher.name": "aes-gcm"}, "unsupported key encryption scrypt/aes-gcm"),
        ({"kdf.params": "fast"}, "JSON is malformed"),
        ({"kdf.params.N": "many"}, "JSON is malformed"),
        ({"kdf.salt": "abc"}, "JSON is malformed"),
        ({"ciphertext": base64.b64encode(b"\0" * 64).decode()}, "wrong password"),
        ({"cipher.nonce": base64.b64encode(b"\0" * 5).decode()}, "wrong password"),
    ],
)
def test_malformed_key_files_are_refused(edit: dict[str, Any], problem: str) -> None:
    pem = cosign_key_file(key_of("p256").pkcs8_der(), b"", n=32768, edit=edit)
    with pytest.raises(UnusableKey, match=problem):
        load_private_key(pem, b"")


@pytest.mark.parametrize(
    ("pem", "problem"),
    [
        (
            f"-----BEGIN {SIGSTORE}-----\nabc\n-----END {SIGSTORE}-----\n".encode(),
            "not valid base64",
        ),
        (pem_block(SIGSTORE, b"not json"), "JSON is malformed"),
        (pem_block(SIGSTORE, b"[]"), "JSON is malformed"),
        (pem_block(COSIGN, b"null"), "JSON is malformed"),
        (b"", "not a cosign or PEM private key"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a cosign or PEM"),
    ],
    ids=["bad-base64", "not-json", "json-list", "json-null", "empty", "public-key"],
)
def test_unreadable_key_files_are_refused(pem: bytes, problem: str) -> None:
    with pytest.raises(UnusableKey, match=problem):
        load_private_key(pem, b"")


def test_a_decrypted_body_that_is_not_a_key_is_refused() -> None:
    pem = cosign_key_file(b"\x30\x03\x02\x01\x00", b"", n=32768)
    with pytest.raises(UnusableKey, match="not a usable PKCS#8 key"):
        load_private_key(pem, b"")


def unencrypted(key: object, fmt: serialization.PrivateFormat) -> bytes:
    assert isinstance(
        key,
        ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | rsa.RSAPrivateKey
        | dsa.DSAPrivateKey
        | x25519.X25519PrivateKey,
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


@pytest.mark.parametrize("key_type", ["p256", "ed25519", "rsa2048"])
def test_an_unencrypted_pkcs8_pem_loads(key_type: str) -> None:
    key = key_of(key_type)
    loaded = serialization.load_der_private_key(key.pkcs8_der(), None)
    pem = unencrypted(loaded, serialization.PrivateFormat.PKCS8)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert load_private_key(pem, b"").public == key.public


def test_traditional_and_password_protected_pems_load() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    sec1 = unencrypted(key, serialization.PrivateFormat.TraditionalOpenSSL)
    assert sec1.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    assert load_private_key(sec1, b"").public.kind == "ecdsa-p384"
    protected = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    assert load_private_key(protected, b"pw").public.kind == "ecdsa-p384"
    with pytest.raises(UnusableKey, match="not a cosign or PEM private key"):
        load_private_key(protected, b"wrong")
    with pytest.raises(UnusableKey, match="not a cosign or PEM private key"):
        load_private_key(protected, b"")


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: dsa.generate_private_key(key_size=2048), "DSAPrivateKey keys are not supported"),
        (x25519.X25519PrivateKey.generate, "X25519PrivateKey keys are not supported"),
        (lambda: ec.generate_private_key(ec.SECP256K1()), "secp256k1 is not supported"),
        (
            lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),
            "not 1024",
        ),
    ],
    ids=["dsa", "x25519", "secp256k1", "rsa1024"],
)
def test_unsupported_private_keys_are_refused(make: Any, problem: str) -> None:
    pem = unencrypted(make(), serialization.PrivateFormat.PKCS8)
    with pytest.raises(UnusableKey, match=problem):
        load_private_key(pem, b"")
    # The same key inside a cosign key file is refused just the same.
    der = serialization.load_pem_private_key(pem, None).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(UnusableKey, match=problem):
        load_private_key(cosign_key_file(der, b"", n=32768), b"")


@pytest.mark.parametrize("key_type", ["dsa", "p224", "rsa1024", "rsa", ""])
def test_generate_refuses_unknown_key_types(key_type: str) -> None:
    with pytest.raises(UnusableKey, match=f"unknown key type {key_type!r}"):
        generate(key_type)
