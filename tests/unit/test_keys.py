"""Every scheme each cosign version signs with verifies, and is named; nothing else does."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from Crypto.Hash import SHA512
from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa

from signet.keys import PublicKey, UnusableKey, load_public_key_pem

MESSAGE = b'{"critical":{"image":{"docker-manifest-digest":"sha256:00"}}}'
PrivateKeyType = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


def public(key: PrivateKeyType | dsa.DSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def ecdsa(curve: ec.EllipticCurve, hash_type: type[hashes.HashAlgorithm]) -> Callable[..., object]:
    return lambda key, msg: key.sign(msg, ec.ECDSA(hash_type()))


def ed25519ph(key: ed25519.Ed25519PrivateKey, message: bytes) -> bytes:
    """RFC 8032 Ed25519ph, as cosign >= 2.6 signs with Ed25519 keys."""
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signature: bytes = eddsa.new(ECC.import_key(der), "rfc8032").sign(SHA512.new(message))
    return signature


CASES: list[tuple[str, Callable[[], PrivateKeyType], Callable[..., object], str]] = [
    (
        "p256",
        lambda: ec.generate_private_key(ec.SECP256R1()),
        ecdsa(ec.SECP256R1(), hashes.SHA256),
        "ecdsa-p256-sha256",
    ),
    (
        "p384-v2.5",
        lambda: ec.generate_private_key(ec.SECP384R1()),
        ecdsa(ec.SECP384R1(), hashes.SHA256),
        "ecdsa-p384-sha256",
    ),
    (
        "p384-v2.6",
        lambda: ec.generate_private_key(ec.SECP384R1()),
        ecdsa(ec.SECP384R1(), hashes.SHA384),
        "ecdsa-p384-sha384",
    ),
    (
        "p521-v2.5",
        lambda: ec.generate_private_key(ec.SECP521R1()),
        ecdsa(ec.SECP521R1(), hashes.SHA256),
        "ecdsa-p521-sha256",
    ),
    (
        "p521-v2.6",
        lambda: ec.generate_private_key(ec.SECP521R1()),
        ecdsa(ec.SECP521R1(), hashes.SHA512),
        "ecdsa-p521-sha512",
    ),
    ("ed25519-pure", ed25519.Ed25519PrivateKey.generate, lambda k, m: k.sign(m), "ed25519"),
    ("ed25519ph", ed25519.Ed25519PrivateKey.generate, ed25519ph, "ed25519ph"),
    (
        "rsa2048",
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        lambda k, m: k.sign(m, padding.PKCS1v15(), hashes.SHA256()),
        "rsa-2048-pkcs1v15-sha256",
    ),
]


@pytest.mark.parametrize(("name", "make", "sign", "scheme"), CASES, ids=[c[0] for c in CASES])
def test_scheme_verifies_and_is_named(
    name: str, make: Callable[[], PrivateKeyType], sign: Callable[..., object], scheme: str
) -> None:
    key = make()
    verifier = load_public_key_pem(public(key))
    signature = sign(key, MESSAGE)
    assert isinstance(signature, bytes)

    assert verifier.verify(MESSAGE, signature) == scheme
    assert verifier.verify(MESSAGE + b" ", signature) is None
    assert verifier.verify(MESSAGE, signature[:-1]) is None
    assert verifier.verify(MESSAGE, b"\x00" * len(signature)) is None
    assert load_public_key_pem(public(make())).verify(MESSAGE, signature) is None


def test_a_p256_key_never_accepts_a_sha512_signature() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signature = key.sign(MESSAGE, ec.ECDSA(hashes.SHA512()))
    assert load_public_key_pem(public(key)).verify(MESSAGE, signature) is None


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: ec.generate_private_key(ec.SECP256K1()), "curve secp256k1"),
        (lambda: ec.generate_private_key(ec.SECP224R1()), "curve secp224r1"),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024), "1024"),
        (lambda: dsa.generate_private_key(key_size=2048), "not supported"),
    ],
)
def test_unsupported_keys_are_refused(make: Callable[[], object], problem: str) -> None:
    key = make()
    assert isinstance(key, PrivateKeyType | dsa.DSAPrivateKey)
    with pytest.raises(UnusableKey) as caught:
        load_public_key_pem(public(key))
    assert problem in str(caught.value)


def test_not_a_pem() -> None:
    with pytest.raises(UnusableKey, match="not a PEM public key"):
        load_public_key_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


def test_fingerprint_and_short_id() -> None:
    key: PublicKey = load_public_key_pem(public(ed25519.Ed25519PrivateKey.generate()))
    assert len(key.fingerprint) == 64
    assert key.short_id == key.fingerprint[:16]
