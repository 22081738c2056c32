"""`signet sign`: write a cosign-compatible classic signature for an image's exact digest.

Like `cosign sign`, the tag is resolved first and the signature names the digest (an index digest
for a multi-arch tag); the payload's docker-reference is `registry/repository` without the tag;
an existing `.sig` manifest gets one more layer (read, append, write — as cosign does it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from signet.crypto.keyfile import Signer
from signet.formats.cosign_classic import manifest as cosign
from signet.model.reference import Reference
from signet.oci.client import RegistryClient

__all__ = ["Signed", "sign_image"]


@dataclass(frozen=True, slots=True)
class Signed:
    digest: str
    signature_tag: str
    scheme: str
    appended: bool


async def sign_image(registry: RegistryClient, ref: Reference, key: Signer) -> Signed:
    digest = await registry.resolve(ref)
    payload = cosign.make_payload(ref.name, digest)
    signature, scheme = key.sign(payload)
    payload_digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    layer = cosign.signature_layer_descriptor(payload_digest, len(payload), signature)

    tag = cosign.signature_tag(digest)
    existing = await registry.manifest(ref, tag)
    layers = cosign.existing_layers(existing.raw) if existing is not None else []
    appended = layer not in layers
    if appended:
        layers.append(layer)

    await registry.push_blob(ref, payload)
    payload_digests = [str(x.get("digest")) for x in layers]
    config = cosign.signature_config(payload_digests)
    config_digest = await registry.push_blob(ref, config)
    manifest = cosign.signature_manifest(
        {"mediaType": cosign.OCI_CONFIG, "size": len(config), "digest": config_digest}, layers
    )
    await registry.push_manifest(ref, tag, manifest, cosign.OCI_MANIFEST)
    return Signed(digest, tag, scheme, appended)


def describe(signed: Signed, ref: Reference) -> str:
    return json.dumps(
        {
            "image": str(ref),
            "digest": signed.digest,
            "signature": f"{ref.name}:{signed.signature_tag}",
            "scheme": signed.scheme,
            "appended": signed.appended,
        }
    )
