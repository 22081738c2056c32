"""The Sigstore trusted root (`trusted_root.json`, protobuf-JSON `TrustedRoot` v0.1).

What a keyless signature may chain to: Fulcio certificate authorities, transparency logs (Rekor),
certificate-transparency logs (for SCTs) and timestamp authorities, each with the period it is
trusted for. Read once, from a file the trust config names; never fetched on the admission path.
An entry whose key or certificates cannot be loaded is an error naming it, not a silent skip.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from signet.model.json_object import json_object
from signet.reasons import DeterministicFailure, Reason

__all__ = [
    "TRUSTED_ROOT_MEDIA_TYPES",
    "Authority",
    "LogKey",
    "TrustedRoot",
    "TrustedRootError",
    "Validity",
    "parse_trusted_root",
]

TRUSTED_ROOT_MEDIA_TYPES: Final = frozenset(
    {
        "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "application/vnd.dev.sigstore.trustedroot.v0.2+json",
    }
)
_MAX_ENTRIES: Final = 64
# keyDetails -> the hash the log signs with (None: Ed25519, which hashes internally).
_KEY_HASHES: Final[dict[str, type[hashes.HashAlgorithm] | None]] = {
    "PKIX_ECDSA_P256_SHA_256": hashes.SHA256,
    "PKIX_ECDSA_P384_SHA_384": hashes.SHA384,
    "PKIX_ECDSA_P521_SHA_512": hashes.SHA512,
    "PKIX_ED25519": None,
    "PKIX_RSA_PKCS1V15_2048_SHA256": hashes.SHA256,
    "PKIX_RSA_PKCS1V15_3072_SHA256": hashes.SHA256,
    "PKIX_RSA_PKCS1V15_4096_SHA256": hashes.SHA256,
    "PKCS1_RSA_PKCS1V5": hashes.SHA256,
    "PKIX_RSA_PKCS1V5": hashes.SHA256,
}

PublicKeyTypes = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey


class TrustedRootError(ValueError):
    """The trusted root is unusable; the message names the entry and the problem."""


@dataclass(frozen=True, slots=True)
class Validity:
    """When an authority or key is trusted: from `start`, through `end` inclusive (open if None)."""

    start: datetime
    end: datetime | None = None

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment and (self.end is None or moment <= self.end)


@dataclass(frozen=True, slots=True)
class Authority:
    """A certificate authority (Fulcio) or timestamp authority: its chain, leaf-most first."""

    name: str
    uri: str
    chain: tuple[x509.Certificate, ...]
    validity: Validity


@dataclass(frozen=True, slots=True)
class LogKey:
    """A transparency log's (Rekor's) or CT log's signing key."""

    base_url: str
    log_id: bytes
    key: PublicKeyTypes
    key_details: str
    validity: Validity

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether `signature` over `message` verifies under this key, with its fixed hash."""
        hash_type = _KEY_HASHES[self.key_details]
        try:
            if isinstance(self.key, ed25519.Ed25519PublicKey):
                self.key.verify(signature, message)
            elif isinstance(self.key, ec.EllipticCurvePublicKey):
                assert hash_type is not None
                self.key.verify(signature, message, ec.ECDSA(hash_type()))
            else:
                assert hash_type is not None
                self.key.verify(signature, message, padding.PKCS1v15(), hash_type())
        except (InvalidSignature, ValueError):
            return False
        return True

    @property
    def origin(self) -> str:
        """The checkpoint origin of a Rekor v2 log: its base URL without the scheme."""
        return self.base_url.split("://", 1)[-1].rstrip("/")


@dataclass(frozen=True, slots=True)
class TrustedRoot:
    certificate_authorities: tuple[Authority, ...]
    tlogs: tuple[LogKey, ...] = ()
    ctlogs: tuple[LogKey, ...] = ()
    timestamp_authorities: tuple[Authority, ...] = ()
    # The file's bytes, and their SHA-256 (part of the trust config's fingerprint).
    raw: bytes = field(default=b"", compare=False, repr=False)
    fingerprint: str = field(default="", compare=False)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        # Sent to verification worker processes as its bytes (certificates do not pickle),
        # and parsed there once per distinct root.
        return (_parsed, (self.raw,))

    def tlog(self, log_id: bytes) -> LogKey | None:
        return next((k for k in self.tlogs if k.log_id == log_id), None)

    def ctlog(self, log_id: bytes) -> LogKey | None:
        return next((k for k in self.ctlogs if k.log_id == log_id), None)


def parse_trusted_root(raw: bytes) -> TrustedRoot:
    """Parse a trusted root; TrustedRootError names what is wrong."""
    try:
        document = json_object(raw, "trusted root", Reason.UNSUPPORTED_FORMAT)
    except DeterministicFailure as failure:
        raise TrustedRootError(failure.message) from None
    media_type = document.get("mediaType")
    if not isinstance(media_type, str) or media_type not in TRUSTED_ROOT_MEDIA_TYPES:
        raise TrustedRootError(f"mediaType {media_type!r} is not a known trusted root version")
    return TrustedRoot(
        certificate_authorities=_list(document, "certificateAuthorities", _authority),
        tlogs=_list(document, "tlogs", _log_key),
        ctlogs=_list(document, "ctlogs", _log_key),
        timestamp_authorities=_list(document, "timestampAuthorities", _authority),
        raw=raw,
        fingerprint=hashlib.sha256(raw).hexdigest(),
    )


@functools.lru_cache(maxsize=8)
def _parsed(raw: bytes) -> TrustedRoot:
    return parse_trusted_root(raw)


def _list(document: dict[str, Any], name: str, parse: Any) -> tuple[Any, ...]:
    items = document.get(name, [])
    if not isinstance(items, list):
        raise TrustedRootError(f"{name} is not a list")
    if len(items) > _MAX_ENTRIES:
        raise TrustedRootError(f"{name} holds {len(items)} entries; the limit is {_MAX_ENTRIES}")
    return tuple(parse(item, f"{name}[{i}]") for i, item in enumerate(items))


def _authority(item: Any, at: str) -> Authority:
    item = _mapping(item, at)
    certificates = _mapping(item.get("certChain"), f"{at}.certChain").get("certificates")
    if not isinstance(certificates, list) or not certificates:
        raise TrustedRootError(f"{at}.certChain.certificates is empty")
    chain = []
    for i, certificate in enumerate(certificates):
        der = _bytes(_mapping(certificate, f"{at}.certChain.certificates[{i}]"), "rawBytes", at)
        try:
            chain.append(x509.load_der_x509_certificate(der))
        except (ValueError, x509.InvalidVersion) as exc:
            raise TrustedRootError(
                f"{at}.certChain.certificates[{i}]: not a certificate: {exc}"
            ) from None
    subject = item.get("subject")
    name = ""
    if isinstance(subject, dict):
        name = "/".join(
            str(v) for v in (subject.get("organization"), subject.get("commonName")) if v
        )
    uri = item.get("uri")
    return Authority(name, uri if isinstance(uri, str) else "", tuple(chain), _validity(item, at))


def _log_key(item: Any, at: str) -> LogKey:
    item = _mapping(item, at)
    base_url = item.get("baseUrl")
    if not isinstance(base_url, str) or not base_url:
        raise TrustedRootError(f"{at}.baseUrl is missing")
    public = _mapping(item.get("publicKey"), f"{at}.publicKey")
    details = public.get("keyDetails")
    if not isinstance(details, str) or details not in _KEY_HASHES:
        raise TrustedRootError(f"{at}.publicKey.keyDetails {details!r} is not supported")
    der = _bytes(public, "rawBytes", f"{at}.publicKey")
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise TrustedRootError(f"{at}.publicKey: not a usable public key: {exc}") from None
    if not isinstance(key, (ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey, rsa.RSAPublicKey)):
        raise TrustedRootError(f"{at}.publicKey: a {type(key).__name__} is not supported")
    log_id = _bytes(_mapping(item.get("logId"), f"{at}.logId"), "keyId", f"{at}.logId")
    return LogKey(base_url, log_id, key, str(details), _validity(public, f"{at}.publicKey"))


def _validity(item: dict[str, Any], at: str) -> Validity:
    valid_for = item.get("validFor")
    if not isinstance(valid_for, dict) or valid_for.get("start") is None:
        raise TrustedRootError(f"{at}.validFor.start is missing: from when is it trusted?")
    start = _time(valid_for["start"], f"{at}.validFor.start")
    end = (
        _time(valid_for["end"], f"{at}.validFor.end") if valid_for.get("end") is not None else None
    )
    return Validity(start, end)


def _time(value: Any, at: str) -> datetime:
    if not isinstance(value, str):
        raise TrustedRootError(f"{at} is not a timestamp")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise TrustedRootError(f"{at} {value!r} is not an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise TrustedRootError(f"{at} {value!r} has no time zone")
    return moment.astimezone(UTC)


def _mapping(value: Any, at: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TrustedRootError(f"{at} is not an object")
    return value


def _bytes(item: dict[str, Any], name: str, at: str) -> bytes:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise TrustedRootError(f"{at}.{name} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise TrustedRootError(f"{at}.{name} is not base64") from None
