"""Whether a transparency-log entry's body describes exactly the signature being verified.

A log proves that it saw a body; the body must then name this signature, this signer and this
content, or a valid entry for something else could be passed off for it (CVE-2022-36056).

1. The body is JSON (at most 128 KiB, no duplicate keys) naming a `kind` and `apiVersion`; the
   entry's declared kindVersion, if any, is the same. A kind this module does not know is
   UNSUPPORTED_FORMAT; every mismatch below is SIGNATURE_INVALID, saying what differs.
2. hashedrekord 0.0.1 (Rekor v1, a message signature): `data.hash` is the artifact's digest (same
   algorithm), `signature.content` the signature, `signature.publicKey.content` the PEM of the
   signing certificate (or, key-based, of the public key).
3. dsse 0.0.1 (Rekor v1, a DSSE envelope of one signature): `payloadHash` is the SHA-256 of the
   payload, and `signatures` is exactly that one signature with the signer's PEM as `verifier`.
   `envelopeHash` is not compared: the envelope's JSON is not canonical (as sigstore-python).
4. intoto 0.0.2 (Rekor v1, a DSSE envelope): `content.payloadHash` is the SHA-256 of the payload,
   `content.envelope.payloadType` (when given) the envelope's, and its `signatures` exactly the
   one signature (base64 of its base64, as Rekor stores it) with the signer's PEM as `publicKey`.
5. hashedrekord 0.0.2 (Rekor v2): `spec.hashedRekordV002` holds `data` (algorithm, digest),
   `signature.content` and `signature.verifier` (keyDetails and the certificate's DER, or a
   public key's). keyDetails is what the signer's key signs with; the digest is the artifact's
   for a message signature, and for a DSSE envelope the hash (of keyDetails) of its PAE
   (rekor-v2-spec 6.1.4). dsse 0.0.2 was withdrawn from Rekor v2 and is not accepted.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from signet.attest.dsse import Envelope, decode_base64
from signet.reasons import DeterministicFailure, Reason

__all__ = ["MAX_BODY_SIZE", "SignedContent", "check_body"]

MAX_BODY_SIZE: Final = 128 * 1024
_HEX: Final = re.compile(r"(?:[0-9a-fA-F]{2})+")
_V1_DIGESTS: Final = frozenset({"sha256", "sha384", "sha512"})
_V2_DIGESTS: Final = {"SHA2_256": "sha256", "SHA2_384": "sha384", "SHA2_512": "sha512"}
_EC_DETAILS: Final = {
    "secp256r1": "PKIX_ECDSA_P256_SHA_256",
    "secp384r1": "PKIX_ECDSA_P384_SHA_384",
    "secp521r1": "PKIX_ECDSA_P521_SHA_512",
}
# What each signing algorithm hashes with (hashedrekord 0.0.2 logs prehashed signatures only).
_DETAILS_DIGEST: Final = {
    "PKIX_ECDSA_P256_SHA_256": "SHA2_256",
    "PKIX_ECDSA_P384_SHA_384": "SHA2_384",
    "PKIX_ECDSA_P521_SHA_512": "SHA2_512",
    "PKIX_ED25519_PH": "SHA2_512",
    **{
        f"PKIX_RSA_{padding}_{bits}_SHA256": "SHA2_256"
        for padding in ("PKCS1V15", "PSS")
        for bits in (2048, 3072, 4096)
    },
}


@dataclass(frozen=True, slots=True)
class SignedContent:
    """What a log entry must describe; built by the caller from the evidence it verifies."""

    signature: bytes  # the message signature, or the DSSE envelope's single signature
    certificate_der: bytes  # the signing (leaf) certificate, DER
    message_digest: tuple[str, bytes] | None  # ("sha256", digest) of the artifact
    envelope: Envelope | None  # the DSSE envelope, for DSSE content
    # A key-based signature has no certificate: its SubjectPublicKeyInfo (DER) is the signer.
    public_key_der: bytes | None = None


def check_body(body: bytes, declared: tuple[str, str] | None, content: SignedContent) -> bool:
    """Fail unless `body` describes `content`; whether it is a Rekor v2 entry."""
    document = _parse(body)
    kind, version = document.get("kind"), document.get("apiVersion")
    if not isinstance(kind, str) or not isinstance(version, str):
        raise _mismatch("the log entry's body names no kind and apiVersion")
    if declared is not None and declared != (kind, version):
        raise _mismatch(
            f"the log entry is declared {_shown(declared[0])} {_shown(declared[1])}, but its "
            f"body is {_shown(kind)} {_shown(version)}"
        )
    check = _CHECKS.get((kind, version))
    if check is None:
        raise DeterministicFailure(
            Reason.UNSUPPORTED_FORMAT,
            f"log entries of kind {_shown(kind)} {_shown(version)} are not supported",
        )
    check(document, content)
    return (kind, version) == ("hashedrekord", "0.0.2")


def _hashedrekord_v001(document: dict[str, Any], content: SignedContent) -> None:
    if content.message_digest is None:
        raise _mismatch("the log entry is a hashedrekord (a message signature), not a DSSE entry")
    algorithm = _text(document, "spec.data.hash.algorithm")
    name, digest = content.message_digest
    if algorithm not in _V1_DIGESTS or algorithm != name:
        raise _mismatch(
            f"the log entry records a {_shown(algorithm)} digest; the artifact's is {name}"
        )
    if _hex(document, "spec.data.hash.value") != digest:
        raise _mismatch("the log entry records the digest of another artifact")
    if _base64(document, "spec.signature.content") != content.signature:
        raise _mismatch("the log entry records another signature")
    _check_pem_signer(_base64(document, "spec.signature.publicKey.content"), content)


def _dsse_v001(document: dict[str, Any], content: SignedContent) -> None:
    envelope = _one_signature_envelope(content, "dsse")
    _check_payload_hash(document, "spec.payloadHash", envelope)
    signature = _only_item(document, "spec.signatures")
    if _base64(signature, "signature") != content.signature:
        raise _mismatch("the log entry records another DSSE signature")
    _check_pem_signer(_base64(signature, "verifier"), content)


def _intoto_v002(document: dict[str, Any], content: SignedContent) -> None:
    envelope = _one_signature_envelope(content, "intoto")
    _check_payload_hash(document, "spec.content.payloadHash", envelope)
    logged = _field(document, "spec.content.envelope")
    if "payloadType" in logged and logged["payloadType"] != envelope.payload_type:
        raise _mismatch("the log entry records another DSSE payload type")
    signature = _only_item(logged, "signatures")
    # Rekor stores the envelope's base64 signature text, base64-encoded again.
    logged = _base64(signature, "sig").decode("ascii", "replace")
    if _decoded(logged) != content.signature:
        raise _mismatch("the log entry records another DSSE signature")
    _check_pem_signer(_base64(signature, "publicKey"), content)


def _hashedrekord_v002(document: dict[str, Any], content: SignedContent) -> None:
    spec = _field(document, "spec")
    if set(spec) != {"hashedRekordV002"}:
        raise _mismatch("the log entry's spec is not exactly a hashedRekordV002")
    entry = spec["hashedRekordV002"]
    details = _text(entry, "signature.verifier.keyDetails")
    if details not in _signer_details(content) or details not in _DETAILS_DIGEST:
        raise _mismatch(f"the log entry's keyDetails {_shown(details)} are not the signing key's")
    algorithm = _text(entry, "data.algorithm")
    logged_digest = _base64(entry, "data.digest")
    if content.envelope is not None:
        envelope = _one_signature_envelope(content, "hashedrekord 0.0.2")
        expected_algorithm = _DETAILS_DIGEST[details]
        expected = hashlib.new(_V2_DIGESTS[expected_algorithm], envelope.signed_bytes).digest()
        what = "the DSSE envelope's PAE"
    elif content.message_digest is not None:
        name, expected = content.message_digest
        expected_algorithm = next((k for k, v in _V2_DIGESTS.items() if v == name), name)
        what = "the artifact"
    else:
        raise _mismatch("there is neither an artifact digest nor a DSSE envelope to compare")
    if algorithm != expected_algorithm:
        raise _mismatch(
            f"the log entry records a {_shown(algorithm)} digest, not {expected_algorithm}"
        )
    if logged_digest != expected:
        raise _mismatch(f"the log entry records a digest that is not that of {what}")
    if _base64(entry, "signature.content") != content.signature:
        raise _mismatch("the log entry records another signature")
    verifier = _field(entry, "signature.verifier")
    kinds = {"x509Certificate", "publicKey"} & set(verifier)
    if len(kinds) != 1:
        raise _mismatch("the log entry's verifier is not one certificate or one public key")
    kind = kinds.pop()
    signer = _base64(verifier, f"{kind}.rawBytes")
    if kind == "x509Certificate":
        if content.public_key_der is not None or signer != content.certificate_der:
            raise _mismatch("the log entry records another signing certificate")
    elif content.public_key_der is None or signer != content.public_key_der:
        raise _mismatch("the log entry records another public key")


_CHECKS: Final[dict[tuple[str, str], Callable[[dict[str, Any], SignedContent], None]]] = {
    ("hashedrekord", "0.0.1"): _hashedrekord_v001,
    ("dsse", "0.0.1"): _dsse_v001,
    ("intoto", "0.0.2"): _intoto_v002,
    ("hashedrekord", "0.0.2"): _hashedrekord_v002,
}


def _one_signature_envelope(content: SignedContent, kind: str) -> Envelope:
    envelope = content.envelope
    if envelope is None:
        raise _mismatch(f"the log entry ({kind}) records a DSSE envelope, not a message signature")
    if envelope.signatures != (content.signature,):
        raise _mismatch("the DSSE envelope does not carry exactly the one signature verified")
    return envelope


def _check_payload_hash(document: dict[str, Any], path: str, envelope: Envelope) -> None:
    if _text(document, f"{path}.algorithm") != "sha256":
        raise _mismatch(f"the log entry's {path} is not a sha256 digest")
    if _hex(document, f"{path}.value") != hashlib.sha256(envelope.payload).digest():
        raise _mismatch("the log entry records the hash of another DSSE payload")


def _check_pem_signer(pem: bytes, content: SignedContent) -> None:
    label, der = _pem_block(pem)
    if label == "CERTIFICATE" and content.public_key_der is None:
        if der != content.certificate_der:
            raise _mismatch("the log entry records another signing certificate")
    elif label == "PUBLIC KEY" and content.public_key_der is not None:
        if der != content.public_key_der:
            raise _mismatch("the log entry records another public key")
    else:
        raise _mismatch(f"the log entry's signer is a {label}, not the one verified")


def _pem_block(pem: bytes) -> tuple[str, bytes]:
    """The label and DER of a single PEM block (RFC 7468), strictly."""
    lines = pem.decode("ascii", "replace").strip().splitlines()
    begin = re.fullmatch(r"-----BEGIN ([A-Z0-9 ]{1,40})-----", lines[0]) if lines else None
    if begin is None or len(lines) < 3 or lines[-1] != f"-----END {begin.group(1)}-----":
        raise _mismatch("the log entry's signer is not a single PEM block")
    return begin.group(1), decode_base64(
        "".join(line.strip() for line in lines[1:-1]), "the PEM block in the log entry"
    )


def _signer_details(content: SignedContent) -> frozenset[str]:
    """The keyDetails a hashedrekord 0.0.2 entry may give for the signer's key."""
    try:
        if content.public_key_der is not None:
            key = serialization.load_der_public_key(content.public_key_der)
        else:
            key = x509.load_der_x509_certificate(content.certificate_der).public_key()
    except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion):
        raise _mismatch("the signer's certificate or key cannot be read") from None
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _EC_DETAILS:
        return frozenset({_EC_DETAILS[key.curve.name]})
    if isinstance(key, rsa.RSAPublicKey):
        return frozenset(f"PKIX_RSA_{pad}_{key.key_size}_SHA256" for pad in ("PKCS1V15", "PSS"))
    if isinstance(key, ed25519.Ed25519PublicKey):
        return frozenset({"PKIX_ED25519_PH"})
    return frozenset()


