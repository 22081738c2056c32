"""The Sigstore bundle (v0.1, v0.2, v0.3): protobuf-JSON, as `sigstore_bundle.proto` defines it.

Only the structure is read here. What is signed is a DSSE envelope (what cosign writes for images)
or a message signature (over an artifact's digest); the verification material says how the signer
is identified: a public-key *hint* (key-based; the hint never chooses a key), or a certificate
(keyless: its transparency-log entries and RFC 3161 timestamps are parsed here and checked by
`signet.keyless.verify`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from signet.attest.dsse import Envelope, decode_base64, parse_envelope
from signet.keyless.tlog import LogEntry, parse_log_entry
from signet.keyless.verify import MAX_LOG_ENTRIES, MAX_TIMESTAMPS
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
_MAX_CHAIN: Final = 8
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
    envelope: Envelope | None
    message: MessageSignature | None
    certificate: bytes | None = None  # the signing (leaf) certificate, DER: keyless
    chain: tuple[bytes, ...] = ()  # certificates after the leaf (v0.1/v0.2 chains): untrusted
    tlog_entries: tuple[LogEntry, ...] = ()
    timestamps: tuple[bytes, ...] = ()  # RFC 3161 signed timestamps, DER

    @property
    def has_certificate(self) -> bool:
        return self.certificate is not None

    @property
    def signature(self) -> bytes:
        """The one signature: the message signature, or the envelope's."""
        if self.message is not None:
            return self.message.signature
        assert self.envelope is not None
        return self.envelope.signatures[0]


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
    certificates: list[bytes] = []
    if kinds == ["publicKey"]:
        key = material["publicKey"]
        hint = key.get("hint") if isinstance(key, dict) else None
        hint = hint if isinstance(hint, str) else None
    elif kinds == ["certificate"]:
        certificates = [_raw_bytes(material["certificate"], "the certificate")]
    else:
        listed = _field(material["x509CertificateChain"], "certificates")
        if not isinstance(listed, list) or not listed:
            raise DeterministicFailure(
                Reason.SIGNATURE_INVALID, "the bundle's certificate chain is empty"
            )
        if len(listed) > _MAX_CHAIN:
            raise DeterministicFailure(
                Reason.LIMIT_EXCEEDED,
                f"the bundle's chain holds more than {_MAX_CHAIN} certificates",
            )
        certificates = [_raw_bytes(c, f"certificate {i}") for i, c in enumerate(listed)]
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
    entries = _list(material.get("tlogEntries"), "tlogEntries", MAX_LOG_ENTRIES)
    stamps = _list(
        _field(material.get("timestampVerificationData"), "rfc3161Timestamps"),
        "rfc3161Timestamps",
        MAX_TIMESTAMPS,
    )
    return Bundle(
        version,
        hint,
        envelope,
        message,
        certificates[0] if certificates else None,
        tuple(certificates[1:]),
        tuple(parse_log_entry(entry) for entry in entries),
        tuple(
            decode_base64(_field(stamp, "signedTimestamp"), f"timestamp {i}")
            for i, stamp in enumerate(stamps)
        ),
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


def _list(value: Any, what: str, limit: int) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise DeterministicFailure(Reason.SIGNATURE_INVALID, f"the bundle's {what} is not a list")
    if len(value) > limit:
        raise DeterministicFailure(
            Reason.LIMIT_EXCEEDED, f"the bundle holds {len(value)} {what}; the limit is {limit}"
        )
    return value


def _raw_bytes(value: Any, what: str) -> bytes:
    return decode_base64(_field(value, "rawBytes"), f"the bundle's {what}")
