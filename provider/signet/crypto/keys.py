"""Public keys and the signature schemes each key type may have been used with.

Which hash a cosign signature uses depends on the key *and the cosign version that signed*
(cosign <= 2.5 signs every ECDSA key with SHA-256 and Ed25519 keys with pure Ed25519; cosign >= 2.6
signs P-384 with SHA-384, P-521 with SHA-512 and Ed25519 with Ed25519ph). A verifier that serves
images signed by several cosign versions therefore tries each scheme the key type allows, and
reports the one that matched. No scheme lets one key's signature verify under another key type.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

__all__ = ["PublicKey", "UnusableKey", "load_public_key_der", "load_public_key_pem"]

MIN_RSA_BITS: Final = 2048
MAX_RSA_BITS: Final = 8192
_CURVES: Final = {"secp256r1": 256, "secp384r1": 384, "secp521r1": 521}
_ECDSA_HASHES: Final = {
    256: (hashes.SHA256,),
    384: (hashes.SHA384, hashes.SHA256),
    521: (hashes.SHA512, hashes.SHA256),
}
_HASH_NAMES: Final = {hashes.SHA256: "sha256", hashes.SHA384: "sha384", hashes.SHA512: "sha512"}


class UnusableKey(ValueError):
    """A key that cannot be used: not PEM, an unsupported type or size. The message says which."""


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A trusted public key. `fingerprint` is the SHA-256 of its DER SubjectPublicKeyInfo."""

    der: bytes
    kind: str  # "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "ed25519", "rsa-2048", ...
    _key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey = field(
        repr=False, compare=False
    )

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        """Pickled as its DER (to reach a verification worker process), and loaded again."""
        return (load_public_key_der, (self.der,))

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.der).hexdigest()

    @property
    def short_id(self) -> str:
        """The default key id: the first 16 hex characters of the fingerprint."""
        return self.fingerprint[:16]

    def check_cost(self, signature: bytes) -> int:
        """How many verifications checking `signature` against this key takes: one per scheme
        the key type allows, or 0 when the signature's shape rules the key out (an ECDSA
        signature is a DER pair of integers no longer than the curve's, Ed25519 is 64 bytes, an
        RSA signature is as long as the modulus). The shape test never rules out a signature
        the key could verify."""
        key = self._key
        if isinstance(key, ec.EllipticCurvePublicKey):
            fits = _der_ecdsa_fits(signature, (key.curve.key_size + 7) // 8)
            return len(_ECDSA_HASHES[key.curve.key_size]) if fits else 0
        if isinstance(key, ed25519.Ed25519PublicKey):
            return 2 if len(signature) == 64 else 0  # pure Ed25519, then Ed25519ph
        return 1 if len(signature) == (key.key_size + 7) // 8 else 0

    def verify(self, message: bytes, signature: bytes) -> str | None:
        """Return the name of the scheme under which `signature` is valid for `message`, or None."""
        if self.check_cost(signature) == 0:
            return None
        key = self._key
        if isinstance(key, ec.EllipticCurvePublicKey):
            for hash_type in _ECDSA_HASHES[key.curve.key_size]:
                try:
                    key.verify(signature, message, ec.ECDSA(hash_type()))
                except InvalidSignature:
                    continue
                return f"{self.kind}-{_HASH_NAMES[hash_type]}"
            return None
        if isinstance(key, ed25519.Ed25519PublicKey):
            try:
                key.verify(signature, message)
            except InvalidSignature:
                return "ed25519ph" if _verify_ed25519ph(self.der, message, signature) else None
            return "ed25519"
        try:
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return None
        return f"{self.kind}-pkcs1v15-sha256"


def _der_ecdsa_fits(signature: bytes, curve_bytes: int) -> bool:
    """Whether `signature` is a DER SEQUENCE of two INTEGERs of at most `curve_bytes` (+1 for a
    sign byte) each, taking up the whole signature."""
    view = memoryview(signature)
    body = _der_item(view, 0x30)
    if body is None or body[1] != len(view):
        return False
    offset = body[0]
    for _ in range(2):
        item = _der_item(view[offset:], 0x02)
        if item is None or item[1] - item[0] > curve_bytes + 1:
            return False
        offset += item[1]
    return offset == len(view)


def _der_item(view: memoryview, tag: int) -> tuple[int, int] | None:
    """(start of content, end of item) of the DER item at the start of `view`, if it is `tag`."""
    if len(view) < 2 or view[0] != tag:
        return None
    length, start = view[1], 2
    if length & 0x80:
        octets = length & 0x7F
        if octets == 0 or octets > 2 or len(view) < 2 + octets:
            return None
        length, start = int.from_bytes(view[2 : 2 + octets], "big"), 2 + octets
    end = start + length
    return (start, end) if end <= len(view) else None


def _verify_ed25519ph(der: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 8032 Ed25519ph: Ed25519 over SHA-512(message) with the "ph" domain separation."""
    if len(signature) != 64:
        return False
    # Imported at the first Ed25519 key, not at start: pycryptodome loads cffi's C parser
    # (~3 MiB in every process that imports it) and most clusters trust no Ed25519 key.
    from Crypto.Hash import SHA512  # noqa: PLC0415
    from Crypto.PublicKey import ECC  # noqa: PLC0415
    from Crypto.Signature import eddsa  # noqa: PLC0415

    verifier = eddsa.new(ECC.import_key(der), "rfc8032")
    try:
        verifier.verify(SHA512.new(message), signature)
    except ValueError:
        return False
    return True


def load_public_key_der(der: bytes) -> PublicKey:
    """Load a DER SubjectPublicKeyInfo (what `PublicKey.der` holds)."""
    body = base64.encodebytes(der).decode()
    return load_public_key_pem(
        f"-----BEGIN PUBLIC KEY-----\n{body}-----END PUBLIC KEY-----\n".encode()
    )


def load_public_key_pem(pem: bytes) -> PublicKey:
    """Load a PEM `PUBLIC KEY` (what `cosign generate-key-pair` writes as cosign.pub)."""
    try:
        key = serialization.load_pem_public_key(pem)
    except UnsupportedAlgorithm as exc:  # e.g. an EC curve `cryptography` does not know
        raise UnusableKey(f"unsupported public key: {_first_line(exc)}") from exc
    except (ValueError, TypeError) as exc:
        raise UnusableKey(f"not a PEM public key: {_first_line(exc)}") from exc
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if isinstance(key, ec.EllipticCurvePublicKey):
        bits = _CURVES.get(key.curve.name)
        if bits is None:
            raise UnusableKey(
                f"ECDSA curve {key.curve.name} is not supported (P-256, P-384, P-521)"
            )
        return PublicKey(der, f"ecdsa-p{bits}", key)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return PublicKey(der, "ed25519", key)
    if isinstance(key, rsa.RSAPublicKey):
        if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
            raise UnusableKey(
                f"RSA keys must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits, not {key.key_size}"
            )
        return PublicKey(der, f"rsa-{key.key_size}", key)
    raise UnusableKey(f"{type(key).__name__} keys are not supported (ECDSA, Ed25519, RSA)")


def _first_line(exc: BaseException) -> str:
    """The library's message without its FAQ pointer (`… See https://… for more details.`)."""
    line = (str(exc).splitlines() or [type(exc).__name__])[0]
    return line.split(" See https://", 1)[0].rstrip(". ") or type(exc).__name__