def _parse(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY_SIZE:
        raise _mismatch(f"the log entry's body is larger than {MAX_BODY_SIZE} bytes")
    try:
        document = json.loads(body, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError):
        raise _mismatch("the log entry's body is not JSON (or repeats a key)") from None
    if not isinstance(document, dict):
        raise _mismatch("the log entry's body is not a JSON object")
    return document


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("a repeated key")
    return document


def _field(document: dict[str, Any], path: str) -> Any:
    value: Any = document
    for name in path.split("."):
        if not isinstance(value, dict) or name not in value:
            raise _mismatch(f"the log entry's body has no {path}")
        value = value[name]
    if isinstance(value, str | list | dict) and value:
        return value
    raise _mismatch(f"the log entry's body has no usable {path}")


def _text(document: dict[str, Any], path: str) -> str:
    value = _field(document, path)
    if not isinstance(value, str):
        raise _mismatch(f"the log entry's {path} is not a string")
    return value


def _base64(document: dict[str, Any], path: str) -> bytes:
    return decode_base64(_text(document, path), f"the log entry's {path}")


def _decoded(text: str) -> bytes | None:
    try:
        return decode_base64(text, "the logged signature")
    except DeterministicFailure:
        return None


def _hex(document: dict[str, Any], path: str) -> bytes:
    value = _text(document, path)
    if not _HEX.fullmatch(value):
        raise _mismatch(f"the log entry's {path} is not hexadecimal")
    return bytes.fromhex(value)


def _only_item(document: dict[str, Any], path: str) -> dict[str, Any]:
    items = _field(document, path)
    if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
        raise _mismatch(f"the log entry's {path} is not exactly one signature")
    item: dict[str, Any] = items[0]
    return item


def _shown(text: str) -> str:
    """Text from the entry, fit for a message: short and printable, else quoted and cut."""
    return text if len(text) <= 40 and text.isprintable() else repr(text[:40]) + "…"


def _mismatch(message: str) -> DeterministicFailure:
    return DeterministicFailure(Reason.SIGNATURE_INVALID, message)
