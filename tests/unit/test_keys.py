"""Every scheme a cosign version signs with verifies under its key, and is named; nothing else does.

Schemes per cosign version (shared/reference/cosign-observed.md): v2.5 signs every ECDSA key with
SHA-256 and Ed25519 with pure Ed25519; v2.6+ signs P-384 with SHA-384, P-521 with SHA-512 and
Ed25519 with Ed25519ph (RFC 8032 prehash). RSA is PKCS#1 v1.5 with SHA-256 in every version.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from Crypto.Hash import SHA512
from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa, x25519

from signet.crypto.keys import PublicKey, UnusableKey, load_public_key_pem

MESSAGE = (
    b'{"critical":{"identity":{"docker-reference":"registry.example/app"},"image":'
    b'{"docker-manifest-digest":"sha256:' + b"0" * 64 + b'"},'
    b'"type":"cosign container image signature"},"optional":null}'
)

PrivateKeyType = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
Signer = Callable[[PrivateKeyType, bytes], bytes]

_MAKERS: dict[str, Callable[[], PrivateKeyType]] = {
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "p521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "rsa2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "rsa4096": lambda: rsa.generate_private_key(public_exponent=65537, key_size=4096),
}


def private_key(key_type: str, n: int = 0) -> PrivateKeyType:
    """The `n`th key of a type, generated once per test session (RSA-4096 is slow)."""
    return _generated(key_type, n)


@functools.cache
def _generated(key_type: str, n: int) -> PrivateKeyType:
    return _MAKERS[key_type]()


def public_pem(
    key: PrivateKeyType | dsa.DSAPrivateKey | x25519.X25519PrivateKey | ed448.Ed448PrivateKey,
) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def verifier(key_type: str, n: int = 0) -> PublicKey:
    return load_public_key_pem(public_pem(private_key(key_type, n)))


# -- the signers, written independently of signet ------------------------------------------


def ecdsa_with(hash_type: type[hashes.HashAlgorithm]) -> Signer:
    def sign(key: PrivateKeyType, message: bytes) -> bytes:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key.sign(message, ec.ECDSA(hash_type()))

    return sign


def ed25519_pure(key: PrivateKeyType, message: bytes) -> bytes:
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key.sign(message)


def ed25519ph(key: PrivateKeyType, message: bytes) -> bytes:
    """RFC 8032 Ed25519ph with pycryptodome, as cosign >= 2.6 signs with Ed25519 keys."""
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signature: bytes = eddsa.new(ECC.import_key(der), "rfc8032").sign(SHA512.new(message))
    return signature


def rsa_with(pad: padding.AsymmetricPadding, hash_type: type[hashes.HashAlgorithm]) -> Signer:
    def sign(key: PrivateKeyType, message: bytes) -> bytes:
        assert isinstance(key, rsa.RSAPrivateKey)
        return key.sign(message, pad, hash_type())

    return sign


rsa_pkcs1v15_sha256 = rsa_with(padding.PKCS1v15(), hashes.SHA256)


@dataclass(frozen=True)
class Case:
    name: str
    key_type: str
    sign: Signer
    scheme: str


CASES = [
    Case("p256-sha256 (every version)", "p256", ecdsa_with(hashes.SHA256), "ecdsa-p256-sha256"),
    Case("p384-sha384 (v2.6+)", "p384", ecdsa_with(hashes.SHA384), "ecdsa-p384-sha384"),
    Case("p384-sha256 (v2.5)", "p384", ecdsa_with(hashes.SHA256), "ecdsa-p384-sha256"),
    Case("p521-sha512 (v2.6+)", "p521", ecdsa_with(hashes.SHA512), "ecdsa-p521-sha512"),
    Case("p521-sha256 (v2.5)", "p521", ecdsa_with(hashes.SHA256), "ecdsa-p521-sha256"),
    Case("ed25519 pure (v2.5)", "ed25519", ed25519_pure, "ed25519"),
    Case("ed25519ph (v2.6+)", "ed25519", ed25519ph, "ed25519ph"),
    Case("rsa-2048", "rsa2048", rsa_pkcs1v15_sha256, "rsa-2048-pkcs1v15-sha256"),
    Case("rsa-4096", "rsa4096", rsa_pkcs1v15_sha256, "rsa-4096-pkcs1v15-sha256"),
]
BY_NAME = pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])


@BY_NAME
def test_the_scheme_verifies_and_is_named(case: Case) -> None:
    signature = case.sign(private_key(case.key_type), MESSAGE)
    assert verifier(case.key_type).verify(MESSAGE, signature) == case.scheme


@BY_NAME
def test_an_edited_message_is_refused(case: Case) -> None:
    signature = case.sign(private_key(case.key_type), MESSAGE)
    key = verifier(case.key_type)
    edited = MESSAGE.replace(b"0" * 64, b"1" + b"0" * 63)
    for message in (edited, MESSAGE + b" ", MESSAGE[:-1], b""):
        assert key.verify(message, signature) is None


@BY_NAME
def test_another_key_of_the_same_type_is_refused(case: Case) -> None:
    signature = case.sign(private_key(case.key_type), MESSAGE)
    assert verifier(case.key_type, n=1).verify(MESSAGE, signature) is None


@BY_NAME
def test_a_truncated_or_extended_signature_is_refused(case: Case) -> None:
    signature = case.sign(private_key(case.key_type), MESSAGE)
    key = verifier(case.key_type)
    for mangled in (
        signature[:-1],
        signature[1:],
        signature[: len(signature) // 2],
        signature + b"\0",
    ):
        assert key.verify(MESSAGE, mangled) is None


@BY_NAME
def test_garbage_is_refused_without_an_exception(case: Case) -> None:
    signature = case.sign(private_key(case.key_type), MESSAGE)
    key = verifier(case.key_type)
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    for garbage in (
        b"",
        b"\x00",
        b"\x30\x00",
        b"\x00" * len(signature),
        b"\xff" * len(signature),
        os.urandom(len(signature)),
        flipped,
        base64.b64encode(signature),  # the annotation text, not the decoded bytes
    ):
        assert key.verify(MESSAGE, garbage) is None


@pytest.mark.parametrize(
    ("key_type", "sign"),
    [
        # A key type only accepts its own hashes: no P-256 signature over SHA-384 or SHA-512 ...
        ("p256", ecdsa_with(hashes.SHA384)),
        ("p256", ecdsa_with(hashes.SHA512)),
        ("p384", ecdsa_with(hashes.SHA512)),
        ("p521", ecdsa_with(hashes.SHA384)),
        # ... nor a weak hash, nor RSA-PSS, which no cosign version makes for a `.sig` layer.
        ("p256", ecdsa_with(hashes.SHA1)),
        ("rsa2048", rsa_with(padding.PKCS1v15(), hashes.SHA512)),
        ("rsa2048", rsa_with(padding.PKCS1v15(), hashes.SHA1)),
        (
            "rsa2048",
            rsa_with(
                padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH), hashes.SHA256
            ),
        ),
    ],
    ids=[
        "p256-sha384",
        "p256-sha512",
        "p384-sha512",
        "p521-sha384",
        "p256-sha1",
        "rsa-sha512",
        "rsa-sha1",
        "rsa-pss",
    ],
)
def test_schemes_the_key_type_does_not_allow_are_refused(key_type: str, sign: Signer) -> None:
    assert verifier(key_type).verify(MESSAGE, sign(private_key(key_type), MESSAGE)) is None


def test_an_ed25519ph_signature_is_not_a_pure_one_and_vice_versa() -> None:
    key = private_key("ed25519")
    # The pure signature over SHA-512(message) is not an Ed25519ph signature over message.
    pure_over_hash = ed25519_pure(key, hashlib.sha512(MESSAGE).digest())
    assert verifier("ed25519").verify(MESSAGE, pure_over_hash) is None
    assert verifier("ed25519").verify(MESSAGE, ed25519ph(key, MESSAGE)) == "ed25519ph"


@pytest.mark.parametrize(
    ("signer_type", "verifier_type"),
    [("p256", "p384"), ("p384", "p521"), ("p521", "p256"), ("rsa2048", "rsa4096")],
)
def test_a_signature_never_verifies_under_another_key_type(
    signer_type: str, verifier_type: str
) -> None:
    case = next(c for c in CASES if c.key_type == signer_type)
    signature = case.sign(private_key(signer_type), MESSAGE)
    assert verifier(verifier_type).verify(MESSAGE, signature) is None


@pytest.mark.parametrize(
    ("key_type", "kind"),
    [
        ("p256", "ecdsa-p256"),
        ("p384", "ecdsa-p384"),
        ("p521", "ecdsa-p521"),
        ("ed25519", "ed25519"),
        ("rsa2048", "rsa-2048"),
        ("rsa4096", "rsa-4096"),
    ],
)
def test_kind_fingerprint_and_short_id(key_type: str, kind: str) -> None:
    key = verifier(key_type)
    der = (
        private_key(key_type)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert key.kind == kind
    assert key.der == der
    assert key.fingerprint == hashlib.sha256(der).hexdigest()
    assert key.short_id == key.fingerprint[:16]
    assert key == verifier(key_type)
    assert key != verifier(key_type, n=1)


# -- keys that are refused --------------------------------------------------------------------


def rsa_public_pem(bits: int) -> bytes:
    """An RSA public key of `bits` bits without generating one (fast for any size)."""
    modulus = (1 << (bits - 1)) | 1 | (0xD1CE << 8)
    key = rsa.RSAPublicNumbers(65537, modulus).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def unknown_curve_pem() -> bytes:
    """A P-256 key re-labelled as secp112r1 (1.3.132.0.6), a curve `cryptography` does not know."""
    der = (
        private_key("p256")
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    p256_oid, secp112r1_oid = bytes.fromhex("06082a8648ce3d030107"), bytes.fromhex("06052b81040006")
    relabelled = bytearray(der.replace(p256_oid, secp112r1_oid))
    relabelled[1] -= 3  # the outer SEQUENCE
    relabelled[3] -= 3  # the AlgorithmIdentifier SEQUENCE
    body = base64.encodebytes(bytes(relabelled))
    return b"-----BEGIN PUBLIC KEY-----\n" + body + b"-----END PUBLIC KEY-----\n"


@pytest.mark.parametrize(
    ("make_pem", "fragments"),
    [
        (
            lambda: public_pem(ec.generate_private_key(ec.SECP224R1())),
            ["secp224r1", "not supported", "P-256"],
        ),
        (
            lambda: public_pem(ec.generate_private_key(ec.SECP256K1())),
            ["secp256k1", "not supported"],
        ),
        (
            lambda: public_pem(ec.generate_private_key(ec.BrainpoolP256R1())),
            ["brainpoolP256r1", "not supported"],
        ),
        (lambda: rsa_public_pem(1024), ["1024", "2048 to 8192"]),
        (lambda: rsa_public_pem(2047), ["2047", "2048 to 8192"]),
        (lambda: rsa_public_pem(8200), ["8200", "2048 to 8192"]),
        (
            lambda: public_pem(dsa.generate_private_key(key_size=2048)),
            ["DSAPublicKey", "not supported"],
        ),
        (
            lambda: public_pem(x25519.X25519PrivateKey.generate()),
            ["X25519PublicKey", "not supported"],
        ),
        (lambda: public_pem(ed448.Ed448PrivateKey.generate()), ["Ed448PublicKey", "not supported"]),
        (unknown_curve_pem, ["unsupported public key", "1.3.132.0.6"]),
        (lambda: b"", ["not a PEM public key"]),
        (lambda: b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA user@host", ["not a PEM public key"]),
        (
            lambda: b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            ["not a PEM public key"],
        ),
    ],
    ids=[
        "p224",
        "secp256k1",
        "brainpool",
        "rsa1024",
        "rsa2047",
        "rsa8200",
        "dsa",
        "x25519",
        "ed448",
        "unknown-curve",
        "empty",
        "ssh",
        "bad-der",
    ],
)
def test_unusable_keys_are_refused_with_a_reason(
    make_pem: Callable[[], bytes], fragments: list[str]
) -> None:
    with pytest.raises(UnusableKey) as caught:
        load_public_key_pem(make_pem())
    for fragment in fragments:
        assert fragment in str(caught.value)


@pytest.mark.parametrize("bits", [2048, 8192])
def test_rsa_size_bounds_are_inclusive(bits: int) -> None:
    assert load_public_key_pem(rsa_public_pem(bits)).kind == f"rsa-{bits}"


# -- the cost of a check, and the shape test that makes most checks free --------------------------


@BY_NAME
def test_the_shape_test_never_rules_out_a_real_signature(case: Case) -> None:
    """Many signatures, so that short integers (leading zero bytes in r or s) occur too."""
    key, public = private_key(case.key_type), verifier(case.key_type)
    for n in range(200 if case.key_type.startswith("p") else 20):
        signature = case.sign(key, MESSAGE + n.to_bytes(2, "big"))
        assert public.check_cost(signature) > 0


@pytest.mark.parametrize(
    ("key_type", "cost"),
    [("p256", 1), ("p384", 2), ("p521", 2), ("ed25519", 2), ("rsa2048", 1)],
)
def test_a_check_costs_one_verification_per_scheme_the_key_type_allows(
    key_type: str, cost: int
) -> None:
    signature = next(c for c in CASES if c.key_type == key_type).sign(
        private_key(key_type), MESSAGE
    )
    assert verifier(key_type).check_cost(signature) == cost


@pytest.mark.parametrize(
    ("signature_type", "key_type"),
    [
        ("p521", "p256"),  # integers too long for the curve
        ("p521", "p384"),
        ("ed25519", "p256"),  # 64 raw bytes, not DER
        ("p256", "ed25519"),  # DER, not 64 bytes
        ("p256", "rsa2048"),  # not the modulus' length
        ("rsa2048", "p256"),
        ("rsa4096", "rsa2048"),
    ],
)
def test_a_signature_of_the_wrong_shape_costs_nothing(signature_type: str, key_type: str) -> None:
    signature = next(c for c in CASES if c.key_type == signature_type).sign(
        private_key(signature_type), MESSAGE
    )
    assert verifier(key_type).check_cost(signature) == 0
    assert verifier(key_type).verify(MESSAGE, signature) is None


@pytest.mark.parametrize(
    "signature",
    [
        b"",
        b"\x30",
        b"\x30\x00",
        b"\x30\x06\x02\x01\x01\x02\x01",  # the second integer runs past the end
        b"\x30\x06\x02\x01\x01\x02\x01\x01\x00",  # trailing bytes
        b"\x30\x81\x06\x02\x01\x01\x02\x01\x01",  # long-form length
        b"\x30\x84\xff\xff\xff\xff\x02\x01\x01",  # a length past any signature
        b"\x31\x06\x02\x01\x01\x02\x01\x01",  # a SET, not a SEQUENCE
        b"\x30\x06\x04\x01\x01\x02\x01\x01",  # an OCTET STRING, not an INTEGER
    ],
)
def test_malformed_der_never_raises(signature: bytes) -> None:
    assert verifier("p256").check_cost(signature) in (0, 1)
    assert verifier("p256").verify(MESSAGE, signature) is None
