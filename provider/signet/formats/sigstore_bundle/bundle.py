"""The Sigstore bundle (v0.1, v0.2, v0.3): protobuf-JSON, as `sigstore_bundle.proto` defines it.

Only the structure is read here. What is signed is a DSSE envelope (what cosign writes for images)
or a message signature (over an artifact's digest); the verification material says how the signer
is identified: a public-key *hint* (key-based; the hint never chooses a key), or a certificate
(keyless). Transparency-log entries and timestamps are counted, not yet checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from signet.attest.dsse import Envelope, decode_base64, parse_envelope
from signet.model.json_object import json_object
from signet.reasons import DeterministicFailure, Reason

__all__ = [
    "BUNDLE_MEDIA_TYPES",
    "MAX_BUNDLE_SIZE",
    "Bundle",
    "MessageSignature",
    "is_bundle_media_type",
    "parse_bundle",
]

BUNDLE_MEDIA_TYPES: Final = {
    "application/vnd.dev.sigstore.bundle+json;version=0.1": "0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2": "0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3": "0.3",
    "application/vnd.dev.sigstore.bundle.v0.3+json": "0.3",
}
_BUNDLE_PREFIX: Final = "application/vnd.dev.sigstore.bundle"
# A key-based bundle is ~1 KiB, a keyless one with an inclusion proof ~15 KiB; provenance
# attestations of large builds reach a few hundred KiB.
MAX_BUNDLE_SIZE: Final = 1024 * 1024
_MAX_JSON_ITEMS: Final = 64 * 1024
_DIGEST_ALGORITHMS: Final = {"SHA2_256": "sha256", "SHA2_384": "sha384", "SHA2_512": "sha512"}


@dataclass(frozen=True, slots=True)
class MessageSignature:
    algorithm: str  # "sha256", ...
    digest: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class Bundle:
    version: str
    key_hint: str | None
    has_certificate: bool
    envelope: Envelope | None
    message: MessageSignature | None
    tlog_entries: int
    timestamps: int


def is_bundle_media_type(media_type: object) -> bool:
    return isinstance(media_type, str) and media_type.startswith(_BUNDLE_PREFIX)


def parse_bundle(raw: bytes) -> Bundle:
    """Parse a bundle. Malformed is SIGNATURE_INVALID; a version Signet does not know is
    UNSUPPORTED_FORMAT; too big or too many JSON values is LIMIT_EXCEEDED (before parsing)."""
    if len(raw) > MAX_BUNDLE_SIZE:
        raise DeterministicFailure(
            Reason.LIMIT_EXCEEDED, f"the bundle is {len(raw)} bytes; the limit is {MAX_BUNDLE_SIZE}"
        )
    if raw.count(b"{") + raw.count(b"[") + raw.count(b",") > _MAX_JSON_ITEMS:
        raise DeterministicFailure(Reason.LIMIT_EXCEEDED, "the bundle holds too many JSON values")
    document = json_object(raw, "bundle", Reason.SIGNATURE_INVALID)
    media_type = document.get("mediaType")
    version = BUNDLE_MEDIA_TYPES.get(media_type) if isinstance(media_type, str) else None
    if version is None:
        raise DeterministicFailure(
            Reason.UNSUPPORTED_FORMAT, f"the bundle's media type {media_type!r} is not known"
        )
    material = document.get("verificationMaterial")
    if not isinstance(material, dict):
        raise DeterministicFailure(
            Reason.SIGNATURE_INVALID, "the bundle has no verificationMaterial"
        )
    kinds = [k for k in ("publicKey", "certificate", "x509CertificateChain") if k in material]
    if len(kinds) != 1:
        raise DeterministicFailure(
            Reason.SIGNATURE_INVALID,
            "the bundle's verificationMaterial must hold exactly one of publicKey, certificate "
            f"and x509CertificateChain, not {kinds or 'none'}",
        )
    hint = None
    if kinds == ["publicKey"]:
        key = material["publicKey"]
        hint = key.get("hint") if isinstance(key, dict) else None
        hint = hint if isinstance(hint, str) else None
    contents = [k for k in ("dsseEnvelope", "messageSignature") if k in document]
    if len(contents) != 1:
        raise DeterministicFailure(
            Reason.SIGNATURE_INVALID,
            "the bundle must hold exactly one of dsseEnvelope and messageSignature",
        )
    envelope = message = None
    if contents == ["dsseEnvelope"]:
        envelope = parse_envelope(document["dsseEnvelope"], max_payload=MAX_BUNDLE_SIZE)
        if len(envelope.signatures) != 1:
            raise DeterministicFailure(
                Reason.SIGNATURE_INVALID,
                f"a bundle's DSSE envelope holds exactly one signature, not "
                f"{len(envelope.signatures)}",
            )
    else:
        message = _message_signature(document["messageSignature"])
    return Bundle(
        version,
        hint,
        kinds != ["publicKey"],
        envelope,
        message,
        _count(material.get("tlogEntries")),
        _count(_field(material.get("timestampVerificationData"), "rfc3161Timestamps")),
    )


def _message_signature(value: Any) -> MessageSignature:
    if not isinstance(value, dict):
        raise DeterministicFailure(Reason.SIGNATURE_INVALID, "messageSignature is not an object")
    digest = value.get("messageDigest")
    name = _field(digest, "algorithm")
    algorithm = _DIGEST_ALGORITHMS.get(name) if isinstance(name, str) else None
    if algorithm is None:
        raise DeterministicFailure(
            Reason.UNSUPPORTED_FORMAT, "the message signature's digest algorithm is not known"
        )
    return MessageSignature(
        algorithm,
        decode_base64(_field(digest, "digest"), "the message digest"),
        decode_base64(value.get("signature"), "the message signature"),
    )


def _field(parent: Any, name: str) -> Any:
    return parent.get(name) if isinstance(parent, dict) else None


def _count(value: Any) -> int:
    return len(value) if isinstance(value, list) else 0
