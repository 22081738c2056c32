"""cosign's classic signature format: the `sha256-<hex>.sig` manifest and its payload.

One signature is one manifest layer of type `application/vnd.dev.cosign.simplesigning.v1+json`:
the layer blob is the payload, the signed message is exactly those bytes, and the base64 signature
sits in the layer annotation `dev.cosignproject.cosign/signature`. The payload's
`critical.image.docker-manifest-digest` names the digest the signature is for; it is the only
thing that binds a signature to an image.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from signet.attest.dsse import decode_base64
from signet.keyless.tlog import LogEntry, parse_cosign_bundle_annotation
from signet.model.json_object import json_object
from signet.model.reference import is_sha256_digest
from signet.reasons import DeterministicFailure, Reason

__all__ = [
    "MAX_LAYERS",
    "MAX_MANIFEST_SIZE",
    "MAX_PAYLOAD_SIZE",
    "MAX_SIGNATURES",
    "SIGNATURE_MEDIA_TYPE",
    "KeylessMaterial",
    "Payload",
    "SignatureLayer",
    "SignatureManifest",
    "keyless_material",
    "make_payload",
    "parse_payload",
    "parse_signature_manifest",
    "signature_manifest",
    "signature_tag",
]

SIGNATURE_MEDIA_TYPE: Final = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION: Final = "dev.cosignproject.cosign/signature"
SIGNATURE_TYPE: Final = "cosign container image signature"
OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
OCI_CONFIG: Final = "application/vnd.oci.image.config.v1+json"

# cosign's own caps: 1,000 layers per signature image, 100 signatures per image.
MAX_LAYERS: Final = 1000
MAX_SIGNATURES: Final = 100
# A `.sig` manifest of 1,000 plain signature layers is ~310 KiB, and of 100 keyless ones as the
# public-good Sigstore writes them (certificate, chain and Rekor bundle) ~540 KiB; with RFC 3161
# timestamps beside, up to ~900 KiB. Registries allow 4 MiB, which padded with `{}` costs ~100 MiB
# and most of a second to parse; the count of JSON values below bounds that.
MAX_MANIFEST_SIZE: Final = 1024 * 1024
# JSON values (objects, arrays, elements) a `.sig` manifest of MAX_LAYERS layers may need; counted
# before parsing, so the parse itself is bounded (~2 ms) whatever the bytes are.
_MAX_JSON_ITEMS: Final = 16 * MAX_LAYERS + 256
# A simple-signing payload is ~250 bytes; cosign allows 128 MiB, far too much on an admission path.
MAX_PAYLOAD_SIZE: Final = 64 * 1024
CERTIFICATE_ANNOTATION: Final = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION: Final = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION: Final = "dev.sigstore.cosign/bundle"
TIMESTAMP_ANNOTATION: Final = "dev.sigstore.cosign/rfc3161timestamp"
# A Fulcio certificate is ~1 KiB of PEM, a Rekor bundle annotation ~2 KiB, a timestamp ~4 KiB.
_MAX_KEYLESS_ANNOTATION: Final = 64 * 1024
_MAX_CHAIN: Final = 8
# Real signatures are < 1 KiB (RSA-8192: 1 KiB); the base64 annotation may not be absurd.
_MAX_SIGNATURE_B64: Final = 4096


@dataclass(frozen=True, slots=True)
class KeylessMaterial:
    """What a keyless signature layer carries beside its signature (all from annotations)."""

    certificate: bytes  # DER of `dev.sigstore.cosign/certificate`
    chain: tuple[bytes, ...] = ()  # `dev.sigstore.cosign/chain`: untrusted
    log_entry: LogEntry | None = None  # `dev.sigstore.cosign/bundle`: a Rekor SET
    timestamp: bytes | None = None  # `dev.sigstore.cosign/rfc3161timestamp`


@dataclass(frozen=True, slots=True)
class SignatureLayer:
    """One signature layer as listed in the manifest; the payload is fetched by `digest`."""

    digest: str
    size: int
    signature: bytes
    keyless: KeylessMaterial | None = None

    @property
    def has_certificate(self) -> bool:
        return self.keyless is not None


@dataclass(frozen=True, slots=True)
class Payload:
    docker_reference: str
    digest: str
    optional: dict[str, Any] | None


def signature_tag(digest: str) -> str:
    if not is_sha256_digest(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest.replace(":", "-") + ".sig"


@dataclass(frozen=True, slots=True)
class SignatureManifest:
    """The distinct signature layers of a `.sig` manifest, and what was wrong with the others."""

    layers: tuple[SignatureLayer, ...]
    problems: tuple[DeterministicFailure, ...]


def parse_signature_manifest(raw: bytes) -> SignatureManifest:
    """Read a `.sig` manifest. A malformed layer is a problem, not a reason to ignore the others.

    Layers of other media types are ignored (cosign ignores them too). A layer listed twice is
    kept once: a duplicate must never count as a second signature.
    """
    if len(raw) > MAX_MANIFEST_SIZE:
        raise DeterministicFailure(
            Reason.LIMIT_EXCEEDED,
            f"the signature manifest is {len(raw)} bytes; the limit is {MAX_MANIFEST_SIZE}",
        )
    items = raw.count(b"{") + raw.count(b"[") + raw.count(b",")
    if items > _MAX_JSON_ITEMS:
        raise DeterministicFailure(
            Reason.LIMIT_EXCEEDED,
            f"the signature manifest holds ~{items} JSON values; a manifest of {MAX_LAYERS} "
            f"layers needs at most {_MAX_JSON_ITEMS}",
        )
    manifest = json_object(raw, "signature manifest", Reason.UNSUPPORTED_FORMAT)
    media_type = manifest.get("mediaType", OCI_MANIFEST)
    if manifest.get("schemaVersion") != 2 or media_type not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise DeterministicFailure(
            Reason.UNSUPPORTED_FORMAT,
            f"the signature tag holds a {media_type!r} (schemaVersion "
            f"{manifest.get('schemaVersion')!r}), not an image manifest",
        )
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise DeterministicFailure(
            Reason.UNSUPPORTED_FORMAT, "the signature manifest has no layers list"
        )
    if len(layers) > MAX_LAYERS:
        raise DeterministicFailure(
            Reason.LIMIT_EXCEEDED,
            f"the signature manifest has {len(layers)} layers; the limit is {MAX_LAYERS}",
        )
    found: dict[tuple[str, bytes], SignatureLayer] = {}
    problems: list[DeterministicFailure] = []
    for index, layer in enumerate(layers):
        if not isinstance(layer, dict) or layer.get("mediaType") != SIGNATURE_MEDIA_TYPE:
            continue
        try:
            parsed = _signature_layer(index, layer)
        except DeterministicFailure as problem:
            problems.append(problem)
            continue
        found.setdefault((parsed.digest, parsed.signature), parsed)
    if len(found) + len(problems) > MAX_SIGNATURES:
        raise DeterministicFailure(
            Reason.LIMIT_EXCEEDED,
            f"the image has {len(found) + len(problems)} signatures; the limit is {MAX_SIGNATURES}",
        )
    return SignatureManifest(tuple(found.values()), tuple(problems))


def _signature_layer(index: int, layer: dict[str, Any]) -> SignatureLayer:
    where = f"signature layer {index}"
    digest, size = layer.get("digest"), layer.get("size")
    if not isinstance(digest, str) or not is_sha256_digest(digest):
        raise DeterministicFailure(Reason.SIGNATURE_INVALID, f"{where} has no sha256 digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise DeterministicFailure(Reason.SIGNATURE_INVALID, f"{where} has no valid size")
    if size > MAX_PAYLOAD_SIZE:
        raise DeterministicFailure(
            Reason.LIMIT_EXCEEDED,
            f"{where} payload is {size} bytes; the limit is {MAX_PAYLOAD_SIZE}",
        )
    annotations = layer.get("annotations")
    if not isinstance(annotations, dict):
        annotations = {}
    encoded = annotations.get(SIGNATURE_ANNOTATION)
    if not isinstance(encoded, str) or not encoded or len(encoded) > _MAX_SIGNATURE_B64:
        raise DeterministicFailure(
            Reason.SIGNATURE_INVALID, f"{where} has no usable {SIGNATURE_ANNOTATION} annotation"
        )
    try:
        # Go's base64 decoder, which cosign uses, skips line breaks; some signers wrap lines.
        signature = base64.b64decode(encoded.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DeterministicFailure(
            Reason.SIGNATURE_INVALID, f"{where} signature is not valid base64"
        ) from exc
    return SignatureLayer(digest, size, signature, keyless_material(where, annotations))


def keyless_material(where: str, annotations: dict[str, Any]) -> KeylessMaterial | None:
    """The keyless annotations of a `.sig` or `.att` layer, if it carries a certificate."""
    certificate = annotations.get(CERTIFICATE_ANNOTATION)
    if not isinstance(certificate, str) or not certificate:
        return None
    texts = {
        name: annotations.get(name, "")
        for name in (
            CERTIFICATE_ANNOTATION,
            CHAIN_ANNOTATION,
            BUNDLE_ANNOTATION,
            TIMESTAMP_ANNOTATION,
        )
    }
    if any(not isinstance(t, str) or len(t) > _MAX_KEYLESS_ANNOTATION for t in texts.values()):
        raise DeterministicFailure(
            Reason.SIGNATURE_INVALID, f"{where} has an unusable keyless annotation"
        )
    try:
        (leaf,) = x509.load_pem_x509_certificates(certificate.encode())
        chain = (
            x509.load_pem_x509_certificates(texts[CHAIN_ANNOTATION].encode())
            if texts[CHAIN_ANNOTATION].strip()
            else []
        )
    except (ValueError, x509.InvalidVersion):
        raise DeterministicFailure(
            Reason.SIGNATURE_INVALID, f"{where} has a certificate or chain that is not one PEM"
        ) from None
    if len(chain) > _MAX_CHAIN:
        raise DeterministicFailure(
            Reason.LIMIT_EXCEEDED, f"{where} carries a chain of more than {_MAX_CHAIN} certificates"
        )
    der = serialization.Encoding.DER
    log_entry = None
    if texts[BUNDLE_ANNOTATION]:
        log_entry = parse_cosign_bundle_annotation(texts[BUNDLE_ANNOTATION])
    timestamp = None
    if texts[TIMESTAMP_ANNOTATION]:
        stamp = json_object(
            texts[TIMESTAMP_ANNOTATION].encode(),
            "RFC 3161 timestamp annotation",
            Reason.SIGNATURE_INVALID,
        )
        timestamp = decode_base64(stamp.get("SignedRFC3161Timestamp"), f"{where} timestamp")
    return KeylessMaterial(
        leaf.public_bytes(der),
        tuple(c.public_bytes(der) for c in chain),
        log_entry,
        timestamp,
    )


def parse_payload(raw: bytes) -> Payload:
    """Parse a simple-signing payload. Lenient about `optional`, strict about `critical`."""
    document = json_object(raw, "signature payload", reason=Reason.SIGNATURE_INVALID)
    critical = document.get("critical")
    if not isinstance(critical, dict):
        raise DeterministicFailure(Reason.SIGNATURE_INVALID, "the payload has no 'critical' object")
    if critical.get("type") != SIGNATURE_TYPE:
        raise DeterministicFailure(
            Reason.UNSUPPORTED_FORMAT,
            f"the payload type is {critical.get('type')!r}, not {SIGNATURE_TYPE!r}",
        )
    image, identity = critical.get("image"), critical.get("identity")
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if not isinstance(digest, str) or not is_sha256_digest(digest):
        raise DeterministicFailure(
            Reason.SIGNATURE_INVALID,
            "the payload names no valid critical.image.docker-manifest-digest",
        )
    docker_reference = identity.get("docker-reference") if isinstance(identity, dict) else None
    optional = document.get("optional")
    return Payload(
        docker_reference if isinstance(docker_reference, str) else "",
        digest,
        optional if isinstance(optional, dict) else None,
    )


def make_payload(docker_reference: str, digest: str) -> bytes:
    """The bytes cosign signs: Go's json.Marshal of its payload (fixed key order, compact)."""
    if not is_sha256_digest(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    document = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": None,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def signature_layer_descriptor(payload_digest: str, size: int, signature: bytes) -> dict[str, Any]:
    return {
        "mediaType": SIGNATURE_MEDIA_TYPE,
        "size": size,
        "digest": payload_digest,
        "annotations": {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()},
    }


def signature_manifest(config: dict[str, Any], layers: list[dict[str, Any]]) -> bytes:
    """An OCI image manifest holding `layers` (what cosign pushes under the `.sig` tag)."""
    return json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers},
        separators=(",", ":"),
    ).encode()


def signature_config(payload_digests: list[str]) -> bytes:
    """A minimal OCI image config listing the payloads as diff_ids, as cosign writes it."""
    document = {
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": payload_digests},
        "config": {},
    }
    return json.dumps(document, separators=(",", ":")).encode()


def existing_layers(raw: bytes) -> list[dict[str, Any]]:
    """The raw layer descriptors of an existing `.sig` manifest, for appending a signature."""
    manifest = json_object(raw, "signature manifest", Reason.UNSUPPORTED_FORMAT)
    layers = manifest.get("layers")
    if not isinstance(layers, list) or not all(isinstance(x, dict) for x in layers):
        raise DeterministicFailure(
            Reason.UNSUPPORTED_FORMAT, "the signature manifest has no layers list"
        )
    return list(layers)
