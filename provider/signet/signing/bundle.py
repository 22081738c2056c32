"""`signet sign --format bundle`: a Sigstore bundle referrer, the shape cosign v3 writes by default.

1. Resolve the tag; the statement names exactly that digest (an index digest for a multi-arch tag).
2. Sign the DSSE PAE of an in-toto Statement v1 whose predicate type is cosign's signature type
   (`https://sigstore.dev/cosign/sign/v1`, predicate `{}`).
3. Wrap it in a v0.3 bundle with a key hint (base64 SHA-256 of the public key's DER), no
   transparency-log entry and no timestamp: key-based and offline, like
   `cosign sign --key … --tlog-upload=false --use-signing-config=false`.
4. Push the bundle and the empty config blob, and the referrer manifest by digest, its `subject`
   the image.
5. A registry with the referrers API lists it by itself; on one without it, add the manifest to
   the `sha256-<hex>` index (read, add, write: what cosign does, and as racy).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final

from signet.attest.dsse import IN_TOTO_PAYLOAD_TYPE, pae
from signet.attest.statement import COSIGN_SIGN_PREDICATE
from signet.crypto.keyfile import Signer
from signet.formats.sigstore_bundle.referrer import EMPTY_MEDIA_TYPE, PREDICATE_ANNOTATION
from signet.model.reference import Reference
from signet.oci.client import RegistryClient
from signet.oci.media import OCI_INDEX, OCI_MANIFEST
from signet.oci.referrers import parse_index, referrers_tag
from signet.reasons import DeterministicFailure, Reason

__all__ = ["BUNDLE_MEDIA_TYPE", "SignedBundle", "describe_bundle", "sign_bundle"]

BUNDLE_MEDIA_TYPE: Final = "application/vnd.dev.sigstore.bundle.v0.3+json"
_EMPTY_CONFIG: Final = b"{}"


@dataclass(frozen=True, slots=True)
class SignedBundle:
    digest: str
    referrer: str
    scheme: str
    listed_by: str  # "referrers API" or the fallback tag


def statement(digest: str) -> bytes:
    algorithm, _, hex_digest = digest.partition(":")
    document = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {algorithm: hex_digest}}],
        "predicateType": COSIGN_SIGN_PREDICATE,
        "predicate": {},
    }
    return json.dumps(document, separators=(",", ":")).encode()


def bundle(payload: bytes, signature: bytes, key: Signer) -> bytes:
    hint = base64.b64encode(bytes.fromhex(key.public.fingerprint)).decode()
    document = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": hint}},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode()}],
        },
    }
    return json.dumps(document, separators=(",", ":")).encode()


async def sign_bundle(registry: RegistryClient, ref: Reference, key: Signer) -> SignedBundle:
    # Step 1
    digest = await registry.resolve(ref)
    image = await registry.manifest(ref, digest)
    if image is None:
        raise DeterministicFailure(Reason.IMAGE_NOT_FOUND, f"{ref} was not found in its registry")
    # Steps 2 and 3
    payload = statement(digest)
    signature, scheme = key.sign(pae(IN_TOTO_PAYLOAD_TYPE, payload))
    content = bundle(payload, signature, key)
    # Step 4
    bundle_digest = await registry.push_blob(ref, content)
    config_digest = await registry.push_blob(ref, _EMPTY_CONFIG)
    referrer = _referrer_manifest(
        {"mediaType": image.media_type, "digest": digest, "size": len(image.raw)},
        {"mediaType": BUNDLE_MEDIA_TYPE, "digest": bundle_digest, "size": len(content)},
        config_digest,
    )
    referrer_digest = "sha256:" + hashlib.sha256(referrer).hexdigest()
    await registry.push_manifest(ref, referrer_digest, referrer, OCI_MANIFEST)
    # Step 5
    page = await registry.referrers_page(ref, f"referrers/{digest}", max_bytes=512 * 1024)
    if page.status == 200 and page.media_type == OCI_INDEX:
        return SignedBundle(digest, referrer_digest, scheme, "referrers API")
    tag = referrers_tag(digest)
    await _add_to_index(registry, ref, tag, referrer_digest, len(referrer))
    return SignedBundle(digest, referrer_digest, scheme, f"tag {tag}")


def _referrer_manifest(subject: dict[str, Any], layer: dict[str, Any], config: str) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_MEDIA_TYPE,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": config, "size": len(_EMPTY_CONFIG)},
        "layers": [layer],
        "subject": subject,
        "annotations": {
            "dev.sigstore.bundle.content": "dsse-envelope",
            PREDICATE_ANNOTATION: COSIGN_SIGN_PREDICATE,
        },
    }
    return json.dumps(document, separators=(",", ":")).encode()


async def _add_to_index(
    registry: RegistryClient, ref: Reference, tag: str, referrer: str, size: int
) -> None:
    existing = await registry.manifest(ref, tag)
    entries: list[dict[str, Any]] = []
    if existing is not None:
        parse_index(existing.raw, f"the referrers tag {tag}")  # refuse to overwrite junk blindly
        entries = list(json.loads(existing.raw)["manifests"])
    if any(isinstance(e, dict) and e.get("digest") == referrer for e in entries):
        return
    entries.append(
        {
            "mediaType": OCI_MANIFEST,
            "digest": referrer,
            "size": size,
            "artifactType": BUNDLE_MEDIA_TYPE,
        }
    )
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    await registry.push_manifest(
        ref, tag, json.dumps(index, separators=(",", ":")).encode(), OCI_INDEX
    )


def describe_bundle(signed: SignedBundle, ref: Reference) -> str:
    return json.dumps(
        {
            "image": str(ref),
            "digest": signed.digest,
            "bundle": f"{ref.name}@{signed.referrer}",
            "format": "sigstore-bundle",
            "listed_by": signed.listed_by,
            "scheme": signed.scheme,
        }
    )
