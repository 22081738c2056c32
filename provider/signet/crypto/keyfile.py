"""Private keys for `signet sign` and `signet keys generate`, in cosign's key-file format.

cosign stores a private key as a PEM block `ENCRYPTED SIGSTORE PRIVATE KEY` (or the older
`ENCRYPTED COSIGN PRIVATE KEY`) whose body is JSON from go-securesystemslib's `encrypted` package:
scrypt derives a 32-byte key from the password, and nacl/secretbox (XSalsa20-Poly1305) seals the
PKCS#8 DER private key. Only the three scrypt parameter sets cosign accepts are accepted here too,
so a hostile key file cannot make us spend unbounded memory.

Signing uses the scheme `cosign verify --key` checks by default (SHA-256 for every ECDSA curve and
RSA, pure Ed25519), so what Signet signs verifies in every cosign version without extra flags.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from typing import Final, Protocol

import nacl.exceptions
import nacl.secret
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from signet.crypto.keys import PublicKey, UnusableKey, load_public_key_pem

__all__ = [
    "KEY_TYPES",
    "PrivateKey",
    "Signer",
    "encrypt_cosign_key",
    "generate",
    "load_private_key",
]

_PEM_TYPES: Final = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
_SCRYPT_PARAMS: Final = {(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)}
_DEFAULT_SCRYPT: Final = (65536, 8, 1)
_SCRYPT_MAXMEM: Final = 256 * 1024 * 1024

KEY_TYPES: Final = ("p256", "p384", "p521", "ed25519", "rsa2048", "rsa3072", "rsa4096")

_PrivateKeyTypes = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


class Signer(Protocol):
    """What `signet sign` signs with: a `PrivateKey`, or a key on a PKCS#11 token."""

    @property
    def public(self) -> PublicKey: ...

    def sign(self, message: bytes) -> tuple[bytes, str]: ...


@dataclass(frozen=True, slots=True)
class PrivateKey:
    public: PublicKey
    _key: _PrivateKeyTypes = field(repr=False)

    def sign(self, message: bytes) -> tuple[bytes, str]:
        """Sign `message`; return the raw signature and the scheme name used."""
        key = self._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(message, ec.ECDSA(hashes.SHA256())), f"{self.public.kind}-sha256"
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(message), "ed25519"
        signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return signature, f"{self.public.kind}-pkcs1v15-sha256"

    def pkcs8_der(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def generate(key_type: str = "p256") -> PrivateKey:
    if key_type == "p256":
        key: _PrivateKeyTypes = ec.generate_private_key(ec.SECP256R1())
    elif key_type == "p384":
        key = ec.generate_private_key(ec.SECP384R1())
    elif key_type == "p521":
        key = ec.generate_private_key(ec.SECP521R1())
    elif key_type == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif key_type.startswith("rsa") and key_type in KEY_TYPES:
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    else:
        raise UnusableKey(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")
    return _wrap(key)


def load_private_key(pem: bytes, password: bytes) -> PrivateKey:
    """Load a cosign key file (encrypted) or an unencrypted PKCS#8 / SEC1 / PKCS#1 PEM key."""
    text = pem.decode("ascii", errors="replace")
    for pem_type in _PEM_TYPES:
        begin = f"-----BEGIN {pem_type}-----"
        if begin in text:
            body = text.split(begin, 1)[1].split(f"-----END {pem_type}-----", 1)[0]
            try:
                document = base64.b64decode("".join(body.split()))
            except (binascii.Error, ValueError) as exc:
                raise UnusableKey(f"the {pem_type} block is not valid base64: {exc}") from exc
            return _wrap_loaded(_decrypt(document, password))
    try:
        loaded = serialization.load_pem_private_key(pem, password=password or None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise UnusableKey(f"not a cosign or PEM private key: {exc}") from exc
    return _wrap_loaded(loaded)


def encrypt_cosign_key(key: PrivateKey, password: bytes) -> bytes:
    """The PEM cosign writes for `cosign generate-key-pair` (SIGSTORE type, standard scrypt)."""
    n, r, p = _DEFAULT_SCRYPT
    salt = secrets.token_bytes(32)
    nonce = secrets.token_bytes(24)
    box = nacl.secret.SecretBox(_scrypt(password, salt, n, r, p))
    ciphertext = box.encrypt(key.pkcs8_der(), nonce).ciphertext
    document = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": n, "r": r, "p": p},
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    body = base64.encodebytes(json.dumps(document).encode()).decode().replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    pem_type = _PEM_TYPES[0]
    return (
        "\n".join([f"-----BEGIN {pem_type}-----", *lines, f"-----END {pem_type}-----"]) + "\n"
    ).encode()


def public_pem(key: PrivateKey) -> bytes:
    return serialization.load_der_public_key(key.public.der).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def password_from_env() -> bytes:
    """cosign reads the key password from COSIGN_PASSWORD; an empty password is legal."""
    return os.environ.get("COSIGN_PASSWORD", "").encode()


def _decrypt(document_bytes: bytes, password: bytes) -> object:
    try:
        document = json.loads(document_bytes)
        kdf, cipher = document["kdf"], document["cipher"]
        params = kdf["params"]
        n, r, p = int(params["N"]), int(params["r"]), int(params["p"])
        salt = base64.b64decode(kdf["salt"])
        nonce = base64.b64decode(cipher["nonce"])
        ciphertext = base64.b64decode(document["ciphertext"])
        names = (kdf["name"], cipher["name"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UnusableKey(f"the encrypted key's JSON is malformed: {exc}") from exc
    if names != ("scrypt", "nacl/secretbox"):
        raise UnusableKey(f"unsupported key encryption {names[0]}/{names[1]}")
    if (n, r, p) not in _SCRYPT_PARAMS:
        raise UnusableKey(f"scrypt parameters N={n} r={r} p={p} are not ones cosign accepts")
    try:
        der = nacl.secret.SecretBox(_scrypt(password, salt, n, r, p)).decrypt(ciphertext, nonce)
    except (nacl.exceptions.CryptoError, ValueError) as exc:
        raise UnusableKey("cannot decrypt the key: wrong password (COSIGN_PASSWORD)?") from exc
    try:
        return serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise UnusableKey(f"the decrypted key is not a usable PKCS#8 key: {exc}") from exc


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=32)


def _wrap_loaded(key: object) -> PrivateKey:
    if not isinstance(
        key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    ):
        raise UnusableKey(f"{type(key).__name__} keys are not supported (ECDSA, Ed25519, RSA)")
    return _wrap(key)


def _wrap(key: _PrivateKeyTypes) -> PrivateKey:
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return PrivateKey(load_public_key_pem(pem), key)
